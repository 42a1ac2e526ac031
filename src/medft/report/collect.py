"""Run outputs (``metrics.json``, ``epochs.csv``) gathered into one frame each."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def read_summary(path: str | Path) -> dict:
    """A run's ``metrics.json``; one that does not read stops with its name and the fix."""
    from medft.errors import DataError
    from medft.status import read_metrics

    summary, problem = read_metrics(Path(path))
    if problem:
        raise DataError(problem)
    return summary


def collect_runs(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """One row per finished run: its cell, task, main metric, and every val_/test_ metric."""
    rows = []
    for path in metrics_files:
        summary = read_summary(path)
        cfg = summary["config"]
        row = {
            "dataset": summary["dataset"],
            "model": cfg["model"],
            "strategy": cfg["strategy"],
            "lr": cfg["lr"],
            "seed": cfg["seed"],
            "task": summary["task"],
            "main_metric": summary["main_metric"],
            "best_epoch": summary["best_epoch"],
            "epochs_trained": summary["epochs_trained"],
            "early_stop_on": cfg.get("early_stop_on", "val"),
            "diverged_epoch": (summary.get("diverged") or {}).get("epoch"),
            # runs before medft 0.4 did not record it
            "trainable_share": summary.get("trainable_share"),
            **model_record(summary, cfg),
            "run_dir": str(Path(path).parent),
        }
        for split, values in summary["metrics"].items():
            row.update({f"{split}_{k}": v for k, v in values.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def model_record(summary: dict, cfg: dict) -> dict:
    """Where the run's weights came from, their licence, and the preprocessing they expect
    (``medft.models.BuiltModel.provenance``; empty for runs that did not record it)."""
    provenance = summary.get("model_provenance") or {}
    backbone = provenance.get("backbone") or {}
    prep = provenance.get("preprocessing") or {}
    weights = backbone.get("id") or cfg.get("weights", "")
    if backbone.get("tag"):
        weights += f" ({backbone['tag']})"
    return {
        "weights_from": weights,
        "source": provenance.get("source", ""),
        "licence": backbone.get("licence", ""),
        "preprocessing": (
            f"{prep['crop']} px (shorter side {prep['resize']}), mean "
            f"{_triple(prep['mean'])}, std {_triple(prep['std'])}: {prep['from']}"
            if prep
            else ""
        ),
    }


def _triple(values) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def collect_epochs(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """Every run's per-epoch log, with the run's cell as leading columns."""
    frames = []
    for path in metrics_files:
        summary = read_summary(path)
        log = pd.read_csv(Path(path).parent / "epochs.csv")
        for key in ("seed", "lr", "strategy", "model"):
            log.insert(0, key, summary["config"][key])
        log.insert(0, "dataset", summary["dataset"])
        frames.append(log)
    return pd.concat(frames, ignore_index=True)
