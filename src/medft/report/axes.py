"""The label-fraction axis (config's ``train_fractions``): each strategy's main metric against
the fraction of the training split, and where another strategy overtakes FT."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from medft.strategies import REFERENCE
from medft.workflow import on_axis

LEVEL = 0.95


def fraction_curves(summary: pd.DataFrame, verdicts: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (dataset, model, strategy, fraction) of the datasets on the axis: the main
    metric's mean over seeds at the chosen lr (percent), its 95 % t-interval over seeds, and
    the verdict against FT at that fraction."""
    rows = []
    for _, row in summary.iterrows():
        axis = on_axis(row["dataset"])
        if axis is None:
            continue
        main, n = row["main_metric"], int(row["n_seeds"])
        mean, se = row[f"{main}_mean"], row[f"{main}_se"]
        half = stats.t.ppf(0.5 + LEVEL / 2, n - 1) * se if n > 1 else np.nan
        rows.append(
            {
                "dataset": axis[0],
                "fraction": axis[1],
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
    curves = pd.DataFrame(rows)
    if curves.empty:
        return curves
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
    curves["verdict vs FT"] = [
        "reference" if s == REFERENCE else verdict.get((p, m, s), "not tested")
        for p, m, s in zip(curves["point"], curves["model"], curves["strategy"], strict=True)
    ]
    return curves.sort_values(["dataset", "model", "fraction"], kind="stable").reset_index(
        drop=True
    )


def crossovers(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, fraction): the leading strategy, the strategies above FT with their
    difference and verdict, and whether the lead changed since the previous fraction."""
    rows = []
    for (dataset, model), part in curves.groupby(["dataset", "model"], sort=False):
        previous = None
        for fraction, point in part.groupby("fraction", sort=True):
            ft = point.loc[point["strategy"] == REFERENCE, "mean"]
            reference = ft.iloc[0] if len(ft) else np.nan
            leader = point.loc[point["mean"].idxmax(), "strategy"]
            above = point[(point["strategy"] != REFERENCE) & (point["mean"] > reference)]
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "fraction": fraction,
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
