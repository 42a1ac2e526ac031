"""Auto-RGN (Lee et al. 2023, "Surgical fine-tuning"): per-tensor lrs from relative gradient
norms, as the reference code computes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medft.lazy import lazy_module
from medft.strategies import StrategyInfo, option, register_strategy
from medft.strategies.base import EpochContext, Strategy

if TYPE_CHECKING:
    from torch import nn

    from medft.models import BuiltModel
    from medft.strategies import StrategyOptions

torch = lazy_module("torch")


@dataclass(frozen=True)
class AutoRGNOptions:
    rgn_batches: int = option(5, "batches averaged for the gradient norms", minimum=1)
    rgn_groups: str = option(
        "tensor",
        "one RGN per parameter tensor (the reference code) or per conv/norm/linear module",
        choices=("tensor", "module"),
    )
    rgn_rebuild_optimizer: bool = option(
        True, "a fresh Adam each epoch with the new lrs (the reference code)"
    )
    rgn_norm: str = option(
        "frozen",
        "BatchNorm scales and biases: frozen (the reference code: out of max(RGN), not "
        "trained) or scaled (in max(RGN), trained at their own lr; medft before 0.2)",
        choices=("frozen", "scaled"),
    )
    rgn_head: str = option(
        "scaled",
        "the new head: scaled (the reference code: its RGN enters max(RGN)) or full (out of "
        "the maximum, at the full lr)",
        choices=("scaled", "full"),
    )


class AutoRGN(Strategy):
    """Auto-RGN (Lee et al. 2023, "Surgical fine-tuning"), as the reference code
    (``get_lr_weights`` and the optimizer rebuilt in its ``main.py``): at the start of every
    epoch each parameter tensor's relative gradient norm RGN = ‖g‖₂ / ‖w‖₂, averaged over the
    first ``rgn_batches`` training batches, sets its lr to lr · RGN / max(RGN), and Adam starts
    afresh with those lrs. BatchNorm scales and biases are neither in max(RGN) nor in the
    optimizer (the reference's filter on "bn" in the name, here by module type); the model
    stays in train mode, so their running statistics adapt, as in the reference.

    Options: ``rgn_norm: scaled`` puts BatchNorm back in the maximum and trains it;
    ``rgn_head: full`` takes the new head out of the maximum at the full lr; ``rgn_groups:
    module`` takes one RGN per conv, norm or linear module; ``rgn_rebuild_optimizer: false``
    keeps Adam's moments."""

    def __init__(self, model: BuiltModel, lr: float, options: StrategyOptions) -> None:
        super().__init__(model, lr, options)
        norm = batchnorm_parameters(model.module) if options.rgn_norm == "frozen" else set()
        self.trained = [name for name in self.named if name not in norm]
        self.head = set(model.head_params)

    def units(self) -> list[tuple[str, list[str]]]:
        """(name, parameter names) of each unit that gets one lr: a tensor, or a module."""
        if self.options.rgn_groups == "tensor":
            return [(name, [name]) for name in self.trained]
        trained, units = set(self.trained), []
        for module_name, module in self.model.module.named_modules():
            prefix = f"{module_name}." if module_name else ""
            names = [prefix + n for n, _ in module.named_parameters(recurse=False)]
            names = [n for n in names if n in trained]
            if names:
                units.append((module_name, names))
        return units

    def param_groups(self) -> list[dict]:
        full = self.options.rgn_head == "full"
        return [
            {
                "params": [self.named[n] for n in names],
                "lr": self.lr,
                "name": name,
                # Whether the unit's RGN enters max(RGN) and scales its lr.
                "rgn_scaled": not (full and set(names) <= self.head),
            }
            for name, names in self.units()
        ]

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        self.set_trainable(self.trained)
        groups = ctx.optimizer.param_groups
        totals = torch.zeros(len(groups))
        batches = 0
        for _ in ctx.probe_gradients(self.options.rgn_batches):
            totals += torch.stack([relative_gradient_norm(g["params"]) for g in groups]).cpu()
            batches += 1
        rgn = totals / max(batches, 1)
        # A tensor of zeros (a zero-initialised bias or BatchNorm scale) has no relative
        # gradient norm: it is left out of max(RGN) and gets the full lr, so it can move.
        scaled = torch.tensor([g["rgn_scaled"] for g in groups]) & torch.isfinite(rgn)
        top = rgn[scaled].max() if scaled.any() else torch.tensor(0.0)
        factors = torch.where(scaled, rgn / top, 1.0) if top > 0 else torch.ones_like(rgn)
        for group, factor in zip(groups, factors.tolist(), strict=True):
            group["lr"] = self.lr * factor
        if self.options.rgn_rebuild_optimizer:
            ctx.optimizer.state.clear()

    def train_mode(self) -> None:
        self.model.module.train()


def batchnorm_parameters(module: nn.Module) -> set[str]:
    """Names of the BatchNorm scales and biases in ``module``. The reference code selects
    them by "bn" in the name; by type, the selection also holds torchvision ResNet's
    ``downsample.1`` and DenseNet's ``norm*`` layers, which that filter misses."""
    return {
        f"{module_name}.{name}" if module_name else name
        for module_name, sub in module.named_modules()
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm)
        for name, _ in sub.named_parameters(recurse=False)
    }


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


def _caption(o) -> str:
    adam = "rebuilt" if o.rgn_rebuild_optimizer else "kept"
    return (
        f"Auto-RGN per {o.rgn_groups}, Adam {adam} each epoch, BatchNorm {o.rgn_norm}, "
        f"head {o.rgn_head}"
    )


register_strategy(
    StrategyInfo(
        "Auto-RGN",
        AutoRGN,
        "every parameter but BatchNorm, lr per tensor from its relative gradient norm",
        options=AutoRGNOptions,
        order=7,
        in_paper=True,
        adapts_block_lrs=True,
        caption=_caption,
    )
)
