"""The eight fine-tuning strategies of the paper, behind one interface.

A strategy decides three things and nothing else; the training loop (``medft.engine``) calls
these hooks and never asks which strategy it runs:

* ``param_groups()`` — the optimizer's parameter groups (with their learning rates);
* ``on_epoch_start(ctx)`` — freeze or unfreeze parameters, re-set learning rates;
* ``extra_loss()`` — a regulariser added to the task loss.

Frozen means ``requires_grad = False``; Adam skips parameters without a gradient, so a block
that is unfrozen later starts its Adam state then. Modules whose parameters are all frozen run
in eval mode, so a frozen block's BatchNorm statistics do not move either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from medft.models import BuiltModel
from medft.registry import Registry

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


@dataclass(frozen=True)
class StrategyOptions:
    """Strategy hyper-parameters; the defaults and their reasons are in docs/strategies.md."""

    l2sp_alpha: float = 0.1
    l2sp_beta: float = 0.01
    l1sp_alpha: float = 5e-6
    l1sp_beta: float = 5e-5
    sp_include_norm: bool = False
    rgn_batches: int = 5
    rgn_rebuild_optimizer: bool = False
    lp_feature_cache: bool = True


@dataclass
class EpochContext:
    epoch: int
    optimizer: torch.optim.Optimizer
    # Runs forward/backward on the first n training batches of this epoch and yields after
    # each backward, gradients in place; no optimizer step is taken.
    probe_gradients: Callable[[int], Iterator[None]]


class Strategy:
    """Full fine-tuning (FT): every parameter trainable, one lr. The base of the others."""

    requires_init = False  # True: starts from another run's checkpoint (LP-FT)
    feature_cache = False  # True: the backbone stays frozen, so its features can be cached

    def __init__(self, model: BuiltModel, lr: float, options: StrategyOptions) -> None:
        self.model = model
        self.lr = lr
        self.options = options
        self.named = dict(model.module.named_parameters())

    def param_groups(self) -> list[dict]:
        return [
            {"params": [self.named[p] for p in block.params], "lr": self.lr, "name": block.name}
            for block in self.model.blocks
        ]

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.set_trainable(self.named)

    def extra_loss(self) -> torch.Tensor | None:
        return None

    def may_stop(self, epoch: int) -> bool:
        """Whether early stopping may end the run after ``epoch``."""
        return True

    def set_trainable(self, names) -> None:
        names = set(names)
        for name, param in self.named.items():
            param.requires_grad_(name in names)

    def train_mode(self) -> None:
        """Train mode, except subtrees whose parameters are all frozen."""
        module = self.model.module
        module.train()
        for sub in module.modules():
            params = list(sub.parameters())
            if params and not any(p.requires_grad for p in params):
                sub.eval()


STRATEGIES.register("FT")(Strategy)


@STRATEGIES.register("LP")
class LinearProbe(Strategy):
    """Linear probing (Kumar et al. 2022): only the new head trains; the backbone is a fixed
    feature extractor, BatchNorm and dropout included (whole model in eval mode)."""

    feature_cache = True

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.set_trainable(self.model.head_params)

    def train_mode(self) -> None:
        self.model.module.eval()


class GradualUnfreeze(Strategy):
    """Gradual unfreezing (ULMFiT, Howard & Ruder 2018): the head trains from epoch 0; at the
    start of each later epoch one more backbone block becomes trainable."""

    last_to_first: bool

    def backbone_blocks(self) -> list[list[str]]:
        head = set(self.model.head_params)
        blocks = [[p for p in b.params if p not in head] for b in self.model.blocks]
        blocks = [b for b in blocks if b]
        return blocks[::-1] if self.last_to_first else blocks

    def on_epoch_start(self, ctx: EpochContext) -> None:
        unfrozen = self.backbone_blocks()[: ctx.epoch]
        self.set_trainable([*self.model.head_params, *(p for b in unfrozen for p in b)])

    def may_stop(self, epoch: int) -> bool:
        return epoch >= len(self.backbone_blocks())


@STRATEGIES.register("G-LF")
class GradualUnfreezeLastToFirst(GradualUnfreeze):
    __doc__ = GradualUnfreeze.__doc__ + " Order: last block to first."
    last_to_first = True


@STRATEGIES.register("G-FL")
class GradualUnfreezeFirstToLast(GradualUnfreeze):
    __doc__ = GradualUnfreeze.__doc__ + " Order: first block to last."
    last_to_first = False


@STRATEGIES.register("LP-FT")
class LinearProbeThenFineTune(Strategy):
    """LP-FT (Kumar et al. 2022): stage 2 of LP-FT. It starts from the best checkpoint of the
    LP run (head included) given as ``init`` and fine-tunes everything with a fresh Adam."""

    requires_init = True


class StartingPointPenalty(Strategy):
    """-SP regularisation (Li, Grandvalet & Davoine 2018): pulls the pretrained weights back to
    their starting point w⁰ and shrinks the new head. Which tensors count: conv and linear
    weights (plus BatchNorm affine parameters with ``sp_include_norm``)."""

    def __init__(self, model: BuiltModel, lr: float, options: StrategyOptions) -> None:
        super().__init__(model, lr, options)
        kinds = (nn.modules.conv._ConvNd, nn.Linear)
        if options.sp_include_norm:
            kinds += (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
        head = model.head_module
        self.backbone: list[nn.Parameter] = []
        self.head: list[nn.Parameter] = [head.weight]
        for module in model.module.modules():
            if module is head or not isinstance(module, kinds):
                continue
            if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                self.backbone.append(module.weight)
            else:
                self.backbone += [p for p in module.parameters(recurse=False)]
        self.start = [p.detach().clone() for p in self.backbone]

    def drifts(self) -> list[torch.Tensor]:
        return torch._foreach_sub(self.backbone, self.start)


@STRATEGIES.register("L1-SP")
class L1SP(StartingPointPenalty):
    __doc__ = (
        StartingPointPenalty.__doc__
        + """

    Ω(w) = α · ‖w_s − w⁰_s‖₁ + β · ‖w_head‖₁   (the paper's eq. 1; defaults in docs/strategies.md)
    """
    )

    def extra_loss(self) -> torch.Tensor:
        drift = torch.stack(torch._foreach_norm(self.drifts(), 1)).sum()
        head = torch.stack(torch._foreach_norm(self.head, 1)).sum()
        return self.options.l1sp_alpha * drift + self.options.l1sp_beta * head


@STRATEGIES.register("L2-SP")
class L2SP(StartingPointPenalty):
    __doc__ = (
        StartingPointPenalty.__doc__
        + """

    Ω(w) = α/2 · ‖w_s − w⁰_s‖₂² + β/2 · ‖w_head‖₂²   (defaults α = 0.1, β = 0.01, the original's)
    """
    )

    def extra_loss(self) -> torch.Tensor:
        drift = torch.stack(torch._foreach_norm(self.drifts())).square().sum()
        head = torch.stack(torch._foreach_norm(self.head)).square().sum()
        return self.options.l2sp_alpha / 2 * drift + self.options.l2sp_beta / 2 * head


@STRATEGIES.register("Auto-RGN")
class AutoRGN(Strategy):
    """Auto-RGN (Lee et al. 2023, "Surgical fine-tuning"): one parameter group per layer
    (a conv, norm or linear module). At the start of every epoch each layer's relative gradient
    norm RGN = ‖g‖₂ / ‖w‖₂ is averaged over the first ``rgn_batches`` training batches, and the
    layer's lr becomes lr · RGN / max(RGN). Adam's state is kept (``rgn_rebuild_optimizer``
    resets it, as the reference code's rebuilt optimizer does)."""

    def param_groups(self) -> list[dict]:
        groups = []
        for name, module in self.model.module.named_modules():
            params = list(module.parameters(recurse=False))
            if params:
                groups.append({"params": params, "lr": self.lr, "name": name})
        return groups

    def on_epoch_start(self, ctx: EpochContext) -> None:
        super().on_epoch_start(ctx)
        groups = ctx.optimizer.param_groups
        totals = torch.zeros(len(groups))
        batches = 0
        for _ in ctx.probe_gradients(self.options.rgn_batches):
            totals += torch.stack([relative_gradient_norm(g["params"]) for g in groups]).cpu()
            batches += 1
        rgn = totals / max(batches, 1)
        scale = rgn / rgn.max() if rgn.max() > 0 else torch.ones_like(rgn)
        for group, factor in zip(groups, scale.tolist(), strict=True):
            group["lr"] = self.lr * factor
        if self.options.rgn_rebuild_optimizer:
            ctx.optimizer.state.clear()


def relative_gradient_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """‖g‖₂ / ‖w‖₂ over the concatenation of ``params`` (0 where there is no gradient)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    weight_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(params))))
    return (grad_norm / weight_norm.clamp_min(1e-12)).detach()


def strategy_names() -> list[str]:
    return STRATEGIES.names()
