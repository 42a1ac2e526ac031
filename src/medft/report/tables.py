"""The paper's tables from runs (or from published means): lr selection, mean (SE) over seeds,
relative improvement over FT, Tables 3–10, Table 11 and Table 12.

A *summary* frame has one row per (dataset, model, strategy): lr, n_seeds, n_diverged,
main_metric, and ``<metric>_mean`` / ``<metric>_se`` in percent for every metric of
``medft.metrics.METRICS`` (NaN where unknown). Runs and published tables both become one, so
everything downstream serves both.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from medft.metrics import METRICS
from medft.strategies import REFERENCE

METRIC_LABELS = {
    "map": "mAP",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced acc.",
    "auroc": "AUROC",
    "kappa": "Kappa",
    "f1": "F1-Score",
}
# The paper's Tables 3–10 report two metrics per dataset: the main one, then this one.
SECOND_METRIC = {
    "map": "auroc",
    "auroc": "accuracy",
    "accuracy": "kappa",
    "balanced_accuracy": "kappa",
    "kappa": "accuracy",
    "f1": "accuracy",
}
EFFECTIVE_OVER_FT = 0.1  # percent: docs/protocol.md's "beats FT by more than 0.1 %"
KEYS = ["dataset", "model", "strategy"]
DIVERGED_MARK = " †"  # at least one seed of this cell diverged
NO_VALUE = "–"
log = logging.getLogger(__name__)


def select_lr(runs: pd.DataFrame, on: str | None = "val") -> pd.DataFrame:
    """Keep, per (dataset, model, strategy), the runs of the lr whose mean main metric on
    split ``on`` is best (``val`` by default; ``test`` replicates selecting on evaluation).
    ``on`` None: a results table without a selection split, each cell at one lr, kept whole."""
    if on is None:
        return runs
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
    """The summary frame of ``runs``: at the lr chosen on ``select_on``, mean and standard
    error over seeds of every test metric, in percent; the SE is NaN with one seed."""
    return summarise_chosen(select_lr(runs, select_on))


def summarise_chosen(chosen: pd.DataFrame) -> pd.DataFrame:
    groups = chosen.groupby([*KEYS, "lr", "main_metric"], sort=False)
    table = groups.size().rename("n_seeds").to_frame()
    table["n_diverged"] = groups["diverged_epoch"].count() if "diverged_epoch" in chosen else 0
    for metric in METRICS:
        column = f"test_{metric}"
        values = groups[column] if column in chosen else None
        table[f"{metric}_mean"] = values.mean() * 100 if values is not None else np.nan
        table[f"{metric}_se"] = values.sem(ddof=1) * 100 if values is not None else np.nan
    return table.reset_index()


def relative_improvement(
    summary: pd.DataFrame, chosen: pd.DataFrame | None = None, metric: str | None = None
) -> pd.DataFrame:
    """(metric / FT metric − 1) · 100 per dataset and model (``metric`` defaults to the main
    one). With the ``chosen`` runs, ``improvement_se`` is the standard error over seeds of the
    same ratio taken seed by seed (each seed paired with FT's)."""
    frame = summary.copy()
    frame["metric"] = metric or frame["main_metric"]
    frame["value"] = [row[f"{row['metric']}_mean"] for _, row in frame.iterrows()]
    ft = frame[frame["strategy"] == REFERENCE][["dataset", "model", "value"]]
    frame = frame.merge(
        ft.rename(columns={"value": "ft_value"}), on=["dataset", "model"], how="left"
    )
    frame["improvement"] = (frame["value"] / frame["ft_value"] - 1) * 100
    frame["improvement_se"] = np.nan
    if chosen is not None and metric is None:
        from medft.report.stats import seed_pairs

        pairs = seed_pairs(chosen)
        pairs["ratio"] = (pairs["value"] / pairs["ft_value"] - 1) * 100
        se = pairs.groupby(KEYS)["ratio"].sem(ddof=1).rename("se").reset_index()
        frame = frame.merge(se, on=KEYS, how="left")
        frame["improvement_se"] = frame["se"]
        frame.loc[frame["strategy"] == REFERENCE, "improvement_se"] = 0.0
    return frame[[*KEYS, "metric", "value", "ft_value", "improvement", "improvement_se"]]


def mean_se(mean: float, se: float) -> str:
    """ "71.98 (0.70)"; the SE is "–" where there is none (one seed), never "0.00"."""
    if np.isnan(mean):
        return NO_VALUE
    return f"{mean:.2f} ({NO_VALUE if np.isnan(se) else f'{se:.2f}'})"


def verdict_lookup(verdicts: pd.DataFrame | None) -> dict[tuple, str]:
    if verdicts is None or verdicts.empty:
        return {}
    return {(r["dataset"], r["model"], r["strategy"]): r["verdict"] for _, r in verdicts.iterrows()}


def dataset_table(
    summary: pd.DataFrame,
    verdicts: pd.DataFrame | None = None,
    metrics=METRICS,
) -> pd.DataFrame:
    """All metrics: model × strategy rows of "mean (SE)" strings; in each model, the best
    value of each metric is wrapped in ``**`` (Markdown bold); a strategy with diverged seeds
    is marked ``DIVERGED_MARK``; the verdict against FT ends each row."""
    rows = []
    metrics = list(metrics)
    verdict_of = verdict_lookup(verdicts)
    for model, block in summary.groupby("model", sort=False):
        best = {m: block[f"{m}_mean"].max() for m in metrics}
        for _, row in block.iterrows():
            mark = DIVERGED_MARK if row.get("n_diverged", 0) else ""
            cells = {"model": model, "strategy": row["strategy"] + mark, "lr": f"{row['lr']:g}"}
            for m in metrics:
                mean, se = row[f"{m}_mean"], row[f"{m}_se"]
                text = mean_se(mean, se)
                cells[METRIC_LABELS[m]] = f"**{text}**" if mean == best[m] else text
            if verdict_of:
                key = (row["dataset"], model, row["strategy"])
                reference = row["strategy"] == REFERENCE
                cells["vs FT"] = "reference" if reference else verdict_of.get(key, "")
            rows.append(cells)
    return pd.DataFrame(rows)


def report_metrics(summary: pd.DataFrame, metrics: list[str] | None = None) -> list[str]:
    """The dataset's two reported metrics: ``metrics`` if given, else its main metric and
    ``SECOND_METRIC`` of it; the main one always first."""
    main = summary["main_metric"].iloc[0]
    chosen = list(metrics or [main, SECOND_METRIC[main]])
    return [main, *(m for m in chosen if m != main)]


def paper_table(
    summary: pd.DataFrame, metrics: list[str], verdicts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Tables 3–10 of one dataset, long: strategy, model, metric, mean, se, best_in_model
    (the top score of this metric in this model: bold), best_overall (the top score of this
    metric across models: underlined), verdict (of the strategy against FT on the main
    metric; empty for FT)."""
    verdict_of = verdict_lookup(verdicts)
    rows = []
    for metric in metrics:
        values = summary[f"{metric}_mean"]
        overall = values.max()
        best_in_model = summary.groupby("model", sort=False)[f"{metric}_mean"].transform("max")
        for i, row in summary.iterrows():
            rows.append(
                {
                    "strategy": row["strategy"],
                    "model": row["model"],
                    "metric": metric,
                    "mean": row[f"{metric}_mean"],
                    "se": row[f"{metric}_se"],
                    "best_in_model": bool(values[i] == best_in_model[i]),
                    "best_overall": bool(values[i] == overall),
                    "verdict": verdict_of.get((row["dataset"], row["model"], row["strategy"]), ""),
                }
            )
    return pd.DataFrame(rows)


MARKUP = {
    "md": {
        "bold": "**{}**",
        "underline": "<u>{}</u>",
        "better": " ↑",
        "worse": " ↓",
        "equivalent": " ≈",
    },
    "html": {
        "bold": "<b>{}</b>",
        "underline": "<u>{}</u>",
        "better": " ↑",
        "worse": " ↓",
        "equivalent": " ≈",
    },
    "latex": {
        "bold": r"\textbf{{{}}}",
        "underline": r"\underline{{{}}}",
        "better": r"$^\uparrow$",
        "worse": r"$^\downarrow$",
        "equivalent": r"$^\approx$",
    },
}


def paper_table_wide(long: pd.DataFrame, style: str) -> pd.DataFrame:
    """Strategies as rows, (model, metric) as columns, cells "mean (SE)" with ``style``'s
    bold / underline and a verdict arrow on the main metric (the first)."""
    markup = MARKUP[style]
    main = long["metric"].iloc[0]

    def cell(row) -> str:
        text = mean_se(row["mean"], row["se"])
        if row["best_in_model"]:
            text = markup["bold"].format(text)
        if row["best_overall"]:
            text = markup["underline"].format(text)
        if row["metric"] == main:
            text += markup.get(row["verdict"], "")
        return text

    frame = long.assign(cell=long.apply(cell, axis=1), metric=long["metric"].map(METRIC_LABELS))
    wide = frame.pivot(index="strategy", columns=["model", "metric"], values="cell")
    strategies = list(dict.fromkeys(long["strategy"]))
    models = list(dict.fromkeys(long["model"]))
    metric_labels = list(dict.fromkeys(frame["metric"]))
    columns = pd.MultiIndex.from_product([models, metric_labels], names=["model", "metric"])
    return wide.reindex(index=strategies, columns=columns).fillna(NO_VALUE)


def best_combination(summary: pd.DataFrame, verdicts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 11. Per dataset: the (model, strategy) with the best mean main metric and its
    relative improvement over FT on the same model, in percent (two decimals)."""
    improvement = relative_improvement(summary)
    best = improvement.loc[improvement.groupby("dataset", sort=False)["value"].idxmax()]
    verdict_of = verdict_lookup(verdicts)
    table = pd.DataFrame(
        {
            "dataset": best["dataset"],
            "model": best["model"],
            "strategy": best["strategy"],
            "improvement": best["improvement"].round(2),
            "main_metric": best["metric"],
            "value": best["value"].round(2),
            "verdict": [
                "reference" if s == REFERENCE else verdict_of.get((d, m, s), "")
                for d, m, s in zip(best["dataset"], best["model"], best["strategy"], strict=True)
            ],
        }
    ).reset_index(drop=True)
    return table if verdict_of else table.drop(columns="verdict")


def effectiveness(summary: pd.DataFrame, verdicts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 12. Strategy × model counts of (dataset, model) cells whose main metric beats
    FT's by more than ``EFFECTIVE_OVER_FT`` % (relative), a total and the share of all
    comparisons (one decimal); with ``verdicts``, the counts of *better* and of *equivalent*
    verdicts beside it, apart. The last row totals each column."""
    from medft.report.verdicts import BETTER, EQUIVALENT

    improvement = relative_improvement(summary)
    others = improvement[improvement["strategy"] != REFERENCE].dropna(subset=["improvement"])
    others = others.assign(effective=others["improvement"] > EFFECTIVE_OVER_FT)
    # A (strategy, model) without a comparison (no FT or no run) counts 0, not NaN.
    counts = (
        others.pivot_table(
            index="strategy", columns="model", values="effective", aggfunc="sum", sort=False
        )
        .fillna(0)
        .astype(int)
    )
    counts.columns = list(counts.columns)
    comparisons = others.groupby("strategy", sort=False).size()
    counts["Total"] = counts.sum(axis=1)
    counts["Effectiveness (%)"] = (counts["Total"] / comparisons * 100).round(1)
    verdict_columns = []
    if verdicts is not None and not verdicts.empty:
        for label, kind in (("Better", BETTER), ("Equivalent", EQUIVALENT)):
            found = verdicts[verdicts["verdict"] == kind].groupby("strategy").size()
            counts[f"{label} (verdict)"] = found.reindex(counts.index).fillna(0).astype(int)
            counts[f"{label} (%)"] = (counts[f"{label} (verdict)"] / comparisons * 100).round(1)
            verdict_columns.append(label)
    total = counts.sum(numeric_only=True)
    total["Effectiveness (%)"] = round(total["Total"] / comparisons.sum() * 100, 1)
    for label in verdict_columns:
        total[f"{label} (%)"] = round(total[f"{label} (verdict)"] / comparisons.sum() * 100, 1)
    counts.loc["Total"] = total
    counts = counts.reset_index().rename(columns={"index": "strategy"})
    integer = [c for c in counts.columns if c not in ("strategy",) and "%" not in c]
    counts[integer] = counts[integer].astype(int)
    return counts
