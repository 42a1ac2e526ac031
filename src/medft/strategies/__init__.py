"""The fine-tuning strategies, registered once each: what the planner, the cost model, the
report and the loop need to know about a strategy, without importing torch.

A ``StrategyInfo`` entry (timm's ``OptimInfo`` is the model) carries the strategy's name, its
class as a lazily imported path, and its traits as functions of the options: the strategy it
starts from, whether it trains a head on shared features, whether it sets each block's lr,
the epoch from which early stopping may end it, and the line it adds to a table's caption.
The planner and the report read these traits, never a name; only the training loop imports
the class (``info.cls``).

Adding a strategy: its class in a module of this package (hooks in ``base.Strategy``), one
``register_strategy(StrategyInfo(...))`` entry below, and its expectation in
``tests/test_strategies.py``. docs/architecture.md walks through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from medft.registry import Registry

# The strategy every other one is compared with, in the tables, the statistics and the search.
REFERENCE = "FT"


@dataclass(frozen=True)
class StrategyOptions:
    """Strategy hyper-parameters; the defaults and their reasons are in docs/strategies.md."""

    # Frozen parameters' BatchNorm statistics and dropout: "eval" fixes them (a true linear
    # probe, Kumar et al.), "train" lets statistics adapt (the whole model in train mode).
    frozen_bn: str = "eval"
    l2sp_alpha: float = 0.1
    l2sp_beta: float = 0.01
    l1sp_alpha: float = 7e-5
    l1sp_beta: float = 1.4e-4
    sp_include_norm: bool = False
    rgn_batches: int = 5
    rgn_groups: str = "tensor"  # "tensor" (the reference code) or "module"
    rgn_rebuild_optimizer: bool = True  # a fresh Adam each epoch, as the reference code
    # BatchNorm scales and biases: "frozen" (the reference code: out of max(RGN) and out of
    # the optimizer) or "scaled" (in max(RGN) and trained at their own RGN lr, medft < 0.2).
    rgn_norm: str = "frozen"
    # The new head: "scaled" (the reference code: its RGN enters max(RGN) like any tensor) or
    # "full" (out of the maximum, trained at the full lr).
    rgn_head: str = "scaled"
    # 0: LP-FT's stage 2 starts from the LP run's best checkpoint; N > 0: one run, LP for N
    # epochs, then everything trainable with a fresh Adam (the paper's variant).
    lpft_lp_epochs: int = 0
    lp_feature_cache: bool = True

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if self.lpft_lp_epochs < 0:
            raise ValueError(f"lpft_lp_epochs must be 0 or more, got {self.lpft_lp_epochs}")


CHOICES = {
    "frozen_bn": ("eval", "train"),
    "rgn_groups": ("tensor", "module"),
    "rgn_norm": ("frozen", "scaled"),
    "rgn_head": ("scaled", "full"),
}


def _never(options: StrategyOptions) -> None:
    return None


def _no(options: StrategyOptions) -> bool:
    return False


def _from_the_start(options: StrategyOptions, blocks: int) -> int:
    return 0


@dataclass(frozen=True)
class StrategyInfo:
    """One registered strategy: everything but the training code, which ``cls`` imports."""

    name: str
    # "package.module:Class", imported only when a run needs the class.
    class_path: str
    # What trains, in a few words (docs, captions).
    summary: str
    # The strategy whose cell (same dataset, model, lr, seed) this one starts from, or None.
    starts_from: Callable[[StrategyOptions], str | None] = _never
    # Whether only a head trains on a fixed backbone's features, which can then be computed
    # once per (dataset, model) and shared by every lr and seed.
    shares_features: Callable[[StrategyOptions], bool] = _no
    # Whether it sets each block's lr itself, epoch by epoch (the report plots them).
    adapts_block_lrs: bool = False
    # The first epoch after which early stopping may end a run, for a model of ``blocks``
    # parameter blocks: before it, the strategy's schedule has not its final form.
    stoppable_from: Callable[[StrategyOptions, int], int] = _from_the_start
    # Its choices, for the protocol line of a table's caption; None: nothing to say.
    caption: Callable[[StrategyOptions], str | None] = _never

    @property
    def cls(self) -> type:
        module, name = self.class_path.split(":")
        return getattr(import_module(module), name)


STRATEGIES: Registry[StrategyInfo] = Registry("strategy")


def register_strategy(info: StrategyInfo) -> StrategyInfo:
    return STRATEGIES.register(info.name)(info)


def strategy_names() -> list[str]:
    return STRATEGIES.names()


def _lpft_caption(o: StrategyOptions) -> str:
    if o.lpft_lp_epochs == 0:
        return "LP-FT in two runs (stage 2 from the LP cell)"
    return f"LP-FT in one run, LP for {o.lpft_lp_epochs} epochs"


def _rgn_caption(o: StrategyOptions) -> str:
    adam = "rebuilt" if o.rgn_rebuild_optimizer else "kept"
    return (
        f"Auto-RGN per {o.rgn_groups}, Adam {adam} each epoch, BatchNorm {o.rgn_norm}, "
        f"head {o.rgn_head}"
    )


register_strategy(StrategyInfo(REFERENCE, "medft.strategies.base:Strategy", "every parameter"))
register_strategy(
    StrategyInfo(
        "LP",
        "medft.strategies.probing:LinearProbe",
        "the new head only",
        # Exact only while the backbone is a fixed function: BatchNorm in eval mode.
        shares_features=lambda o: o.frozen_bn == "eval" and o.lp_feature_cache,
    )
)
register_strategy(
    StrategyInfo(
        "G-LF",
        "medft.strategies.unfreezing:GradualUnfreezeLastToFirst",
        "the last block, then one more block per epoch, last to first",
        stoppable_from=lambda o, blocks: blocks - 1,
    )
)
register_strategy(
    StrategyInfo(
        "G-FL",
        "medft.strategies.unfreezing:GradualUnfreezeFirstToLast",
        "the last block, then one more block per epoch, first to last",
        stoppable_from=lambda o, blocks: blocks - 1,
    )
)
register_strategy(
    StrategyInfo(
        "LP-FT",
        "medft.strategies.probing:LinearProbeThenFineTune",
        "every parameter, from a trained linear probe",
        starts_from=lambda o: "LP" if o.lpft_lp_epochs == 0 else None,
        stoppable_from=lambda o, blocks: o.lpft_lp_epochs,
        caption=_lpft_caption,
    )
)
register_strategy(
    StrategyInfo(
        "L1-SP",
        "medft.strategies.penalties:L1SP",
        "every parameter, pulled back to the start (L1)",
        caption=lambda o: f"L1-SP α={o.l1sp_alpha:g}, β={o.l1sp_beta:g}",
    )
)
register_strategy(
    StrategyInfo(
        "L2-SP",
        "medft.strategies.penalties:L2SP",
        "every parameter, pulled back to the start (L2)",
        caption=lambda o: f"L2-SP α={o.l2sp_alpha:g}, β={o.l2sp_beta:g}",
    )
)
register_strategy(
    StrategyInfo(
        "Auto-RGN",
        "medft.strategies.auto_rgn:AutoRGN",
        "every parameter but BatchNorm, lr per tensor from its relative gradient norm",
        adapts_block_lrs=True,
        caption=_rgn_caption,
    )
)
