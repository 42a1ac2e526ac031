"""The training loop's steps as flat functions (as torchvision's references): one epoch of
training, predictions and metrics on a split, the divergence check, the per-block lrs. They
take what they use; ``medft.engine.Cell`` sets up a run and calls them epoch by epoch."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from medft.metrics import METRICS, UndefinedMetricWarning, compute_metrics
from medft.models import BuiltModel
from medft.runtime import autocast, progress
from medft.strategies.base import Strategy

# An epoch whose mean training loss exceeds this many times a uniform prediction's has
# diverged: a model that trains cannot be that much worse than guessing.
DIVERGED_OVER_CHANCE = 10

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Step:
    """What every step of a run uses: the forward pass (the whole model, or the head alone on
    shared features), the task loss, the optimizer, the strategy and the device."""

    forward: Callable
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    strategy: Strategy
    device: torch.device


def batch_loss(step: Step, inputs, targets) -> torch.Tensor:
    """Task loss of a batch already on the device."""
    with autocast(step.device):
        logits = step.forward(inputs)
    return step.loss_fn(logits.float(), targets)


def train_step(step: Step, inputs, targets) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One optimizer step on task loss + the strategy's penalty; returns both, detached
    device tensors (reading them waits for the step)."""
    loss = batch_loss(step, inputs, targets)
    extra = step.strategy.extra_loss()
    objective = loss if extra is None else loss + extra
    step.optimizer.zero_grad(set_to_none=True)
    objective.backward()
    step.optimizer.step()
    return loss.detach(), None if extra is None else extra.detach()


def train_one_epoch(
    step: Step, batches: Batches, n_batches: int, n_images: int, epoch: int
) -> tuple[float, float | None]:
    """Mean task loss and mean strategy penalty (None without one) over the epoch."""
    step.strategy.train_mode()
    # Summed on the device: reading the loss every step would make the CPU wait for the GPU
    # each step instead of queueing the next one.
    total = torch.zeros((), device=step.device)
    penalty = None
    for inputs, targets in progress(batches, n_batches, f"epoch {epoch}", unit="batches"):
        loss, extra = train_step(step, inputs, targets)
        total += loss * len(targets)
        if extra is not None:
            penalty = extra * len(targets) + (0 if penalty is None else penalty)
    return total.item() / n_images, None if penalty is None else penalty.item() / n_images


def gradient_probe(step: Step, batches: Batches) -> Callable[[int], Iterator[None]]:
    """A strategy's gradient probe (``EpochContext.probe_gradients``): forward/backward on the
    first n of ``batches`` in train mode, yielding with each batch's gradients in place; no
    step is taken."""

    def probe(n: int) -> Iterator[None]:
        step.strategy.train_mode()
        for i, (inputs, targets) in enumerate(batches):
            if i == n:
                break
            step.optimizer.zero_grad(set_to_none=True)
            batch_loss(step, inputs, targets).backward()
            yield
        step.optimizer.zero_grad(set_to_none=True)

    return probe


@torch.inference_mode()
def predict(
    step: Step, module: nn.Module, batches: Batches, n_images: int, multilabel: bool
) -> tuple[float, np.ndarray]:
    """Mean task loss and class probabilities over ``batches``, ``module`` in eval mode."""
    module.eval()
    total, scores = torch.zeros((), device=step.device), []
    for inputs, targets in batches:
        with autocast(step.device):
            logits = step.forward(inputs).float()
        total += step.loss_fn(logits, targets) * len(targets)
        probs = logits.sigmoid() if multilabel else logits.softmax(dim=1)
        scores.append(probs.cpu().numpy())
    return total.item() / n_images, np.concatenate(scores)


def split_metrics(
    task: str, targets: np.ndarray, scores: np.ndarray, classes
) -> tuple[dict[str, float], str | None]:
    """The metrics of one split, and why any is undefined (None: all defined). Non-finite
    scores (a diverged model) give NaN metrics."""
    if not np.isfinite(scores).all():
        return dict.fromkeys(METRICS, math.nan), "the scores are not finite"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedMetricWarning)
        metrics = compute_metrics(task, targets, scores, classes)
    undefined = [str(w.message) for w in caught if w.category is UndefinedMetricWarning]
    return metrics, "; ".join(dict.fromkeys(undefined)) or None


def divergence(train_loss: float, multilabel: bool, n_classes: int) -> str | None:
    """Why the epoch's training loss shows divergence, or None: not finite, or above
    ``DIVERGED_OVER_CHANCE`` times the loss of a constant uniform prediction."""
    if not math.isfinite(train_loss):
        return f"train loss {train_loss}"
    chance = math.log(2) if multilabel else math.log(n_classes)
    if train_loss > DIVERGED_OVER_CHANCE * chance:
        return (
            f"train loss {train_loss:.4g}, over {DIVERGED_OVER_CHANCE}x the {chance:.3f} of "
            "a uniform prediction"
        )
    return None


def model_state(optimizer, model: BuiltModel) -> dict[str, float | int]:
    """What an epoch's log row records of the model: its trainable parameters and each
    block's lr."""
    trainable = sum(p.numel() for p in model.module.parameters() if p.requires_grad)
    return {"trainable_params": trainable, **block_lrs(optimizer, model)}


def epoch_line(prefix: str, row: dict, score_column: str, improved: bool) -> str:
    """An epoch's progress line: losses, the early-stopping score (``*``: a new best), time."""
    penalty = row.get("penalty")
    loss_column = score_column.split("_", 1)[0] + "_loss"
    return (
        f"{prefix}: train_loss {row['train_loss']:.4f} "
        + ("" if penalty is None else f"penalty {penalty:.4g} ")
        + f"{loss_column} {row[loss_column]:.4f} "
        f"{score_column} {row[score_column]:.4f}{' *' if improved else ''} "
        f"({row['seconds']:.1f}s)"
    )


def block_lrs(optimizer, model: BuiltModel) -> dict[str, float]:
    """Per block: the mean lr of its trainable parameters (0 when the block is frozen)."""
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.module.named_parameters())
    lrs = {}
    for block in model.blocks:
        values = [lr_of[id(named[p])] for p in block.params if named[p].requires_grad]
        lrs[f"lr_{block.name}"] = float(np.mean(values)) if values else 0.0
    return lrs
