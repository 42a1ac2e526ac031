"""The fine-tuning strategies, registered once each: what the planner, the cost model, the
report and the loop need to know about a strategy.

A ``StrategyInfo`` entry (timm's ``OptimInfo`` is the model) carries the strategy's name, its
class, its options dataclass and its traits as functions of the options: the strategy it
starts from, whether it trains a head on shared features, whether it sets each block's lr,
the epoch from which early stopping may end it, and the line it adds to a table's caption.
The planner and the report read these traits, never a name.

Every module of this package is imported here and registers its own strategies; the modules
import torch lazily (``medft.lazy``), so reading the registry costs no torch. Adding a
strategy is one module — its class and its ``register_strategy(StrategyInfo(...))`` — and
its expectation in ``tests/test_strategies.py``. docs/architecture.md walks through it.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field, fields, make_dataclass
from importlib import import_module

from medft.fields import option
from medft.registry import Registry

# The strategy every other one is compared with, in the tables, the statistics and the search.
REFERENCE = "FT"


@dataclass(frozen=True)
class CommonOptions:
    """Options every strategy reads."""

    frozen_bn: str = option(
        "eval",
        "frozen parameters' BatchNorm statistics and dropout: eval fixes them (a true linear "
        "probe), train lets them adapt (the whole model in train mode)",
        choices=("eval", "train"),
    )


def _never(options) -> None:
    return None


def _no(options) -> bool:
    return False


def _from_the_start(options, blocks: int) -> int:
    return 0


@dataclass(frozen=True)
class StrategyInfo:
    """One registered strategy."""

    name: str
    # Its training code, a subclass of ``medft.strategies.base.Strategy``.
    cls: type
    # What trains, in a few words (docs, captions).
    summary: str
    # Its options (a frozen dataclass of ``option`` fields), or None; they join
    # ``StrategyOptions`` and config's ``strategy_options`` under their own names.
    options: type | None = None
    # Its place in tables and plots (the paper's order first); ties keep registration order.
    order: float = 100
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
    # One of the paper's eight (config's `strategies: paper`).
    in_paper: bool = False


STRATEGIES: Registry[StrategyInfo] = Registry("strategy", order=lambda info: info.order)


def register_strategy(info: StrategyInfo) -> StrategyInfo:
    return STRATEGIES.register(info.name)(info)


def strategy_names() -> list[str]:
    """The registered strategies in table order."""
    return STRATEGIES.names()


def paper_strategy_names() -> list[str]:
    """The paper's eight, in table order."""
    return [name for name in STRATEGIES.names() if STRATEGIES.get(name).in_paper]


def _combined_options() -> type:
    """One frozen dataclass with every registered strategy's options (config's flat
    ``strategy_options``); an option two strategies share must agree on its default."""
    combined: dict[str, object] = {}
    for cls in [CommonOptions, *(STRATEGIES.get(n).options for n in strategy_names())]:
        for f in fields(cls) if cls else ():
            known = combined.get(f.name)
            if known is not None and (known.default, known.type) != (f.default, f.type):
                raise ValueError(f"strategy option {f.name!r} is declared twice, differently")
            combined[f.name] = f
    options = make_dataclass(
        "StrategyOptions",
        [
            (f.name, f.type, field(default=f.default, metadata=f.metadata))
            for f in combined.values()
        ],
        frozen=True,
        namespace={"__post_init__": _check_options, "__doc__": _combined_options.__doc__},
    )
    options.__module__ = __name__  # so that runs pickle it for their worker processes
    return options


def _check_options(options) -> None:
    for f in fields(options):
        value, meta = getattr(options, f.name), f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"{f.name} must be one of {meta['choices']}, got {value!r}")
        if meta.get("min") is not None and value < meta["min"]:
            raise ValueError(f"{f.name} must be {meta['min']} or more, got {value!r}")


for _module in pkgutil.iter_modules(__path__):
    import_module(f"{__name__}.{_module.name}")

StrategyOptions = _combined_options()
