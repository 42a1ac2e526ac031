"""Linear probing and LP-FT (Kumar et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass

from medft.strategies import StrategyInfo, option, register_strategy
from medft.strategies.base import EpochContext, Strategy


@dataclass(frozen=True)
class ProbeOptions:
    lp_feature_cache: bool = option(
        True, "LP trains its head on backbone features computed once per (dataset, model)"
    )


@dataclass(frozen=True)
class LPFTOptions:
    lpft_lp_epochs: int = option(
        0,
        "0: stage 2 starts from the LP cell's best checkpoint; N: one run, LP for N epochs, "
        "then everything with a fresh Adam (the paper's variant)",
        minimum=0,
    )


class LinearProbe(Strategy):
    """Linear probing (Kumar et al. 2022): only the new head trains; the backbone is a fixed
    feature extractor, BatchNorm and dropout included (whole model in eval mode)."""

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        self.set_trainable(self.model.head_params)

    def train_mode(self) -> None:
        if self.options.frozen_bn == "eval":
            self.model.module.eval()
        else:
            self.model.module.train()


class LinearProbeThenFineTune(Strategy):
    """LP-FT (Kumar et al. 2022). By default stage 2 only: it starts from the best checkpoint
    of the LP run (head included) and fine-tunes everything with a fresh Adam. With
    ``lpft_lp_epochs: N``, one run: LP for N epochs, then everything trainable with a fresh
    Adam; early stopping and the best epoch count only in the second stage."""

    def probing(self) -> bool:
        return self.epoch < self.options.lpft_lp_epochs

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        if self.probing():
            self.set_trainable(self.model.head_params)
            return
        self.set_trainable(self.named)
        if ctx.epoch == self.options.lpft_lp_epochs > 0:
            ctx.optimizer.state.clear()  # stage 2 starts with a fresh Adam

    def train_mode(self) -> None:
        if self.probing():
            LinearProbe.train_mode(self)
        else:
            super().train_mode()

    def selection_restarts(self, epoch: int) -> bool:
        return epoch == self.options.lpft_lp_epochs > 0  # early stopping counts in stage 2


def _lpft_caption(o) -> str:
    if o.lpft_lp_epochs == 0:
        return "LP-FT in two runs (stage 2 from the LP cell)"
    return f"LP-FT in one run, LP for {o.lpft_lp_epochs} epochs"


register_strategy(
    StrategyInfo(
        "LP",
        LinearProbe,
        "the new head only",
        options=ProbeOptions,
        order=1,
        in_paper=True,
        # Exact only while the backbone is a fixed function: BatchNorm in eval mode.
        shares_features=lambda o: o.frozen_bn == "eval" and o.lp_feature_cache,
    )
)
register_strategy(
    StrategyInfo(
        "LP-FT",
        LinearProbeThenFineTune,
        "every parameter, from a trained linear probe",
        options=LPFTOptions,
        order=4,
        in_paper=True,
        starts_from=lambda o: "LP" if o.lpft_lp_epochs == 0 else None,
        stoppable_from=lambda o, blocks: o.lpft_lp_epochs,
        caption=_lpft_caption,
    )
)
