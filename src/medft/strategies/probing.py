"""Linear probing and LP-FT (Kumar et al. 2022)."""

from __future__ import annotations

from medft.strategies.base import EpochContext, Strategy


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
