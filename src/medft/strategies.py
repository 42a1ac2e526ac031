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
    # 0: LP-FT's stage 2 starts from the LP run's best checkpoint; N > 0: one run, LP for N
    # epochs, then everything trainable with a fresh Adam (the paper's variant).
    lpft_lp_epochs: int = 0
    lp_feature_cache: bool = True

    def __post_init__(self) -> None:
        for name, choices in (("frozen_bn", FROZEN_BN), ("rgn_groups", RGN_GROUPS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if self.lpft_lp_epochs < 0:
            raise ValueError(f"lpft_lp_epochs must be 0 or more, got {self.lpft_lp_epochs}")


FROZEN_BN = ("eval", "train")
RGN_GROUPS = ("tensor", "module")


@dataclass
class EpochContext:
    epoch: int
    optimizer: torch.optim.Optimizer
    # Runs forward/backward on the first n training batches of this epoch and yields after
    # each backward, gradients in place; no optimizer step is taken.
    probe_gradients: Callable[[int], Iterator[None]]


class Strategy:
    """Full fine-tuning (FT): every parameter trainable, one lr. The base of the others."""

    # Whether the strategy sets each block's lr itself, epoch by epoch (the report then
    # plots the ``lr_<block>`` columns of its epoch logs).
    adapts_block_lrs = False

    @classmethod
    def starts_from(cls, options: StrategyOptions) -> str | None:
        """The strategy whose run's best checkpoint this one starts from (same dataset,
        model, lr and seed), or None: what the planner and the loop read, never a name."""
        return None

    @classmethod
    def shares_features(cls, options: StrategyOptions) -> bool:
        """Whether only a head trains on a fixed backbone's features, which can then be
        computed once per (dataset, model) and shared by every lr and seed."""
        return False

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

    def extra_loss(self) -> torch.Tensor | None:
        return None

    def may_stop(self, epoch: int) -> bool:
        """Whether early stopping may end the run after ``epoch``."""
        return True

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


STRATEGIES.register("FT")(Strategy)


@STRATEGIES.register("LP")
class LinearProbe(Strategy):
    """Linear probing (Kumar et al. 2022): only the new head trains; the backbone is a fixed
    feature extractor, BatchNorm and dropout included (whole model in eval mode)."""

    @classmethod
    def shares_features(cls, options: StrategyOptions) -> bool:
        # Exact only while the backbone is a fixed function: BatchNorm in eval mode.
        return options.frozen_bn == "eval" and options.lp_feature_cache

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        self.set_trainable(self.model.head_params)

    def train_mode(self) -> None:
        if self.options.frozen_bn == "eval":
            self.model.module.eval()
        else:
            self.model.module.train()


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

    def may_stop(self, epoch: int) -> bool:
        return epoch >= len(self.model.blocks) - 1


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
    """LP-FT (Kumar et al. 2022). By default stage 2 only: it starts from the best checkpoint
    of the LP run (head included) and fine-tunes everything with a fresh Adam. With
    ``lpft_lp_epochs: N``, one run: LP for N epochs, then everything trainable with a fresh
    Adam; early stopping and the best epoch count only in the second stage."""

    @classmethod
    def starts_from(cls, options: StrategyOptions) -> str | None:
        return "LP" if options.lpft_lp_epochs == 0 else None

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

    def may_stop(self, epoch: int) -> bool:
        return epoch >= self.options.lpft_lp_epochs

    def selection_restarts(self, epoch: int) -> bool:
        return epoch == self.options.lpft_lp_epochs > 0  # early stopping counts in stage 2


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
    """Auto-RGN (Lee et al. 2023, "Surgical fine-tuning"), as the reference code: at the start
    of every epoch each parameter tensor's relative gradient norm RGN = ‖g‖₂ / ‖w‖₂, averaged
    over the first ``rgn_batches`` training batches, sets its lr to lr · RGN / max(RGN), and
    Adam starts afresh with those lrs. ``rgn_groups: module`` takes one RGN per conv, norm or
    linear module instead; ``rgn_rebuild_optimizer: false`` keeps Adam's moments."""

    adapts_block_lrs = True

    def param_groups(self) -> list[dict]:
        if self.options.rgn_groups == "tensor":
            return [{"params": [p], "lr": self.lr, "name": n} for n, p in self.named.items()]
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
        # A tensor of zeros (a zero-initialised bias or BatchNorm scale) has no relative
        # gradient norm: it is left out of max(RGN) and gets the full lr, so it can move.
        defined = torch.isfinite(rgn)
        top = rgn[defined].max() if defined.any() else torch.tensor(0.0)
        scale = torch.where(defined, rgn / top, 1.0) if top > 0 else torch.ones_like(rgn)
        for group, factor in zip(groups, scale.tolist(), strict=True):
            group["lr"] = self.lr * factor
        if self.options.rgn_rebuild_optimizer:
            ctx.optimizer.state.clear()


def relative_gradient_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """‖g‖₂ / ‖w‖₂ over the concatenation of ``params``: 0 where there is no gradient, NaN
    where the weights are all zero."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    weight_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(params))))
    if weight_norm == 0:
        return torch.tensor(float("nan"))
    return (grad_norm / weight_norm).detach()


def strategy_names() -> list[str]:
    return STRATEGIES.names()
