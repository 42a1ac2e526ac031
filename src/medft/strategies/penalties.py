"""Starting-point penalties: L1-SP and L2-SP."""

from __future__ import annotations

import torch
from torch import nn

from medft.models import BuiltModel
from medft.strategies import StrategyOptions
from medft.strategies.base import Strategy


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
