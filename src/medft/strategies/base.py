"""The strategy interface, and full fine-tuning (FT), the base of the others.

A strategy decides three things and nothing else; the training loop (``medft.engine``) calls
these hooks and never asks which strategy it runs:

* ``param_groups()`` — the optimizer's parameter groups (with their learning rates);
* ``on_epoch_start(ctx)`` — freeze or unfreeze parameters, re-set learning rates;
* ``extra_loss()`` — a regulariser added to the task loss;

and, before the model goes to the device, ``extend_model`` may add modules to it (adapters).
What the planner needs to know of a strategy is its registry entry, beside its class.

Frozen means ``requires_grad = False``; Adam skips parameters without a gradient, so a block
that is unfrozen later starts its Adam state then. Modules whose parameters are all frozen run
in eval mode, so a frozen block's BatchNorm statistics do not move either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medft.lazy import lazy_module
from medft.strategies import REFERENCE, StrategyInfo, register_strategy

if TYPE_CHECKING:
    from medft.models import BuiltModel
    from medft.strategies import StrategyOptions

torch = lazy_module("torch")


@dataclass
class EpochContext:
    epoch: int
    optimizer: torch.optim.Optimizer
    # Runs forward/backward on the first n training batches of this epoch and yields after
    # each backward, gradients in place; no optimizer step is taken.
    probe_gradients: Callable[[int], Iterator[None]]


class Strategy:
    """Full fine-tuning (FT): every parameter trainable, one lr. The base of the others."""

    def __init__(self, model: BuiltModel, lr: float, options: StrategyOptions) -> None:
        self.model = model
        self.lr = lr
        self.options = options
        self.named = dict(model.module.named_parameters())
        self.epoch = 0

    def param_groups(self) -> list[dict]:
        return [
            {"params": [self.named[p] for p in block.params], "lr": self.lr, "name": block.name}
            for block in self.model.blocks
        ]

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        self.set_trainable(self.named)

    @classmethod
    def extend_model(cls, model: BuiltModel, options: StrategyOptions) -> None:
        """Add the strategy's own modules (adapters) to ``model`` before it goes to the device,
        their parameter names to ``model.blocks``; most strategies add none."""

    def extra_loss(self) -> torch.Tensor | None:
        return None

    def merged(self):
        """A context in which the model's weights are as deployed (adapters merged into the
        layers they adapt) for the final evaluation; most strategies have nothing to merge."""
        return nullcontext()

    def selection_restarts(self, epoch: int) -> bool:
        """Whether model selection starts afresh at ``epoch`` (earlier epochs are not kept)."""
        return False

    def set_trainable(self, names) -> None:
        names = set(names)
        for name, param in self.named.items():
            param.requires_grad_(name in names)

    def train_mode(self) -> None:
        """Train mode; with ``frozen_bn: eval``, subtrees whose parameters are all frozen run
        in eval mode, so their BatchNorm statistics stay fixed."""
        module = self.model.module
        module.train()
        if self.options.frozen_bn == "train":
            return
        for sub in module.modules():
            params = list(sub.parameters())
            if params and not any(p.requires_grad for p in params):
                sub.eval()


register_strategy(StrategyInfo(REFERENCE, Strategy, "every parameter", order=0, in_paper=True))
