"""The grid's axes — label fraction (config's ``train_fractions``) and resolution
(``image_sizes``): each strategy's main metric against the axis, and where another strategy
overtakes FT."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from medft.grid_axes import axis_point
from medft.strategies import REFERENCE

# Each axis: the AxisPoint field it reads, and how its values read.
AXES = {"fraction": "fraction of the training split", "size": "input size (px)"}

LEVEL = 0.95


def curves(summary: pd.DataFrame, verdicts: pd.DataFrame | None, axis: str) -> pd.DataFrame:
    """One row per (dataset, model, strategy, point) of the datasets on ``axis`` ("fraction"
    or "size"): the main metric's mean over seeds at the chosen lr (percent), its 95 %
    t-interval over seeds, and the verdict against FT at that point. ``dataset`` is the
    dataset without this axis's mark (other axes' marks stay: each is its own curve)."""
    rows = []
    for _, row in summary.iterrows():
        point = axis_point(row["dataset"])
        if point is None or getattr(point, axis) is None:
            continue
        value = getattr(point, axis)
        mark = f"@{value:g}" if axis == "fraction" else f"@{value}px"
        main, n = row["main_metric"], int(row["n_seeds"])
        mean, se = row[f"{main}_mean"], row[f"{main}_se"]
        half = stats.t.ppf(0.5 + LEVEL / 2, n - 1) * se if n > 1 else np.nan
        rows.append(
            {
                "dataset": row["dataset"].replace(mark, ""),
                axis: value,
                "point": row["dataset"],
                "model": row["model"],
                "strategy": row["strategy"],
                "main_metric": main,
                "n_seeds": n,
                "mean": mean,
                "low": mean - half,
                "high": mean + half,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    verdict = {}
    if verdicts is not None and len(verdicts):
        verdict = {
            (d, m, s): v
            for d, m, s, v in zip(
                verdicts["dataset"],
                verdicts["model"],
                verdicts["strategy"],
                verdicts["verdict"],
                strict=True,
            )
        }
    frame["verdict vs FT"] = [
        "reference" if s == REFERENCE else verdict.get((p, m, s), "not tested")
        for p, m, s in zip(frame["point"], frame["model"], frame["strategy"], strict=True)
    ]
    return frame.sort_values(["dataset", "model", axis], kind="stable").reset_index(drop=True)


def crossovers(frame: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Per (dataset, model, point of ``axis``): the leading strategy, the strategies above FT
    with their difference and verdict, and whether the lead changed since the previous point."""
    rows = []
    for (dataset, model), part in frame.groupby(["dataset", "model"], sort=False):
        previous = None
        for value, point in part.groupby(axis, sort=True):
            ft = point.loc[point["strategy"] == REFERENCE, "mean"]
            reference = ft.iloc[0] if len(ft) else np.nan
            leader = point.loc[point["mean"].idxmax(), "strategy"]
            above = point[(point["strategy"] != REFERENCE) & (point["mean"] > reference)]
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    axis: value,
                    "leader": leader,
                    "above FT": "; ".join(
                        f"{s} {m - reference:+.2f} ({v})"
                        for s, m, v in above.sort_values("mean", ascending=False)[
                            ["strategy", "mean", "verdict vs FT"]
                        ].itertuples(index=False)
                    )
                    or "none",
                    "crossover": f"{leader} overtakes {previous}"
                    if previous is not None and leader != previous
                    else "",
                }
            )
            previous = leader
    return pd.DataFrame(rows)
