"""How much of a model each strategy trains: its share of the model's parameters once its
schedule has its final form (``medft list strategies --model NAME``)."""

from __future__ import annotations


def trainable_shares(model_name: str, strategies: list[str], size: int = 64) -> dict[str, float]:
    """Per strategy: trainable parameters / all parameters of ``model_name`` (random weights,
    a 2-class head, adapters included), at the first epoch its schedule has its final form.
    The hooks run for real; Auto-RGN's gradient probe on two random images."""
    import torch

    from medft.models import create_model
    from medft.strategies import STRATEGIES, StrategyOptions
    from medft.strategies.base import EpochContext

    options = StrategyOptions()
    images, labels = torch.randn(2, 3, size, size), torch.tensor([0, 1])
    shares = {}
    for name in strategies:
        info = STRATEGIES.get(name)
        model = create_model(model_name, 2, "none")
        info.cls.extend_model(model, options)
        strategy = info.cls(model, 1e-3, options)
        optimizer = torch.optim.Adam(strategy.param_groups(), lr=1e-3)

        def probe(n: int, optimizer=optimizer, module=model.module):
            for _ in range(n):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(module(images), labels).backward()
                yield

        epoch = info.stoppable_from(options, len(model.blocks))
        strategy.on_epoch_start(EpochContext(epoch, optimizer, probe))
        params = list(model.module.parameters())
        trained = sum(p.numel() for p in params if p.requires_grad)
        shares[name] = trained / sum(p.numel() for p in params)
    return shares
