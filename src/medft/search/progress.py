"""One arm's step of the search: train seed 0 on to a rung's epoch budget from its own
checkpoint (no epoch is trained twice), then record how far it got and its score."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from medft.engine import Cell, TrainConfig
from medft.runtime import atomic_write_text
from medft.workflow import lr_tag


def credited_rows(log: pd.DataFrame, budget: int, settle: bool) -> pd.DataFrame:
    """The epochs of a finished run that count at ``budget``: the first ``budget`` — and,
    with ``settle``, on until the strategy may stop, as a paused run would have trained."""
    n = min(budget, len(log))
    if settle and "may_stop" in log:
        ready = log["may_stop"].astype(bool).to_numpy()
        while n < len(log) and not ready[n - 1]:
            n += 1
    return log.iloc[:n]


def rung_result(
    run_dir: str | Path, budget: int, settle: bool, progress: dict | None = None
) -> dict:
    """The arm's standing at this rung, from its epoch log. ``progress`` is ``paused_at``'s;
    without it the run was already finished (an arm another strategy starts from trains to
    the end first), and only the epochs up to ``budget`` count, so it is judged at the same
    budget as the others."""
    run_dir = Path(run_dir)
    log = pd.read_csv(run_dir / "epochs.csv")
    if progress is None:
        summary = json.loads((run_dir / "metrics.json").read_text())
        split, metric = summary["config"]["early_stop_on"], summary["main_metric"]
        rows = credited_rows(log, budget, settle)
        over = len(rows) == len(log)
        may_stop = bool(rows["may_stop"].iloc[-1]) if "may_stop" in rows else True
    else:
        split, metric = progress["early_stop_on"], progress["main_metric"]
        rows, over, may_stop = log, progress["over"], progress["may_stop"]
    column = f"{split}_{metric}"
    if progress is not None:
        score = progress["best_score"]
    else:
        score = rows[column].max(skipna=True) if column in rows else None
    finished = run_dir / "metrics.json"
    diverged = bool(
        over and finished.is_file() and json.loads(finished.read_text()).get("diverged")
    )
    return {
        "epochs": len(rows),
        "diverged": diverged,
        "score": None if score is None or not math.isfinite(score) else float(score),
        "main_metric": metric,
        "split": split,
        "over": bool(over),
        "may_stop": bool(may_stop),
        "seconds": float(rows["seconds"].sum()) if "seconds" in rows else 0.0,
    }


def paused_at(cell: Cell, budget: int, settle: bool) -> dict:
    """Train ``cell`` on until ``budget`` epochs are trained (``settle``: further while its
    strategy may not stop yet); where it stands then: whether training is over, whether its
    strategy may stop yet, and the score its model selection goes by."""

    def pause(state) -> bool:
        return state.epoch + 1 >= budget and (not settle or cell.may_stop(state.epoch))

    state = cell.train_until(pause)
    return {
        "over": state.over,
        "may_stop": state.epoch >= 0 and cell.may_stop(state.epoch),
        # LP-FT in one run: its second stage's best only.
        "best_score": state.stopping.best_score if state.stopping.best_epoch >= 0 else None,
        "main_metric": cell.main_metric,
        "early_stop_on": cell.config.early_stop_on,
    }


def advance(run: TrainConfig, rung: int, budget: int, settle: bool, out: str | Path) -> dict:
    """Train ``run`` on to ``budget`` epochs (``settle``: further while its strategy may not
    stop yet), then write the rung's result to ``out`` (JSON) and return it."""
    cell = Cell(run)
    progress = None if cell.files.finished() else paused_at(cell, budget, settle)
    result = {
        "strategy": run.strategy,
        "lr": lr_tag(run.lr),
        "rung": rung,
        "budget": budget,
        **rung_result(run.out, budget, settle, progress),
    }
    atomic_write_text(json.dumps(result, indent=2), Path(out))
    return result


def read_results(paths: list[str | Path]) -> pd.DataFrame:
    """Rung results (JSON files) as one frame, in the given order."""
    return pd.DataFrame([json.loads(Path(p).read_text()) for p in paths])
