"""Everything a run needs before its first epoch: the model (from its first stage's
checkpoint where its strategy starts from another), the strategy, Adam, the splits — or a
frozen backbone's features in their place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from medft import features
from medft.data.shards import MEMORY_FORMAT, SPLITS, DatasetMeta, ShardDataset
from medft.errors import DataError
from medft.models import BuiltModel, create_model
from medft.run_config import TrainConfig
from medft.runtime import load_checkpoint, seed_everything
from medft.strategies import STRATEGIES
from medft.strategies.base import Strategy

log = logging.getLogger(__name__)


@dataclass
class RunSetup:
    model: BuiltModel
    strategy: Strategy
    optimizer: torch.optim.Optimizer
    splits: dict
    # What batches pass through: the whole model, or the head alone on shared features.
    forward: nn.Module
    # The first epoch after which early stopping may end the run.
    stoppable_from: int


def set_up(
    config: TrainConfig, meta: DatasetMeta, device, run_first_stage: Callable[[str], str]
) -> RunSetup:
    """Build one run; ``run_first_stage(strategy)`` trains the stage this run's strategy
    starts from when ``config.init`` does not give its checkpoint, returning its path."""
    cfg = config
    seed_everything(cfg.seed)
    model = create_model(
        cfg.model, len(meta.classes), cfg.weights, seed=cfg.seed, backbone=cfg.backbone
    )
    if model.preprocess.crop != meta.image_size:
        log.warning(
            "%s expects %d px images, the dataset has %d px",
            cfg.model,
            model.preprocess.crop,
            meta.image_size,
        )
    info = STRATEGIES.get(cfg.strategy)
    first = info.starts_from(cfg.options)
    if first:
        init = cfg.init or run_first_stage(first)
        model.module.load_state_dict(load_checkpoint(init)["model"])
    info.cls.extend_model(model, cfg.options)
    model.module.to(device, memory_format=MEMORY_FORMAT)
    strategy: Strategy = info.cls(model, cfg.lr, cfg.options)
    stoppable_from = info.stoppable_from(cfg.options, len(model.blocks))
    optimizer = torch.optim.Adam(strategy.param_groups(), lr=cfg.lr)
    splits = {
        s: ShardDataset(cfg.data, s, model.mean, model.std, workers=cfg.workers)
        for s in SPLITS
        if meta.split_counts.get(s)  # no val split under `val_fraction: 0`
    }
    if cfg.early_stop_on not in splits:
        raise DataError(
            f"{cfg.data} has no {cfg.early_stop_on} split to early-stop on; prepare it "
            "with a validation split or set early_stop_on: test"
        )
    forward = model.module
    if info.shares_features(cfg.options):
        if cfg.features:
            expected = features.provenance(cfg.data, cfg.model, cfg.weights, cfg.seed)
            splits = features.load(cfg.features, expected, splits)
        else:
            splits = {
                s: features.head_inputs(model, d, cfg.batch_size, device) for s, d in splits.items()
            }
        forward = model.head_module
    return RunSetup(model, strategy, optimizer, splits, forward, stoppable_from)
