"""The statistics the paper lacked (docs/protocol.md, "Statistics"): which differences from FT are
real.

* ``paired_tests``: per (dataset, model, strategy ≠ FT), the seed-paired differences of the
  main metric from FT (each side at its chosen lr): their mean, variance, 95 % t-interval.
* ``bootstrap_intervals``: (strategy − FT) on the evaluation split, resampling patients
  (groups) with replacement from the saved predictions, the metric averaged over seeds on each
  resample: its 95 % percentile interval and its variance.
* ``verdicts``: both sources of uncertainty in one test (``medft.report.verdicts``), Holm
  within each (dataset, model), and one of four verdicts per cell.

Differences are in percentage points of the main metric.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from medft.report.resample import resampled_metric
from medft.report.verdicts import (  # noqa: F401 -- the verdicts, re-exported
    ALPHA,
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    UNTESTED,
    WORSE,
    decide,
    estimate_from_parts,
    holm,
    pooled_spread,
)
from medft.strategies import REFERENCE

CELL = ["dataset", "model"]
LEVEL = 0.95
N_BOOT = 2000
# Points of the main metric within which two strategies are called equivalent (config's
# ``equivalence_margin``; docs/protocol.md says why 1).
EQUIVALENCE_MARGIN = 1.0
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
    """Per (dataset, model, strategy ≠ ``reference``): n_pairs, diff_mean, seed_var (the
    variance of the paired differences), diff_low, diff_high (their 95 % t-interval),
    p_seed (the seed-paired t-test), and the family's pooled spread (``family_spread``)."""
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
                "seed_var": np.var(differences, ddof=1) if len(differences) > 1 else np.nan,
                "diff_low": low,
                "diff_high": high,
                "p_seed": p,
            }
        )
    paired = pd.DataFrame(rows, columns=[*CELL, "strategy", *PAIRED_COLUMNS])
    return paired.merge(family_spread(chosen, reference), on=CELL, how="left")


PAIRED_COLUMNS = ["n_pairs", "diff_mean", "seed_var", "diff_low", "diff_high", "p_seed"]


def family_spread(chosen: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per (dataset, model): pooled_var, the variance of a paired difference from the residual
    of its strategies × seeds layout (``medft.report.verdicts.pooled_spread``), and pooled_df."""
    frame = chosen.assign(value=main_values(chosen) * 100)
    rows = []
    for (dataset, model), cell in frame.groupby(CELL, sort=False):
        wide = cell.pivot_table(index="strategy", columns="seed", values="value", sort=False)
        order = [reference, *(s for s in wide.index if s != reference)]
        variance, df = pooled_spread(wide.reindex(order).to_numpy())
        rows.append({"dataset": dataset, "model": model, "pooled_var": variance, "pooled_df": df})
    return pd.DataFrame(rows, columns=[*CELL, "pooled_var", "pooled_df"])


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


def one_image_points(metric: str, targets: np.ndarray) -> float:
    """About how many points of ``metric`` one evaluation image can move: 100 / n for
    accuracy; for the metrics computed per class (AUROC, mAP, balanced accuracy, κ, F1),
    100 / the count of the rarest class (multi-label: the rarer side of the rarest label)."""
    targets = np.asarray(targets)
    if metric == "accuracy":
        return 100 / len(targets)
    if targets.ndim == 2:
        positives = targets.sum(axis=0)
        counts = np.minimum(positives, len(targets) - positives)
    else:
        counts = np.unique(targets, return_counts=True)[1]
        if len(counts) == 2:
            counts = counts.min(keepdims=True)
    counts = counts[counts > 0]
    return 100 / counts.min() if len(counts) else np.inf


def bootstrap_intervals(
    chosen: pd.DataFrame,
    tasks: dict[str, str],
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
    predictions: dict[str, pd.DataFrame] | None = None,
    reference: str = REFERENCE,
) -> pd.DataFrame:
    """Per (dataset, model, strategy ≠ ``reference``, by default FT): boot_low, boot_high (the
    percentile interval) and boot_var of (strategy − reference) in percentage points, and
    resolution (``one_image_points`` of the split), from
    each run's evaluation predictions (``predictions`` by ``run_dir``, else read with
    ``test_predictions``); ``tasks`` maps dataset → task type. The same resamples serve every
    strategy of a (dataset, model), so the comparison with FT is paired by patient."""
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
        resolution = one_image_points(metric, _targets_scores(first)[0])
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
                    "boot_var": np.var(defined, ddof=1) if len(defined) > 1 else np.nan,
                    "resolution": resolution,
                }
            )
    return pd.DataFrame(rows, columns=[*CELL, "strategy", *BOOT_COLUMNS])


BOOT_COLUMNS = ["boot_low", "boot_high", "boot_var", "resolution"]


def verdicts(
    paired: pd.DataFrame,
    boot: pd.DataFrame | None = None,
    margin: float = EQUIVALENCE_MARGIN,
    family: int | None = None,
) -> pd.DataFrame:
    """``paired`` with the bootstrap columns where ``boot`` has them, and per comparison the
    test (the family's pooled seed spread + the evaluation split's sampling,
    ``medft.report.verdicts.pooled``; equivalence on the pair's own spread):
    p_value, p_holm (within each (dataset, model)), low / high (its 95 % interval), eq_low /
    eq_high (the pair's own (1 − 2α/m) interval, which equivalence is judged on; no
    equivalence where one evaluation image moves the metric by more than the margin), verdict
    (better / worse / equivalent within ±``margin`` pp / inconclusive / not tested) and
    seeds_to_decide (inconclusive only; empty where no number of seeds would). ``family``:
    the comparisons of each (dataset, model) belong to a family of that many
    (``medft.report.verdicts.holm``)."""
    frame = paired.copy()
    if boot is not None and len(boot):
        frame = frame.merge(boot, on=[*CELL, "strategy"], how="left")
    else:
        frame[BOOT_COLUMNS] = np.nan
    for column in ("p_value", "p_holm", "low", "high", "eq_low", "eq_high", "seeds_to_decide"):
        frame[column] = np.nan
    frame["verdict"] = UNTESTED
    for _, index in frame.groupby(CELL, sort=False).groups.items():
        part = frame.loc[index]
        estimate = estimate_from_parts(
            part["diff_mean"],
            part["pooled_var"],
            part["n_pairs"],
            part["boot_var"].fillna(0.0),
            part["pooled_df"],
        )
        own = estimate_from_parts(
            part["diff_mean"],
            part["seed_var"],
            part["n_pairs"],
            part["boot_var"].fillna(0.0),
            part["n_pairs"] - 1,
        )
        decision = decide(
            estimate, margin, own=own, family=family, resolution=part["resolution"].to_numpy()
        )
        frame.loc[index, "p_value"] = decision.p
        frame.loc[index, "p_holm"] = decision.p_holm
        frame.loc[index, "low"] = decision.low
        frame.loc[index, "high"] = decision.high
        frame.loc[index, "eq_low"] = decision.equivalence_low
        frame.loc[index, "eq_high"] = decision.equivalence_high
        frame.loc[index, "verdict"] = decision.verdict
        frame.loc[index, "seeds_to_decide"] = [
            np.nan if n is None else n for n in decision.seeds_to_decide
        ]
    frame["margin"] = margin
    return frame
