"""Train one cell of the benchmark: (dataset, model, strategy, lr, seed).

The loop reads top to bottom: strategy hook → train one epoch → evaluate → early stopping →
checkpoint. Every epoch ends with an atomically written checkpoint, so a killed job re-run
with the same ``out`` directory continues after its last finished epoch; a finished one
returns its metrics without training.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn
from tqdm import tqdm

from medft import loop
from medft.checkpoints import EarlyStopping, RunFiles, RunState, prediction_frame
from medft.data.shards import read_meta
from medft.errors import DataError, DivergedError
from medft.run_config import TrainConfig
from medft.run_setup import set_up
from medft.runtime import default_device
from medft.strategies.base import EpochContext

log = logging.getLogger(__name__)

DEFAULT_MAIN_METRIC = {"multilabel": "map", "binary": "auroc", "multiclass": "accuracy"}


class Cell:
    """One training run; ``run()`` trains (or resumes) and returns the final metrics."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.meta = read_meta(config.data)
        self.main_metric = (
            config.main_metric
            or self.meta.source.get("main_metric")
            or DEFAULT_MAIN_METRIC[self.meta.task]
        )
        self.device = default_device()
        self.loss_fn = nn.BCEWithLogitsLoss() if self.meta.multilabel else nn.CrossEntropyLoss()
        self.undefined_because = "no epoch evaluated in this session"
        self.files = RunFiles(self.out, config.to_dict())

    # -- setup (medft.run_setup) -------------------------------------------------------------
    def build(self) -> None:
        setup = set_up(self.config, self.meta, self.device, partial(run_first_stage, self.config))
        self.model, self.strategy, self.optimizer = setup.model, setup.strategy, setup.optimizer
        self.splits, self.forward = setup.splits, setup.forward
        self.stoppable_from = setup.stoppable_from
        self.step = loop.Step(
            self.forward, self.loss_fn, self.optimizer, self.strategy, self.device
        )

    # -- one epoch (medft.loop) ------------------------------------------------------------
    def batches(self, split: str, shuffle_seed: int | None = None):
        return self.splits[split].batches(self.config.batch_size, shuffle_seed, self.device)

    def shuffle_seed(self, epoch: int) -> int:
        return self.config.seed * 100_003 + epoch

    def probe_gradients(self, epoch: int):
        return loop.gradient_probe(self.step, self.batches("train", self.shuffle_seed(epoch)))

    def train_one_epoch(self, epoch: int) -> tuple[float, float | None]:
        """Mean task loss and mean strategy penalty (None without one) over the epoch."""
        train, batches = self.splits["train"], self.batches("train", self.shuffle_seed(epoch))
        n_batches = train.num_batches(self.config.batch_size)
        return loop.train_one_epoch(self.step, batches, n_batches, len(train), epoch)

    def evaluate(self, split: str) -> tuple[float, dict[str, float], np.ndarray]:
        """Loss, metrics and scores on ``split``; why a metric is undefined is kept in
        ``undefined_because``."""
        meta, data = self.meta, self.splits[split]
        module, batches = self.model.module, self.batches(split)
        loss, scores = loop.predict(self.step, module, batches, len(data), meta.multilabel)
        targets = data.targets.numpy()
        metrics, undefined = loop.split_metrics(meta.task, targets, scores, meta.classes)
        self.undefined_because = undefined or "no reason given"
        return loss, metrics, scores

    @property
    def name(self) -> str:
        c = self.config
        return f"{self.meta.name} {c.model} {c.strategy} lr={c.lr:g} seed={c.seed}"

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        """Train (or resume) to the end and return the final metrics (``metrics.json``); a
        finished run returns them without training."""
        done = self.files.finished()
        if done:
            log.info("%s is finished; nothing to do", self.out)
            return done
        return finish(self, self.train_until())

    def train_until(self, pause: Callable[[RunState], bool] | None = None) -> RunState:
        """Build, resume from the last finished epoch and train until training is over
        (early stopping, divergence, the epoch budget) or ``pause(state)``, asked before each
        epoch, says to stop there (a rung of the search: ``last.pt`` is kept, so a later call
        continues)."""
        cfg, files = self.config, self.files
        self.out.mkdir(parents=True, exist_ok=True)
        self.build()
        state = files.resume(self.model.module, self.optimizer, cfg.patience)
        while not state.over and state.epoch + 1 < cfg.epochs:
            if pause is not None and pause(state):
                break
            epoch = state.epoch + 1
            row = self.run_epoch(epoch, state, files)
            state.epoch = epoch
            state.rows.append(row)
            stops = state.stopping.exhausted and self.may_stop(epoch)
            if stops:
                log.info(
                    "early stopping after epoch %d (best %d)", epoch, state.stopping.best_epoch
                )
            state.over = bool(state.diverged) or stops or epoch + 1 >= cfg.epochs
            files.save_last(self.model.module, self.optimizer, state)
        return state

    def may_stop(self, epoch: int) -> bool:
        """Whether early stopping may end the run after ``epoch``: the strategy's schedule has
        its final form."""
        return epoch >= self.stoppable_from

    def run_epoch(self, epoch: int, state: RunState, files: RunFiles) -> dict:
        """Strategy hook → one training epoch → evaluation → early stopping; the epoch's log
        row. A diverged epoch is recorded in ``state`` and evaluates nothing."""
        cfg, stop_on = self.config, self.config.early_stop_on
        started = time.perf_counter()
        self.strategy.on_epoch_start(
            EpochContext(epoch, self.optimizer, self.probe_gradients(epoch))
        )
        train_loss, penalty = self.train_one_epoch(epoch)
        diverged = loop.divergence(train_loss, self.meta.multilabel, len(self.meta.classes))
        if diverged is None:
            stop_loss, stop_metrics, scores = self.evaluate(stop_on)
            if not np.isfinite(scores).all():
                diverged = f"the {stop_on} scores are not finite"
        if diverged is not None:
            state.diverged = {"epoch": epoch, "reason": diverged}
            log.warning(
                "%s diverged at epoch %d (%s); training stops, the result is the best epoch "
                "before it",
                self.name,
                epoch,
                diverged,
            )
            return {"epoch": epoch, "train_loss": train_loss}
        score = stop_metrics[self.main_metric]
        if np.isnan(score):
            log.warning(
                "%s epoch %d: the %s %s is undefined (%s); the epoch does not count as an "
                "improvement",
                self.name,
                epoch,
                stop_on,
                self.main_metric,
                self.undefined_because,
            )
        if self.strategy.selection_restarts(epoch):
            state.stopping = EarlyStopping(cfg.patience)
        improved = state.stopping.update(score, epoch)
        if improved:
            files.save_best(self.model.module, epoch)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            **({} if penalty is None else {"penalty": penalty}),
            f"{stop_on}_loss": stop_loss,
            **{f"{stop_on}_{k}": v for k, v in stop_metrics.items()},
            **loop.model_state(self.optimizer, self.model),
            "may_stop": self.may_stop(epoch),
            "seconds": time.perf_counter() - started,
        }
        prefix = f"[{cfg.strategy} lr={cfg.lr:g} seed={cfg.seed}] epoch {epoch}"
        line = loop.epoch_line(prefix, row, f"{stop_on}_{self.main_metric}", improved)
        tqdm.write(line, file=sys.stderr)
        return row


def run_first_stage(config: TrainConfig, strategy: str) -> str:
    """A strategy that starts from another's checkpoint, run without ``init``: train that
    first stage into ``out/stage1-<strategy>``; the path of its best weights."""
    out = Path(config.out) / f"stage1-{strategy}"
    first = replace(config, strategy=strategy, init=None, out=str(out))
    Cell(first).run()
    return str(out / "best.pt")


def finish(cell: Cell, state: RunState) -> dict:
    """Evaluate ``cell``'s best epoch's weights and write the results; a run with no epoch to
    keep fails, saying why."""
    cfg = cell.config
    if state.stopping.best_epoch < 0:
        if state.diverged:
            d = state.diverged
            raise DivergedError(
                f"{cell.name} diverged at epoch {d['epoch']} ({d['reason']}) before any "
                f"epoch could be kept; try a lower lr than {cfg.lr:g}"
            )
        raise DataError(
            f"{cell.name}: the {cfg.early_stop_on} {cell.main_metric} was undefined in every "
            f"epoch ({cell.undefined_because}); re-split so that the val split holds every "
            "class, or choose another main_metric"
        )
    files = cell.files
    cell.model.module.load_state_dict(files.load_best())
    results, predictions = {}, []
    with cell.strategy.merged():
        evaluated = {s: cell.evaluate(s) for s in ("val", "test") if s in cell.splits}
    for split, (loss, metrics, scores) in evaluated.items():
        results[split] = {"loss": loss, **metrics}
        predictions.append(
            prediction_frame(
                cell.splits[split], split, scores, cell.meta.classes, cell.meta.multilabel
            )
        )
    summary = {
        "config": files.config,
        "dataset": cell.meta.name,
        "task": cell.meta.task,
        "main_metric": cell.main_metric,
        # The preprocessing the weights expect (and, for a foundation backbone, its source,
        # id and licence): medft.models.BuiltModel.provenance.
        "model_provenance": cell.model.provenance,
        "best_epoch": state.stopping.best_epoch,
        "epochs_trained": state.epoch + 1,
        # {"epoch", "reason"} when training stopped on divergence; the metrics are the
        # best epoch's before it.
        "diverged": state.diverged,
        # Parameters the last epoch trained, and their share of the model's.
        **trainable(cell.model.module),
        "metrics": results,
    }
    files.write_results(summary, pd.concat(predictions))
    return summary


def trainable(module) -> dict:
    params = list(module.parameters())
    n = sum(p.numel() for p in params if p.requires_grad)
    return {"trainable_params": n, "trainable_share": n / sum(p.numel() for p in params)}


def train(config: TrainConfig) -> dict:
    """Train (or resume, or skip when finished) one cell; returns the ``metrics.json`` dict."""
    return Cell(config).run()
