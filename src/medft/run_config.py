"""What defines one training run (``TrainConfig``), checked before anything is built."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from medft.metrics import METRICS
from medft.strategies import STRATEGIES, StrategyOptions


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one run; written into ``metrics.json``."""

    data: str
    model: str
    strategy: str
    lr: float
    seed: int
    out: str
    weights: str = "imagenet"
    epochs: int = 50
    patience: int = 5
    batch_size: int = 64
    workers: int = 2  # torch.utils.data processes reading the shards; 0: in this process
    init: str | None = None
    features: str | None = None  # a `medft features` file; None: LP extracts its own
    main_metric: str | None = None  # None: the dataset's own (meta.json), else by task type
    # The split whose main metric early-stops the run and picks its best epoch: "val" (the
    # sound protocol) or "test" (the paper's, most likely; see docs/protocol.md).
    early_stop_on: str = "val"
    options: StrategyOptions = field(default_factory=StrategyOptions)
    # A foundation backbone a config defined (``medft.foundation.Backbone.record``); None for
    # the built-in ones, timm and torchvision models.
    backbone: dict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", STRATEGIES.canonical(self.strategy))
        for name in ("data", "out", "init", "features"):  # metrics.json stores them as text
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for name in ("epochs", "patience", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, got {self.workers}")
        if self.early_stop_on not in ("val", "test"):
            raise ValueError(f"early_stop_on must be val or test, got {self.early_stop_on!r}")
        if self.main_metric is not None and self.main_metric not in METRICS:
            raise ValueError(f"main_metric must be one of {METRICS}, got {self.main_metric!r}")

    def to_dict(self) -> dict:
        return asdict(self)
