"""The statistics the paper lacked (docs/protocol.md, "Statistics"): which differences from FT are
real.

* ``paired_tests``: per (dataset, model, strategy ≠ FT), the seed-paired differences of the
  main metric from FT (each side at its chosen lr) over the seeds both have: their mean,
  variance, 95 % t-interval.
* ``bootstrap_intervals``: (strategy − FT) on the evaluation split, resampling patients
  (groups) with replacement from the saved predictions: the seed mean's 95 % percentile
  interval, and the part of the split's sampling the seeds share.
* ``verdicts``: both sources of uncertainty in one test, each counted once
  (``medft.report.verdicts``), Holm within each (dataset, model), and a verdict per cell with
  the reason where there is none.

Differences are in percentage points of the main metric.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from medft.report.resample import resampled_metric
from medft.report.verdicts import (  # noqa: F401 -- the verdicts, re-exported
    ALPHA,
    BETTER,
    CHOSEN_ON_EVALUATION,
    EQUIVALENT,
    FEWER_THAN_TWO,
    INCONCLUSIVE,
    UNTESTED,
    WORSE,
    complete_pairs,
    decide,
    estimate_from_parts,
    holm,
    seed_summary,
    shared_test_variance,
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


def family_values(cell: pd.DataFrame, reference: str = REFERENCE):
    """One (dataset, model)'s runs as the arrays ``medft.report.verdicts`` reads: the
    strategies (the reference first), the seeds, and per strategy × seed the main metric in
    percent and the run's folder (NaN / None where missing)."""
    frame = cell.assign(value=main_values(cell) * 100)
    strategies = [reference, *dict.fromkeys(s for s in frame["strategy"] if s != reference)]
    seeds = sorted(frame["seed"].unique())
    values = frame.pivot_table(index="strategy", columns="seed", values="value", dropna=False)
    values = values.reindex(index=strategies, columns=seeds).to_numpy(dtype=float)
    runs = np.full(values.shape, None, dtype=object)
    if "run_dir" in frame:
        for _, row in frame.iterrows():
            runs[strategies.index(row["strategy"]), seeds.index(row["seed"])] = row["run_dir"]
    return strategies, seeds, values, runs


# Seeds a pairing note lists before it says how many more there are.
LISTED_SEEDS = 6


def _seed_list(seeds) -> str:
    shown = ", ".join(str(s) for s in seeds[:LISTED_SEEDS])
    more = len(seeds) - LISTED_SEEDS
    return f"{shown} and {more} more" if more > 0 else shown or "none"


def pairing_notes(strategies: list[str], seeds: list, values: np.ndarray) -> list[str]:
    """Per strategy ≠ the reference, what its pairing with the reference left out: "" where
    every run of both has its partner; otherwise which seeds have none — and where fewer than
    two pairs remain, why nothing is tested and how to pair independent runs."""
    reference = strategies[0]
    ran = ~np.isnan(values)

    def seeds_run(row: int, leaving=()) -> list:
        return [seeds[c] for c in np.flatnonzero(ran[row]) if c not in leaving]

    notes = []
    for i, columns in enumerate(complete_pairs(values), start=1):
        sides = ((reference, 0), (strategies[i], i))
        if len(columns) < 2:
            fix = (
                f"; each run pairs with {reference}'s run of the same seed, and runs of "
                "different seeds are independent: labelling them with shared seeds pairs them "
                "validly"
                if ran[0].sum() >= 2 and ran[i].sum() >= 2
                else ""
            )
            notes.append(
                f"{FEWER_THAN_TWO}: {reference} ran seeds {_seed_list(seeds_run(0))}, "
                f"{strategies[i]} {_seed_list(seeds_run(i))}{fix}"
            )
            continue
        lone = {name: seeds_run(row, leaving=set(columns)) for name, row in sides}
        unmatched = " and ".join(f"{name}'s {_seed_list(v)}" for name, v in lone.items() if v)
        notes.append(
            f"paired on {len(columns)} seeds; no partner for {unmatched}" if unmatched else ""
        )
    return notes


def paired_tests(chosen: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per (dataset, model, strategy ≠ ``reference``), over the seeds both have
    (``medft.report.verdicts.complete_pairs``): n_pairs, diff_mean, seed_var (the variance of
    the paired differences), diff_low, diff_high (their 95 % t-interval), p_seed (the
    seed-paired t-test), pairing (``pairing_notes``)."""
    rows = []
    for (dataset, model), cell in chosen.groupby(CELL, sort=False):
        strategies, seeds, values, _ = family_values(cell, reference)
        diff, seed_var, n_pairs = seed_summary(values)
        notes = pairing_notes(strategies, seeds, values)
        # The verdicts' own estimate with nothing of the split added: one t formula for both.
        seeds_only = decide(
            estimate_from_parts(diff, seed_var, n_pairs, np.nan), margin=0, advise_seeds=False
        )
        for i in range(len(diff)):
            low, high, p = seeds_only.low[i], seeds_only.high[i], seeds_only.p[i]
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "strategy": strategies[i + 1],
                    "n_pairs": int(n_pairs[i]),
                    "diff_mean": diff[i],
                    "seed_var": seed_var[i],
                    "diff_low": low,
                    "diff_high": high,
                    "p_seed": p,
                    "pairing": notes[i],
                }
            )
    return pd.DataFrame(rows, columns=[*CELL, "strategy", *PAIRED_COLUMNS])


PAIRED_COLUMNS = [
    "n_pairs",
    "diff_mean",
    "seed_var",
    "diff_low",
    "diff_high",
    "p_seed",
    "pairing",
]


def group_weights(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) image weights: how often each image's group is drawn when the groups are
    resampled with replacement."""
    names, index = np.unique(groups, return_inverse=True)
    counts = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=n_boot)
    return counts[:, index].astype(np.float64)


def same_images(frames: dict[str, pd.DataFrame], fix: str) -> pd.DataFrame:
    """The first of ``frames`` (each sorted by image id, keyed by what the error should name)
    once every one is checked to score the same images: runs are compared image by image on
    the same resamples. Otherwise a ``ValueError`` naming the first that differs and ``fix``."""
    (first_name, first), *rest = frames.items()
    ids = first["id"].to_numpy()
    for name, frame in rest:
        if not np.array_equal(frame["id"].to_numpy(), ids):
            raise ValueError(f"{name}: not scored on the same images as {first_name}; {fix}")
    return first


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


def targets_scores(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    scores = frame.filter(like="prob_").to_numpy()
    if "target" in frame:
        return frame["target"].to_numpy(), scores
    return frame.filter(like="target_").to_numpy(), scores


def resampled_values(metric: str, task: str, frame: pd.DataFrame, weights) -> np.ndarray:
    """One run's metric on every resample, in percent."""
    return resampled_metric(metric, task, *targets_scores(frame), weights) * 100


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
    """Per (dataset, model, strategy ≠ ``reference``, by default FT), over the seeds both
    have: boot_low, boot_high (the percentile interval) and boot_var of the seed-mean
    (strategy − reference) in percentage points; test_var, the part of the evaluation split's
    sampling the seeds share (``medft.report.verdicts.shared_test_variance``: each seed's own
    image noise is in the seed spread already); resolution (``one_image_points`` of the
    split). From each run's evaluation predictions (``predictions`` by ``run_dir``, else read
    with ``test_predictions``); ``tasks`` maps dataset → task type. The same resamples serve
    every run of a (dataset, model), so the comparison with FT is paired by patient and seed."""
    rows = []
    for (dataset, _), cell in chosen.groupby(CELL, sort=False):
        if reference not in set(cell["strategy"]):
            continue
        metric, task = cell["main_metric"].iloc[0], tasks[dataset]
        frames = {
            run_dir: predictions[run_dir] if predictions else test_predictions(run_dir)
            for run_dir in cell["run_dir"]
        }
        first = same_images(frames, "runs of one dataset must share its test split")
        groups = resampling_groups(first, dataset)
        weights = group_weights(groups, n_boot, np.random.default_rng(seed))
        resampled = {r: resampled_values(metric, task, frames[r], weights) for r in frames}
        rows += resampled_comparisons(
            cell,
            resampled,
            one_image_points(metric, targets_scores(first)[0]),
            len(np.unique(groups)),
            reference,
            level,
        )
    return pd.DataFrame(rows, columns=[*CELL, "strategy", *BOOT_COLUMNS])


BOOT_COLUMNS = ["boot_low", "boot_high", "boot_var", "test_var", "test_groups", "resolution"]


def resampled_comparisons(
    cell: pd.DataFrame,
    resampled: dict[str, np.ndarray],
    resolution: float,
    groups: int,
    reference: str = REFERENCE,
    level: float = LEVEL,
) -> list[dict]:
    """One (dataset, model)'s ``bootstrap_intervals`` rows from every run's main metric on the
    same patient resamples (``resampled`` by the cell's ``run_dir``, (B,) in percent) of one
    evaluation set of ``groups`` patients: per strategy ≠ ``reference``, over the seeds both
    have."""
    dataset, model = cell["dataset"].iloc[0], cell["model"].iloc[0]
    strategies, _, values, runs = family_values(cell, reference)
    n_boot = len(next(iter(resampled.values())))
    rows = []
    for i, columns in enumerate(complete_pairs(values)):
        differences = np.array(
            [resampled[runs[i + 1, c]] - resampled[runs[0, c]] for c in columns]
        ).reshape(len(columns), n_boot)
        mean = differences.mean(axis=0)
        defined = mean[~np.isnan(mean)]
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(defined, [tail, 100 - tail]) if len(defined) else (np.nan,) * 2
        if 0 < len(defined) < n_boot:
            log.warning(
                "%s %s %s: the main metric was undefined on %d of %d resamples (a class "
                "missing); the interval uses the rest",
                dataset,
                model,
                strategies[i + 1],
                n_boot - len(defined),
                n_boot,
            )
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "strategy": strategies[i + 1],
                "boot_low": low,
                "boot_high": high,
                "boot_var": np.var(defined, ddof=1) if len(defined) > 1 else np.nan,
                "test_var": shared_test_variance(differences),
                "test_groups": groups,
                "resolution": resolution,
            }
        )
    return rows


def with_pairing(reason: str, pairing) -> str:
    """A verdict's reason with what its pairing left out; the note on too few pairs already
    says what ``FEWER_THAN_TWO`` says, and more."""
    if pd.isna(pairing) or not pairing:
        return reason
    if pairing.startswith(FEWER_THAN_TWO):
        return pairing
    return f"{reason}; {pairing}" if reason else pairing


def chosen_on_evaluation(select_on: str | None, runs: pd.DataFrame | None) -> str:
    """What of ``runs`` the evaluation split chose: "the lr" (``select_on`` test), "each run's
    epoch" (early stopping on it, their ``early_stop_on``), both, or ""."""
    chosen = ["the lr"] if select_on == "test" else []
    if runs is not None and runs.get("early_stop_on", pd.Series()).eq("test").any():
        chosen.append("each run's epoch")
    return " and ".join(chosen)


def verdicts(
    paired: pd.DataFrame,
    boot: pd.DataFrame | None = None,
    margin: float = EQUIVALENCE_MARGIN,
    family: int | None = None,
    chosen_on_evaluation: str = "",
) -> pd.DataFrame:
    """``paired`` with the bootstrap columns where ``boot`` has them, and per comparison the
    test on its own complete pairs (``medft.report.verdicts.paired``: the pair's seed spread +
    the evaluation split's shared sampling, counted once, each at its own t quantile: the
    seeds' n − 1 degrees of freedom, the split's patients − 1): p_value, p_holm (within each
    (dataset, model)), low / high (its 95 % interval), eq_low / eq_high (the (1 − 2α/m)
    interval equivalence is judged on), verdict (better / worse / equivalent within
    ±``margin`` pp / inconclusive / not tested), reason (why not tested, or why equivalence
    cannot be shown; and which runs had no partner: ``with_pairing``) and seeds_to_decide
    (inconclusive only; empty where no number of seeds would). ``family``: the comparisons of
    each (dataset, model) belong to a family of that many (``medft.report.verdicts.holm``).
    ``chosen_on_evaluation`` (``chosen_on_evaluation``'s words): what of the runs the
    evaluation split chose; then nothing is tested, and the reason says so (its own column too)."""
    frame = paired.copy()
    if boot is not None and len(boot):
        frame = frame.merge(boot, on=[*CELL, "strategy"], how="left")
    else:
        frame[BOOT_COLUMNS] = np.nan
    for column in ("p_value", "p_holm", "low", "high", "eq_low", "eq_high", "seeds_to_decide"):
        frame[column] = np.nan
    frame["verdict"] = UNTESTED
    frame["reason"] = (
        CHOSEN_ON_EVALUATION.format(chosen=chosen_on_evaluation) if chosen_on_evaluation else ""
    )
    # Kept with the statistics, so that the summary across datasets, read back from them,
    # tests nothing either.
    frame["chosen_on_evaluation"] = chosen_on_evaluation
    groups = {} if chosen_on_evaluation else frame.groupby(CELL, sort=False).groups
    for _, index in groups.items():
        part = frame.loc[index]
        estimate = estimate_from_parts(
            part["diff_mean"],
            part["seed_var"],
            part["n_pairs"],
            part["test_var"],
            part["test_groups"],
        )
        decision = decide(estimate, margin, family=family, resolution=part["resolution"])
        frame.loc[index, "p_value"] = decision.p
        frame.loc[index, "p_holm"] = decision.p_holm
        frame.loc[index, "low"] = decision.low
        frame.loc[index, "high"] = decision.high
        frame.loc[index, "eq_low"] = decision.equivalence_low
        frame.loc[index, "eq_high"] = decision.equivalence_high
        frame.loc[index, "verdict"] = decision.verdict
        frame.loc[index, "reason"] = [
            with_pairing(reason, pairing)
            for reason, pairing in zip(decision.reasons, part["pairing"], strict=True)
        ]
        frame.loc[index, "seeds_to_decide"] = [
            np.nan if n is None else n for n in decision.seeds_to_decide
        ]
    frame["margin"] = margin
    return frame
