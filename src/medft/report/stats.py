"""The statistics the paper lacked (docs/protocol.md, "Statistics"): which differences from FT are
real.

* ``paired_tests``: per (dataset, model, strategy ≠ FT), the seed-paired differences of the
  main metric from FT (each side at its chosen lr), their mean, 95 % t-interval and paired
  t-test p-value.
* ``bootstrap_intervals``: the 95 % percentile interval of (strategy − FT) on the evaluation
  split, resampling patients (groups) with replacement from the saved predictions, the metric
  averaged over seeds on each resample.
* ``verdicts``: Holm-corrected p-values within each (dataset, model) and a verdict per cell.
* ``across_datasets``: per model and strategy, a Wilcoxon signed-rank test of the relative
  improvement over FT across datasets, Holm-corrected over strategies.

Differences are in percentage points of the main metric.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from medft.report.resample import resampled_metric
from medft.strategies import REFERENCE

CELL = ["dataset", "model"]
ALPHA = 0.05
LEVEL = 0.95
N_BOOT = 2000
BETTER, WORSE, SAME, UNTESTED = "better", "worse", "no significant difference", "not tested"
MIN_DATASETS_WILCOXON = 5
log = logging.getLogger(__name__)


def main_values(runs: pd.DataFrame, split: str = "test") -> pd.Series:
    return pd.Series(
        [row[f"{split}_{row['main_metric']}"] for _, row in runs.iterrows()],
        index=runs.index,
        dtype=float,
    )


def seed_pairs(chosen: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Each strategy's runs beside the ``reference`` strategy's run of the same (dataset,
    model, seed), at the lrs chosen for each: columns dataset, model, strategy, seed, value,
    ft_value (percent; the reference's)."""
    frame = chosen.assign(value=main_values(chosen) * 100)[[*CELL, "strategy", "seed", "value"]]
    ft = frame[frame["strategy"] == reference].drop(columns="strategy")
    others = frame[frame["strategy"] != reference]
    return others.merge(ft.rename(columns={"value": "ft_value"}), on=[*CELL, "seed"])


def t_interval(differences: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """(low, high, p) of the mean of paired differences: the t-interval and the two-sided
    one-sample t-test against 0. NaN with fewer than two pairs."""
    differences = np.asarray(differences, dtype=float)
    n = len(differences)
    if n < 2:
        return np.nan, np.nan, np.nan
    mean, se = differences.mean(), stats.sem(differences)
    if se == 0:
        # Every seed moved by exactly the same amount: no spread to test against.
        return mean, mean, (1.0 if mean == 0 else 0.0)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se
    return mean - half, mean + half, float(stats.ttest_1samp(differences, 0.0).pvalue)


def paired_tests(chosen: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per (dataset, model, strategy ≠ ``reference``): n_pairs, diff_mean, diff_low,
    diff_high, p_value."""
    rows = []
    for (dataset, model, strategy), pairs in seed_pairs(chosen, reference).groupby(
        [*CELL, "strategy"], sort=False
    ):
        differences = (pairs["value"] - pairs["ft_value"]).to_numpy()
        low, high, p = t_interval(differences)
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "strategy": strategy,
                "n_pairs": len(differences),
                "diff_mean": differences.mean(),
                "diff_low": low,
                "diff_high": high,
                "p_value": p,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[*CELL, "strategy", "n_pairs", "diff_mean", "diff_low", "diff_high", "p_value"],
    )


def group_weights(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) image weights: how often each image's group is drawn when the groups are
    resampled with replacement."""
    names, index = np.unique(groups, return_inverse=True)
    counts = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=n_boot)
    return counts[:, index].astype(np.float64)


def resampling_groups(predictions: pd.DataFrame, dataset: str = "") -> np.ndarray:
    """The unit each image is resampled with: its patient (group) id; an image without one
    is a group of its own, so a few missing ids never turn the whole set image-level."""
    if "group" in predictions:
        ids = predictions["group"].fillna("").astype(str).str.strip()
    else:
        ids = pd.Series("", index=predictions.index)
    blank = ids.eq("")
    if blank.all():
        log.warning("%s: no patient groups in the predictions; resampling images", dataset)
    elif blank.any():
        log.warning(
            "%s: %d of %d evaluation images have no patient id; each is resampled as a patient "
            "of its own",
            dataset,
            blank.sum(),
            len(ids),
        )
    own = "image:" + predictions["id"].astype(str)
    return ids.where(~blank, own).to_numpy()


def test_predictions(run_dir: str) -> pd.DataFrame:
    """A run's evaluation-split predictions, sorted by image id."""
    frame = pd.read_parquet(Path(run_dir) / "predictions.parquet")
    return frame[frame["split"] == "test"].sort_values("id").reset_index(drop=True)


def _targets_scores(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    scores = frame.filter(like="prob_").to_numpy()
    if "target" in frame:
        return frame["target"].to_numpy(), scores
    return frame.filter(like="target_").to_numpy(), scores


def _seed_mean(metric: str, task: str, predictions: list[pd.DataFrame], weights) -> np.ndarray:
    """The metric on every resample, averaged over the seeds' predictions, in percent."""
    per_seed = [
        resampled_metric(metric, task, *_targets_scores(frame), weights) for frame in predictions
    ]
    return np.mean(per_seed, axis=0) * 100


def bootstrap_intervals(
    chosen: pd.DataFrame,
    tasks: dict[str, str],
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
    predictions: dict[str, pd.DataFrame] | None = None,
    reference: str = REFERENCE,
) -> pd.DataFrame:
    """Per (dataset, model, strategy ≠ ``reference``, by default FT): boot_low, boot_high of
    (strategy − reference) in
    percentage points, from each run's evaluation predictions (``predictions`` by
    ``run_dir``, else read with ``test_predictions``); ``tasks`` maps dataset → task type.
    The same resamples serve every strategy of a (dataset, model), so the comparison with FT
    is paired by patient."""
    rows = []
    for (dataset, model), cell in chosen.groupby(CELL, sort=False):
        if reference not in set(cell["strategy"]):
            continue
        metric, task = cell["main_metric"].iloc[0], tasks[dataset]
        frames = {
            run_dir: predictions[run_dir] if predictions else test_predictions(run_dir)
            for run_dir in cell["run_dir"]
        }
        first = next(iter(frames.values()))
        for run_dir, frame in frames.items():
            if not frame["id"].equals(first["id"]):
                raise ValueError(
                    f"{run_dir}: its test predictions are not of the same images as "
                    f"{cell['run_dir'].iloc[0]}'s; runs of one dataset must share its test split"
                )
        groups = resampling_groups(first, dataset)
        weights = group_weights(groups, n_boot, np.random.default_rng(seed))
        runs_of = cell.groupby("strategy", sort=False)["run_dir"].agg(list).to_dict()
        ft = _seed_mean(metric, task, [frames[r] for r in runs_of[reference]], weights)
        for strategy in (s for s in runs_of if s != reference):
            scores = _seed_mean(metric, task, [frames[r] for r in runs_of[strategy]], weights)
            difference = scores - ft
            defined = difference[~np.isnan(difference)]
            tail = (1 - level) / 2 * 100
            low, high = (
                np.percentile(defined, [tail, 100 - tail]) if len(defined) else (np.nan, np.nan)
            )
            if len(defined) < n_boot:
                log.warning(
                    "%s %s %s: the %s was undefined on %d of %d resamples (a class missing); "
                    "the interval uses the rest",
                    dataset,
                    model,
                    strategy,
                    metric,
                    n_boot - len(defined),
                    n_boot,
                )
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "strategy": strategy,
                    "boot_low": low,
                    "boot_high": high,
                }
            )
    return pd.DataFrame(rows, columns=[*CELL, "strategy", "boot_low", "boot_high"])


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values; NaN (untested) entries stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    return adjusted


def verdict(p_holm: float, low: float, high: float) -> str:
    """*better* / *worse* when the corrected p-value is below ALPHA and the interval
    (bootstrap, or the t-interval where there are no predictions) lies on that side of 0."""
    if np.isnan(p_holm):
        return UNTESTED
    if p_holm < ALPHA and low > 0:
        return BETTER
    if p_holm < ALPHA and high < 0:
        return WORSE
    return SAME


def verdicts(paired: pd.DataFrame, boot: pd.DataFrame | None = None) -> pd.DataFrame:
    """``paired`` with ``p_holm`` (within each (dataset, model)), the bootstrap interval where
    ``boot`` has one, and ``verdict``."""
    frame = paired.copy()
    frame["p_holm"] = np.nan
    for _, index in frame.groupby(CELL, sort=False).groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p_value"])
    if boot is not None and len(boot):
        frame = frame.merge(boot, on=[*CELL, "strategy"], how="left")
    else:
        frame["boot_low"] = frame["boot_high"] = np.nan
    interval_low = frame["boot_low"].fillna(frame["diff_low"])
    interval_high = frame["boot_high"].fillna(frame["diff_high"])
    frame["verdict"] = [
        verdict(p, lo, hi)
        for p, lo, hi in zip(frame["p_holm"], interval_low, interval_high, strict=True)
    ]
    return frame


def across_datasets(improvement: pd.DataFrame) -> pd.DataFrame:
    """Per model and strategy ≠ FT: the Wilcoxon signed-rank test of the relative improvement
    over FT across datasets (only with ``MIN_DATASETS_WILCOXON`` or more), Holm-corrected over
    the strategies of a model. Columns: model, strategy, n_datasets, median_improvement,
    p_value, p_holm, verdict."""
    rows = []
    others = improvement[improvement["strategy"] != REFERENCE].dropna(subset=["improvement"])
    for (model, strategy), block in others.groupby(["model", "strategy"], sort=False):
        values = block["improvement"].to_numpy()
        p = (
            float(stats.wilcoxon(values).pvalue)
            if len(values) >= MIN_DATASETS_WILCOXON and np.any(values != 0)
            else np.nan
        )
        rows.append(
            {
                "model": model,
                "strategy": strategy,
                "n_datasets": len(values),
                "median_improvement": float(np.median(values)),
                "p_value": p,
            }
        )
    frame = pd.DataFrame(
        rows, columns=["model", "strategy", "n_datasets", "median_improvement", "p_value"]
    )
    frame["p_holm"] = frame["min_p_holm"] = np.nan
    for _, index in frame.groupby("model", sort=False).groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p_value"])
        # The exact two-sided test's smallest p is 2 / 2^n; Holm's first step multiplies it
        # by the number of strategies tested.
        tested = frame.loc[index, "p_value"].notna().sum()
        frame.loc[index, "min_p_holm"] = np.minimum(
            1.0, tested * 2.0 / 2.0 ** frame.loc[index, "n_datasets"]
        )
    frame["verdict"] = [
        unreachable(n, floor) if not np.isnan(p) and floor >= ALPHA else verdict(p, m, m)
        for p, m, n, floor in zip(
            frame["p_holm"],
            frame["median_improvement"],
            frame["n_datasets"],
            frame["min_p_holm"],
            strict=True,
        )
    ]
    return frame


def unreachable(n_datasets: int, floor: float) -> str:
    """The verdict of a test that could not reach significance whatever the data."""
    return f"cannot decide with {n_datasets} datasets (smallest attainable Holm p {floor:.3f})"
