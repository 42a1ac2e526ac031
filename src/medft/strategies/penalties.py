"""Starting-point penalties: L1-SP and L2-SP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medft.lazy import lazy_module
from medft.strategies import StrategyInfo, option, register_strategy
from medft.strategies.base import Strategy

if TYPE_CHECKING:
    from torch import nn

    from medft.models import BuiltModel
    from medft.strategies import StrategyOptions

torch = lazy_module("torch")


@dataclass(frozen=True)
class StartingPointOptions:
    sp_include_norm: bool = option(False, "also pull BatchNorm affine parameters to the start")


@dataclass(frozen=True)
class L1SPOptions(StartingPointOptions):
    # The paper's values (its eq. 1).
    l1sp_alpha: float = option(7e-5, "L1-SP weight on the drift from the start", minimum=0)
    l1sp_beta: float = option(1.4e-4, "L1-SP weight on the head", minimum=0)


@dataclass(frozen=True)
class L2SPOptions(StartingPointOptions):
    # The original's values (Li et al. 2018).
    l2sp_alpha: float = option(0.1, "L2-SP weight on the drift from the start", minimum=0)
    l2sp_beta: float = option(0.01, "L2-SP weight on the head", minimum=0)


class StartingPointPenalty(Strategy):
    """-SP regularisation (Li, Grandvalet & Davoine 2018): pulls the pretrained weights back to
    their starting point w⁰ and shrinks the new head. Which tensors count: conv and linear
    weights (plus BatchNorm affine parameters with ``sp_include_norm``)."""

    def __init__(self, model: BuiltModel, lr: float, options: StrategyOptions) -> None:
        super().__init__(model, lr, options)
        nn = torch.nn
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


register_strategy(
    StrategyInfo(
        "L1-SP",
        L1SP,
        "every parameter, pulled back to the start (L1)",
        options=L1SPOptions,
        order=5,
        in_paper=True,
        caption=lambda o: f"L1-SP α={o.l1sp_alpha:g}, β={o.l1sp_beta:g}",
    )
)
register_strategy(
    StrategyInfo(
        "L2-SP",
        L2SP,
        "every parameter, pulled back to the start (L2)",
        options=L2SPOptions,
        order=6,
        in_paper=True,
        caption=lambda o: f"L2-SP α={o.l2sp_alpha:g}, β={o.l2sp_beta:g}",
    )
)
