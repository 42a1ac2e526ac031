"""What every post-hoc job shares: its inputs, a finished run rebuilt for evaluation, and the
derived runs it writes in the runs' own format (``metrics.json`` last, so its presence means
done; the job's index file, the rule's output, after everything)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from medft.report.collect import collect_runs
from medft.report.tables import select_lr
from medft.runtime import atomic_write_text


@dataclass(frozen=True)
class Job:
    metrics_files: list[str]  # the finished runs of one (dataset, model)
    folder: str  # where this evaluation writes its derived runs and tables
    index: str  # the rule's output: what was written, written last
    rows: list[str]  # the derived rows to write
    select_on: str = "val"  # the split that chooses k, C, α and each strategy's lr
    features: str | None = None
    batch_size: int | None = None
    # robustness: the severities (1–5) of every corruption to evaluate
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    # robustness: at most this many evaluation images, evenly spaced (None: all)
    images: int | None = None

    def runs(self) -> pd.DataFrame:
        return collect_runs(self.metrics_files)

    def chosen(self) -> pd.DataFrame:
        """Every strategy's runs at its chosen lr, as the report chooses it."""
        return select_lr(self.runs(), self.select_on)


def summary_of(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


class Evaluation:
    """A finished run rebuilt for evaluation (nothing is written): its data, its model as its
    strategy builds it — a strategy that trains on shared features is rebuilt as the whole
    model, whose forward pass reads images — and any weights loaded into it."""

    def __init__(self, summary: dict, batch_size: int | None = None) -> None:
        from medft.engine import Cell
        from medft.run_config import TrainConfig
        from medft.strategies import REFERENCE, STRATEGIES, StrategyOptions

        saved = dict(summary["config"])
        options = StrategyOptions(**saved.pop("options"))
        config = TrainConfig(**saved, options=options)
        if STRATEGIES.get(config.strategy).shares_features(options):
            config = replace(config, strategy=REFERENCE, init=None, features=None)
        config = replace(config, workers=0, batch_size=batch_size or config.batch_size)
        self.cell = Cell(config)
        self.cell.build()
        self.meta = self.cell.meta

    def load(self, state: dict) -> None:
        self.cell.model.module.load_state_dict(state)

    def evaluate(self, split: str) -> tuple[float, dict[str, float], np.ndarray]:
        with self.cell.strategy.merged():
            return self.cell.evaluate(split)

    @property
    def splits(self) -> dict:
        return self.cell.splits


def best_state(run_dir: str | Path) -> dict:
    from medft.runtime import load_checkpoint

    return load_checkpoint(Path(run_dir) / "best.pt")["model"]


def row_folder(row: str) -> str:
    """A derived row's folder name: ``WiSE(LP, FT)`` → ``WiSE-LP-FT``."""
    return re.sub(r"[^A-Za-z0-9]+", "-", row).strip("-")


def write_derived(
    job: Job,
    row: str,
    like: dict,
    lr: float,
    seed: int,
    results: dict[str, dict],
    predictions: pd.DataFrame,
    extra: dict | None = None,
) -> str:
    """A derived run of ``row`` at (lr, seed), in the format of ``like`` (a grid run's
    ``metrics.json``); returns its ``metrics.json`` path."""
    out = Path(job.folder) / row_folder(row) / f"lr{lr:g}" / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "config": {**like["config"], "strategy": row, "lr": lr, "seed": seed, "out": str(out)},
        "dataset": like["dataset"],
        "task": like["task"],
        "main_metric": like["main_metric"],
        "best_epoch": 0,
        "epochs_trained": 0,
        "diverged": None,
        "post_hoc": extra or {},
        "metrics": results,
    }
    predictions.to_parquet(out / "predictions.parquet", index=False)
    atomic_write_text(json.dumps(summary, indent=2), out / "metrics.json")
    return str(out / "metrics.json")


def write_index(job: Job, runs: list[str], tables: dict[str, str] | None = None) -> None:
    atomic_write_text(json.dumps({"runs": runs, "tables": tables or {}}, indent=2), Path(job.index))


def derived_metrics_files(index_files: list[str]) -> list[str]:
    """The derived runs listed by post-hoc index files."""
    return [run for path in index_files for run in json.loads(Path(path).read_text())["runs"]]
