"""From run outputs to the paper's tables and figures, with pandas and seaborn.

One row per run (``collect_runs``) → the lr chosen per (dataset, model, strategy) on the
validation main metric → mean ± standard error over seeds on the evaluation split, in percent
(``summarise``) → per-dataset Markdown/CSV tables with the best strategy per model in bold,
relative improvement over FT, the best combination per dataset, and effectiveness counts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from medft.metrics import METRICS  # noqa: E402

METRIC_LABELS = {
    "map": "mAP",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced acc.",
    "auroc": "AUROC",
    "kappa": "Kappa",
    "f1": "F1-Score",
}
EFFECTIVE_OVER_FT = 0.1  # percent: PROTOCOL.md's "beats FT by more than 0.1 %"
KEYS = ["dataset", "model", "strategy"]
DIVERGED_MARK = " †"  # tables: at least one seed of this cell diverged
log = logging.getLogger(__name__)


def collect_runs(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """One row per finished run: its cell, main metric, and every val_/test_ metric."""
    rows = []
    for path in metrics_files:
        summary = json.loads(Path(path).read_text())
        cfg = summary["config"]
        row = {
            "dataset": summary["dataset"],
            "model": cfg["model"],
            "strategy": cfg["strategy"],
            "lr": cfg["lr"],
            "seed": cfg["seed"],
            "main_metric": summary["main_metric"],
            "best_epoch": summary["best_epoch"],
            "epochs_trained": summary["epochs_trained"],
            "diverged_epoch": (summary.get("diverged") or {}).get("epoch"),
            "run_dir": str(Path(path).parent),
        }
        for split, values in summary["metrics"].items():
            row.update({f"{split}_{k}": v for k, v in values.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def collect_epochs(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """Every run's per-epoch log, with the run's cell as leading columns."""
    frames = []
    for path in metrics_files:
        summary = json.loads(Path(path).read_text())
        log = pd.read_csv(Path(path).parent / "epochs.csv")
        for key in ("seed", "lr", "strategy", "model"):
            log.insert(0, key, summary["config"][key])
        log.insert(0, "dataset", summary["dataset"])
        frames.append(log)
    return pd.concat(frames, ignore_index=True)


def select_lr(runs: pd.DataFrame, on: str = "val") -> pd.DataFrame:
    """Keep, per (dataset, model, strategy), the runs of the lr whose mean main metric on
    split ``on`` is best (``val`` by default; ``test`` replicates selecting on evaluation)."""
    runs = runs.copy()
    runs["_select"] = [row[f"{on}_{row['main_metric']}"] for _, row in runs.iterrows()]
    undefined = runs[runs["_select"].isna()]
    for _, row in undefined.iterrows():
        log.warning(
            "dropped %s %s %s lr=%g seed=%s: its %s %s is undefined (see its run's log)",
            row["dataset"],
            row["model"],
            row["strategy"],
            row["lr"],
            row["seed"],
            on,
            row["main_metric"],
        )
    runs = runs.drop(undefined.index)
    means = runs.groupby([*KEYS, "lr"], as_index=False)["_select"].mean()
    best = means.loc[means.groupby(KEYS)["_select"].idxmax().dropna(), [*KEYS, "lr"]]
    return runs.merge(best, on=[*KEYS, "lr"]).drop(columns="_select")


def summarise(runs: pd.DataFrame, select_on: str = "val") -> pd.DataFrame:
    """Mean and standard error over seeds of every test metric, in percent, at the chosen lr.

    Columns: dataset, model, strategy, lr, n_seeds, main_metric, then ``<metric>_mean`` and
    ``<metric>_se`` for each metric.
    """
    chosen = select_lr(runs, select_on)
    groups = chosen.groupby([*KEYS, "lr", "main_metric"], sort=False)
    table = groups.size().rename("n_seeds").to_frame()
    table["n_diverged"] = groups["diverged_epoch"].count() if "diverged_epoch" in chosen else 0
    for metric in METRICS:
        values = groups[f"test_{metric}"]
        table[f"{metric}_mean"] = values.mean() * 100
        table[f"{metric}_se"] = values.sem(ddof=1) * 100 if groups.size().max() > 1 else 0.0
    return table.reset_index()


def relative_improvement(summary: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """(metric / FT metric − 1) · 100 per dataset and model; ``metric`` defaults to the main."""
    frame = summary.copy()
    frame["metric"] = metric or frame["main_metric"]
    frame["value"] = [row[f"{row['metric']}_mean"] for _, row in frame.iterrows()]
    ft = frame[frame["strategy"] == "FT"][["dataset", "model", "value"]]
    frame = frame.merge(
        ft.rename(columns={"value": "ft_value"}), on=["dataset", "model"], how="left"
    )
    frame["improvement"] = (frame["value"] / frame["ft_value"] - 1) * 100
    return frame[[*KEYS, "metric", "value", "ft_value", "improvement"]]


def dataset_table(summary: pd.DataFrame, metrics: Iterable[str] = METRICS) -> pd.DataFrame:
    """model × strategy rows of "mean ± SE" strings; the best strategy per model and metric
    is wrapped in ``**`` (Markdown bold); a strategy with diverged seeds is marked
    ``DIVERGED_MARK`` (its metrics are the best epochs before divergence)."""
    rows = []
    metrics = list(metrics)
    for model, block in summary.groupby("model", sort=False):
        best = {m: block[f"{m}_mean"].max() for m in metrics}
        for _, row in block.iterrows():
            mark = DIVERGED_MARK if row.get("n_diverged", 0) else ""
            cells = {"model": model, "strategy": row["strategy"] + mark, "lr": f"{row['lr']:g}"}
            for m in metrics:
                mean, se = row[f"{m}_mean"], row[f"{m}_se"]
                text = "–" if np.isnan(mean) else f"{mean:.2f} ± {0 if np.isnan(se) else se:.2f}"
                cells[METRIC_LABELS[m]] = f"**{text}**" if mean == best[m] else text
            rows.append(cells)
    return pd.DataFrame(rows)


def best_combination(summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the (model, strategy) with the best mean main metric, and its relative
    improvement over FT on the same model."""
    improvement = relative_improvement(summary)
    best = improvement.loc[improvement.groupby("dataset")["value"].idxmax()]
    return best.rename(columns={"value": "main_metric_mean"}).reset_index(drop=True)


def effectiveness(summary: pd.DataFrame) -> pd.DataFrame:
    """Strategy × model counts of (dataset, model) cells where the main metric beats FT's by
    more than 0.1 % (relative), with a total and the share of all comparisons."""
    improvement = relative_improvement(summary)
    others = improvement[improvement["strategy"] != "FT"]
    others = others.assign(effective=others["improvement"] > EFFECTIVE_OVER_FT)
    counts = others.pivot_table(
        index="strategy", columns="model", values="effective", aggfunc="sum", sort=False
    ).astype(int)
    counts["Total"] = counts.sum(axis=1)
    comparisons = others.groupby("strategy", sort=False).size()
    counts["Effectiveness (%)"] = (counts["Total"] / comparisons * 100).round(1)
    return counts.reset_index()


def plot_relative_improvement(improvement: pd.DataFrame, title: str) -> plt.Figure:
    """Bars of relative improvement over FT (percent), one group per strategy, hue = model."""
    data = improvement[improvement["strategy"] != "FT"]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    sns.barplot(data=data, x="strategy", y="improvement", hue="model", ax=ax)
    ax.axhline(0, color="black", linewidth=0.8)
    metric = METRIC_LABELS.get(data["metric"].iloc[0], data["metric"].iloc[0]) if len(data) else ""
    ax.set_xlabel("Fine-tuning strategy")
    ax.set_ylabel(f"{metric}: improvement over FT (%)")
    ax.set_title(title)
    ax.legend(title="Model", loc="best")
    ax.grid(axis="y", alpha=0.3)
    return fig
