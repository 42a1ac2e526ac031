"""A run's state between epochs and its files: what makes a killed run resume exactly.

``RunState`` (the epoch reached, early stopping, the epoch log, divergence) travels inside
``last.pt`` as plain values, beside the model, the optimizer and the RNG; ``RunFiles`` owns
every file a run folder holds.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from medft.errors import DataError
from medft.runtime import atomic_save, atomic_write_text, load_checkpoint

log = logging.getLogger(__name__)


@dataclass
class EarlyStopping:
    """Best score so far on the early-stopping split and the epochs since it improved."""

    patience: int
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, score: float, epoch: int) -> bool:
        """Record ``epoch``'s score; True when it is the best so far (NaN never is)."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = float(score), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.bad_epochs >= self.patience


@dataclass
class RunState:
    patience: int
    epoch: int = -1  # the last finished epoch
    stopping: EarlyStopping = None  # type: ignore[assignment]
    rows: list[dict] = field(default_factory=list)  # the epoch log
    diverged: dict | None = None  # {"epoch", "reason"} once training diverged
    # Training has ended (early stopping, divergence, the epoch budget): a resumed run only
    # evaluates its best epoch.
    over: bool = False

    def __post_init__(self) -> None:
        if self.stopping is None:
            self.stopping = EarlyStopping(self.patience)
        elif isinstance(self.stopping, dict):
            self.stopping = EarlyStopping(**self.stopping)

    def to_dict(self) -> dict:
        return asdict(self)


def plain(config: dict) -> dict:
    """A config as JSON would give it back (tuples as lists, paths as text)."""
    return json.loads(json.dumps(config))


class RunFiles:
    """The files of one run folder: ``last.pt`` (resume), ``best.pt``, ``epochs.csv``,
    ``predictions.parquet`` and ``metrics.json`` (present only once the run is finished)."""

    def __init__(self, out: str | Path, config: dict) -> None:
        self.out = Path(out)
        self.config = plain(config)

    def finished(self) -> dict | None:
        path = self.out / "metrics.json"
        if not path.exists():
            return None
        done = json.loads(path.read_text())
        self.check_same_config(done["config"])
        return done

    def check_same_config(self, saved: dict) -> None:
        if saved != self.config:
            changed = sorted(k for k in self.config if saved.get(k) != self.config[k])
            raise DataError(
                f"{self.out} holds a run with a different config ({', '.join(changed)}); "
                "use another --out or delete it"
            )

    def resume(self, module: torch.nn.Module, optimizer, patience: int) -> RunState:
        """The state after the last finished epoch, model and optimizer restored; a fresh
        state when there is none."""
        path = self.out / "last.pt"
        if not path.exists():
            return RunState(patience)
        checkpoint = load_checkpoint(path)
        self.check_same_config(checkpoint["config"])
        module.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["rng"])
        state = RunState(**checkpoint["state"])
        log.info("resuming %s after epoch %d", self.out, state.epoch)
        return state

    def save_last(self, module: torch.nn.Module, optimizer, state: RunState) -> None:
        atomic_save(
            {
                "model": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "state": state.to_dict(),
                "config": self.config,
            },
            self.out / "last.pt",
        )
        self.write_epoch_log(state.rows)

    def save_best(self, module: torch.nn.Module, epoch: int) -> None:
        atomic_save({"model": module.state_dict(), "epoch": epoch}, self.out / "best.pt")

    def load_best(self) -> dict:
        return load_checkpoint(self.out / "best.pt")["model"]

    def write_epoch_log(self, rows: list[dict]) -> None:
        atomic_write_text(pd.DataFrame(rows).to_csv(index=False), self.out / "epochs.csv")

    def write_results(self, summary: dict, predictions: pd.DataFrame) -> None:
        """The finished run: predictions, then ``metrics.json`` last (its presence means
        done); ``last.pt`` is dropped, ``best.pt`` and the logs are kept."""
        predictions.to_parquet(self.out / "predictions.parquet", index=False)
        atomic_write_text(json.dumps(summary, indent=2), self.out / "metrics.json")
        (self.out / "last.pt").unlink(missing_ok=True)


def prediction_frame(data, split: str, scores, classes, multilabel: bool) -> pd.DataFrame:
    """A split's predictions as ``predictions.parquet`` keeps them: id, split, group, the
    target(s), one probability column per class."""
    frame = pd.DataFrame(scores, columns=[f"prob_{c}" for c in classes])
    targets = data.targets.numpy()
    if multilabel:
        for j, c in enumerate(classes):
            frame.insert(j, f"target_{c}", targets[:, j].astype(int))
    else:
        frame.insert(0, "target", targets)
    frame.insert(0, "group", data.groups)
    frame.insert(0, "split", split)
    frame.insert(0, "id", data.ids)
    return frame
