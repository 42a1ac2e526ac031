"""Gradual unfreezing, last block to first (G-LF) and first to last (G-FL)."""

from __future__ import annotations

from medft.strategies import StrategyInfo, register_strategy
from medft.strategies.base import EpochContext, Strategy


class GradualUnfreeze(Strategy):
    """Gradual unfreezing (ULMFiT, Howard & Ruder 2018): the model's parameter blocks are its
    stages. The last block, which holds the new head, trains from epoch 0; at the start of
    each later epoch one more block becomes trainable, so a model of n blocks is fully
    trainable from epoch n − 1 (ResNet-50, DenseNet-121, VGG-19: 6, 9, 6 stages)."""

    last_to_first: bool

    def stages(self) -> list[tuple[str, ...]]:
        """Parameter names of each block, in the order they become trainable."""
        blocks = [b.params for b in self.model.blocks]
        last, rest = blocks[-1], blocks[:-1]
        return [last, *(rest[::-1] if self.last_to_first else rest)]

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        self.set_trainable([p for stage in self.stages()[: ctx.epoch + 1] for p in stage])


class GradualUnfreezeLastToFirst(GradualUnfreeze):
    __doc__ = GradualUnfreeze.__doc__ + " Order: last block to first."
    last_to_first = True


class GradualUnfreezeFirstToLast(GradualUnfreeze):
    __doc__ = GradualUnfreeze.__doc__ + " Order: first block to last."
    last_to_first = False


def _all_blocks_trainable(options, blocks: int) -> int:
    return blocks - 1


register_strategy(
    StrategyInfo(
        "G-LF",
        GradualUnfreezeLastToFirst,
        "the last block, then one more block per epoch, last to first",
        order=2,
        in_paper=True,
        stoppable_from=_all_blocks_trainable,
    )
)
register_strategy(
    StrategyInfo(
        "G-FL",
        GradualUnfreezeFirstToLast,
        "the last block, then one more block per epoch, first to last",
        order=3,
        in_paper=True,
        stoppable_from=_all_blocks_trainable,
    )
)
