"""``medft status``: how far a grid is, from its files alone — safe beside a running Snakemake
(it takes no lock and writes nothing), after a logout, on any login node.

A cell (dataset, model, strategy, lr, seed) is

* *done*: its ``metrics.json`` exists and reads;
* *failed*: its log's last lines hold an error (the line is shown), or its ``metrics.json``
  does not read (a copy cut short: the training job writes it whole, so only a transfer or a
  hand leaves it so);
* *running*: it has a checkpoint or epoch log written within ``stale_minutes``, its epoch
  from ``epochs.csv``;
* *stalled*: it started, but nothing was written for longer (a job killed without a word: a
  node lost, a time limit; rerunning the workflow resumes it);
* *not started*.

Hours spent are the epochs' own seconds (``epochs.csv``); hours left are the cost model's
typical estimate (``medft plan``) for the cells not done, scaled by how the finished cells'
measured time compared with their estimate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

STATES = ("done", "running", "stalled", "failed", "not started")
ERROR_WORDS = ("Error", "Traceback", "Killed", "CANCELLED", "error:")
TAIL_BYTES = 4096


def _tail(path: Path) -> list[str]:
    """The last lines of a log, read from its end (logs of 50 epochs can be long)."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - TAIL_BYTES))
        return handle.read().decode(errors="replace").strip().splitlines()[-5:]


def _epochs(path: Path) -> tuple[int, float]:
    """(epochs logged, their seconds) of an ``epochs.csv``; read as plain text, since a grid
    has thousands of them and pandas' reader costs ~20 ms each."""
    try:
        header, *rows = path.read_text().strip().splitlines()
        column = header.split(",").index("seconds")
        return len(rows), sum(float(row.split(",")[column]) for row in rows)
    except (OSError, ValueError, IndexError):
        return 0, 0.0


def read_metrics(metrics: Path) -> tuple[dict | None, str]:
    """A run's ``metrics.json`` and "", or None and why it cannot be reported."""
    try:
        summary = json.loads(metrics.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = str(error)
    else:
        if isinstance(summary, dict):
            return summary, ""
        reason = "not a JSON object"
    return None, (
        f"{metrics} does not read ({reason}); copy it again, or delete it and rerun the "
        "workflow to train the cell again"
    )


def cell_states(grid, stale_minutes: float = 30.0, now: float | None = None) -> pd.DataFrame:
    """One row per cell: dataset, model, strategy, lr, seed, state, epoch, seconds, message."""
    now = time.time() if now is None else now
    logs = Path(grid.results) / "logs" / "train"
    rows = []
    for dataset, model, strategy, lr, seed in grid.cells():
        run = Path(grid.run_dir(dataset, model, strategy, lr, seed))
        log = logs / dataset / model / f"{strategy}_lr{lr}_seed{seed}.log"
        epochs, seconds = _epochs(run / "epochs.csv")
        state, message = "not started", ""
        if (run / "metrics.json").exists():
            _, message = read_metrics(run / "metrics.json")
            state = "failed" if message else "done"
        else:
            lines = _tail(log) if log.exists() else []
            errors = [line for line in lines if any(w in line for w in ERROR_WORDS)]
            written = [
                p.stat().st_mtime for p in (run / "last.pt", run / "epochs.csv", log) if p.exists()
            ]
            if errors:
                state, message = "failed", errors[-1].strip()
            elif written:
                fresh = now - max(written) <= stale_minutes * 60
                state = "running" if fresh else "stalled"
                message = lines[-1].strip() if lines else ""
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "strategy": strategy,
                "lr": lr,
                "seed": seed,
                "state": state,
                "epoch": epochs,
                "seconds": seconds,
                "message": message,
            }
        )
    return pd.DataFrame(rows)


def summary(grid, cells: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): cells in each state, hours spent and hours left."""
    estimate = cells.apply(
        lambda c: grid.cost.train(c["dataset"], c["model"], c["strategy"]).typical_s, axis=1
    )
    done = cells["state"] == "done"
    measured, expected = cells.loc[done, "seconds"].sum(), estimate[done].sum()
    speed = measured / expected if measured > 0 and expected > 0 else 1.0
    left = (estimate * speed - cells["seconds"]).clip(lower=0).where(~done, 0.0)
    frame = cells.assign(left=left)
    table = frame.pivot_table(
        index=["dataset", "model"], columns="state", values="seed", aggfunc="count", fill_value=0
    ).reindex(columns=list(STATES), fill_value=0)
    hours = frame.groupby(["dataset", "model"])[["seconds", "left"]].sum() / 3600
    table["hours spent"], table["hours left"] = hours["seconds"], hours["left"]
    table.columns.name = None
    return table.reset_index()


def readable_duration(seconds: float) -> str:
    """Hours for a grid's days, minutes where hours would read 0.0 (the demo, a small grid)."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else "under a minute"


def render(grid, stale_minutes: float = 30.0) -> str:
    cells = cell_states(grid, stale_minutes)
    table = summary(grid, cells)
    total = len(cells)
    done = int((cells["state"] == "done").sum())
    left = (
        "nothing left"
        if done == total
        else f"{readable_duration(table['hours left'].sum() * 3600)} left by estimate (the cost "
        "model's typical runs, scaled by the finished cells' measured speed)"
    )
    lines = [
        f"{done} of {total} cells done ({done / total:.0%}); "
        f"{readable_duration(table['hours spent'].sum() * 3600)} spent, {left}",
        "",
        table.to_markdown(index=False, floatfmt=".1f"),
    ]
    for state in ("failed", "stalled", "running"):
        some = cells[cells["state"] == state]
        if some.empty:
            continue
        lines += ["", f"{state}:"]
        for c in some.head(20).itertuples():
            detail = f"epoch {c.epoch}" + (f": {c.message}" if c.message else "")
            lines.append(f"  {c.dataset} {c.model} {c.strategy} lr{c.lr} seed{c.seed} — {detail}")
        if len(some) > 20:
            lines.append(f"  … and {len(some) - 20} more")
    return "\n".join(lines)
