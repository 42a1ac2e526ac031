"""Strategies compared across blocks, the field's standard for many methods on many data sets
(docs/protocol.md, "Across datasets"). A block is a dataset by default, its models averaged:
the models of one dataset share its images and its difficulty, so (dataset, model) blocks are
not independent and counting each would claim more evidence than the datasets hold; the
(dataset, model) view is an option (``BLOCKS``), named in every caption.

* ``rank_test``: the Friedman test over the blocks' ranks and the Nemenyi post-hoc test, drawn
  as a critical-difference diagram (Demšar, JMLR 2006), through ``autorank``;
* ``across_datasets``: per model and strategy, a Wilcoxon signed-rank test of the relative
  improvement over FT across datasets, Holm-corrected over strategies;
* ``bayesian``: per strategy against FT, the Bayesian signed-rank test (Benavoli et al., JMLR
  2017) with a region of practical equivalence of ±margin points: P(better), P(equivalent),
  P(worse), through ``baycomp``; a verdict also needs its frequentist twin, the exact
  signed-rank test, Holm-corrected over the strategies (``bench/results_stats_bayesian.md``:
  the posterior alone, at 0.95 for each of seven strategies, gave false verdicts in most
  families at large between-dataset spreads).

Where a test cannot reach significance with the blocks at hand, the result says so (its
smallest attainable p) instead of a verdict no data could change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from medft.report.verdicts import ALPHA, BETTER, EQUIVALENT, INCONCLUSIVE, UNTESTED, WORSE, holm
from medft.strategies import REFERENCE

# autorank refuses fewer blocks.
MIN_BLOCKS = 5
# The Bayesian signed-rank test's twin, the exact Wilcoxon signed-rank test, cannot reach a
# two-sided 0.05 with fewer than 6 blocks (its smallest p is 2 / 2^n: 0.0625 at 5). Below
# that, a posterior of 0.95 is the prior's and two blocks' doing ([−5, −6] gave *worse* at
# P = 0.964), not evidence.
MIN_BLOCKS_BAYESIAN = 6
# What a block is: the option's name → how captions say it.
BLOCKS = {
    "dataset": "the datasets (each the mean over its models)",
    "dataset_model": "the (dataset, model) pairs, each counted as independent",
}
# A Bayesian verdict needs this posterior probability (Benavoli et al. use 0.95).
DECISIVE = 0.95
MIN_DATASETS_WILCOXON = 5


def values(summary: pd.DataFrame) -> pd.DataFrame:
    """(dataset, model) × strategy: the mean main metric in percent; NaN where a cell has
    none (it failed, or was not run)."""
    values = summary.assign(
        value=[row[f"{row['main_metric']}_mean"] for _, row in summary.iterrows()]
    )
    wide = values.pivot_table(
        index=["dataset", "model"], columns="strategy", values="value", sort=False
    )
    return wide.reindex(columns=list(dict.fromkeys(summary["strategy"])))


def blocks(values: pd.DataFrame, by: str = "dataset") -> pd.DataFrame:
    """Block × strategy from ``values`` (``values()``, or some of its columns): only the
    (dataset, model) pairs where each of its strategies has a value, so that they compare like
    with like; ``by`` "dataset" (the default) averages each dataset's models into one block,
    "dataset_model" keeps each pair."""
    if by not in BLOCKS:
        raise ValueError(f"across_blocks {by!r}: choose one of {sorted(BLOCKS)}")
    wide = values.dropna()
    if by == "dataset":
        return wide.groupby(level="dataset", sort=False).mean()
    return wide


@dataclass(frozen=True)
class RankTest:
    table: pd.DataFrame  # per strategy: mean_rank, rank_vs_FT, verdict
    n_blocks: int
    p_value: float  # Friedman's; NaN where not tested
    min_p: float  # the smallest p Friedman can reach with these blocks
    cd: float  # Nemenyi's critical difference of mean ranks; NaN where not tested
    result: object | None  # autorank's, for the diagram


def friedman_floor(n_blocks: int, k: int) -> float:
    """Friedman's smallest attainable p (every block ranking the strategies alike), from the
    chi-square approximation autorank and scipy use."""
    return float(stats.chi2.sf(n_blocks * (k - 1), k - 1))


def rank_test(wide: pd.DataFrame, alpha: float = ALPHA) -> RankTest:
    n, k = wide.shape
    ranks = wide.rank(axis=1, ascending=False).mean()
    floor = friedman_floor(n, k) if k > 1 else np.nan
    table = pd.DataFrame({"strategy": ranks.index, "mean_rank": ranks.to_numpy()})
    table["rank_vs_FT"] = table["mean_rank"] - ranks.get(REFERENCE, np.nan)
    if n < MIN_BLOCKS or k < 3 or not floor < alpha:
        reason = (
            f"no rank test with {n} blocks (autorank needs {MIN_BLOCKS})"
            if n < MIN_BLOCKS
            else f"no rank test with {k} strategies"
            if k < 3
            else f"cannot decide with {n} blocks (Friedman's smallest attainable p {floor:.3f})"
        )
        table["verdict"] = ["reference" if s == REFERENCE else reason for s in table["strategy"]]
        return RankTest(table, n, np.nan, floor, np.nan, None)
    from contextlib import redirect_stdout
    from io import StringIO

    from autorank import autorank

    with redirect_stdout(StringIO()):  # autorank prints its forced choice of test
        result = autorank(wide, alpha=alpha, verbose=False, force_mode="nonparametric")
    significant = result.pvalue < alpha
    # A lower mean rank is better (rank 1: the highest metric).
    table["verdict"] = [
        "reference"
        if s == REFERENCE
        else (BETTER if d < 0 else WORSE)
        if significant and abs(d) > result.cd
        else INCONCLUSIVE
        for s, d in zip(table["strategy"], table["rank_vs_FT"], strict=True)
    ]
    return RankTest(table, n, float(result.pvalue), floor, float(result.cd), result)


def bayesian(values: pd.DataFrame, margin: float, by: str = "dataset") -> pd.DataFrame:
    """Per strategy ≠ FT over its ``blocks`` with FT — the (dataset, model) pairs where both
    have a value, so that a cell another strategy lacks changes nothing here: P(better),
    P(equivalent), P(worse) than FT, the difference counted as equivalent within ±``margin``
    points; ``posterior``, the one reaching ``DECISIVE``; and the verdict, where the exact
    signed-rank test agrees (``_frequentist_twin``; its p-values and their Holm adjustment as
    columns); no test below ``MIN_BLOCKS_BAYESIAN`` blocks."""
    import baycomp

    rows = []
    for strategy in (s for s in values.columns if s != REFERENCE):
        paired = blocks(values[[strategy, REFERENCE]], by)
        x, y = paired[strategy].to_numpy(), paired[REFERENCE].to_numpy()
        tested = len(x) >= MIN_BLOCKS_BAYESIAN
        if not tested:
            better = same = worse = np.nan
            decided = [f"no test with {len(x)} blocks (needs {MIN_BLOCKS_BAYESIAN})"]
        else:
            better, same, worse = baycomp.two_on_multiple(x, y, rope=margin, random_state=0)
            probabilities = {BETTER: better, EQUIVALENT: same, WORSE: worse}
            decided = [v for v, p in probabilities.items() if p >= DECISIVE]
        rows.append(
            {
                "strategy": strategy,
                "n_blocks": len(x),
                # The exact test ranks only the blocks that differ from FT's (scipy drops ties).
                "n_ranked": int(np.count_nonzero(x - y)),
                "median_difference": float(np.median(x - y)) if len(x) else np.nan,
                # Beside the median: where the two differ in sign the gains are skewed, and
                # the verdict (about the typical block) is not about the mean.
                "mean_difference": float(np.mean(x - y)) if len(x) else np.nan,
                "P(better)": better,
                "P(equivalent)": same,
                "P(worse)": worse,
                "p_signed_rank": _signed_rank_p(x - y) if tested else np.nan,
                "p_equivalence": _equivalence_p(x - y, margin) if tested else np.nan,
                "posterior": decided[0] if decided else INCONCLUSIVE,
            }
        )
    table = pd.DataFrame(rows)
    return _frequentist_twin(table) if len(table) else table.assign(verdict=[])


def _signed_rank_p(differences: np.ndarray) -> float:
    """The exact two-sided signed-rank test of no difference; NaN where every difference is 0
    (nothing to rank)."""
    if not np.any(differences != 0):
        return np.nan
    return float(stats.wilcoxon(differences).pvalue)


def _equivalence_p(differences: np.ndarray, margin: float) -> float:
    """Two one-sided signed-rank tests that the differences lie within ±``margin``: the larger
    p. NaN at a margin of 0, within which nothing is equivalent."""
    if not margin > 0:
        return np.nan
    above_lower = stats.wilcoxon(differences + margin, alternative="greater").pvalue
    below_upper = stats.wilcoxon(differences - margin, alternative="less").pvalue
    return float(max(above_lower, below_upper))


def _frequentist_twin(table: pd.DataFrame) -> pd.DataFrame:
    """The verdict: the posterior's, where the exact signed-rank test of the same blocks,
    Holm-corrected over the strategies, agrees at ``ALPHA`` (for *equivalent*, two one-sided
    tests against ±margin). Holm's family is every strategy with blocks enough, decided by its
    posterior or not, so that no posterior chooses which comparisons it sees. Where the test
    could not reach ``ALPHA`` whatever the data, the verdict says so."""
    m = int((table["n_blocks"] >= MIN_BLOCKS_BAYESIAN).sum())
    table["p_holm"] = holm(table["p_signed_rank"], family=m)
    table["p_equivalence_holm"] = holm(table["p_equivalence"], family=m)
    # The exact test's smallest p: 2 / 2^n two-sided over the n blocks it ranks, 1 / 2^n
    # one-sided (against ±margin a tie is all but impossible); Holm's first step multiplies it
    # by m.
    ranked = table["n_ranked"].astype(float)
    floors = {
        BETTER: np.minimum(1.0, m * 2.0 / 2.0**ranked),
        WORSE: np.minimum(1.0, m * 2.0 / 2.0**ranked),
        EQUIVALENT: np.minimum(1.0, m / 2.0 ** table["n_blocks"].astype(float)),
    }
    verdicts = []
    for i, row in table.iterrows():
        claim = row["posterior"]
        if claim not in (BETTER, WORSE, EQUIVALENT):
            verdicts.append(claim)
            continue
        p = row["p_equivalence_holm"] if claim == EQUIVALENT else row["p_holm"]
        if floors[claim][i] >= ALPHA:
            n = int(row["n_blocks"] if claim == EQUIVALENT else row["n_ranked"])
            unit = _unit("blocks", int(row["n_blocks"]) - n)
            verdicts.append(unreachable(n, floors[claim][i], unit))
        elif p < ALPHA:
            verdicts.append(claim)
        else:
            verdicts.append(INCONCLUSIVE)
    return table.assign(verdict=verdicts)


def across_datasets(improvement: pd.DataFrame) -> pd.DataFrame:
    """Per model and strategy ≠ FT: the Wilcoxon signed-rank test of the relative improvement
    over FT across datasets (only with ``MIN_DATASETS_WILCOXON`` or more), Holm-corrected over
    the strategies of a model. Columns: model, strategy, n_datasets, n_ranked (those where it
    differs from FT), median_improvement, mean_improvement, p_value, p_holm, min_p_holm,
    verdict."""
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
                "n_ranked": int(np.count_nonzero(values)),
                "median_improvement": float(np.median(values)),
                "mean_improvement": float(np.mean(values)),
                "p_value": p,
            }
        )
    columns = ["model", "strategy", "n_datasets", "n_ranked", "median_improvement"]
    frame = pd.DataFrame(rows, columns=[*columns, "mean_improvement", "p_value"])
    frame["p_holm"] = frame["min_p_holm"] = np.nan
    for _, index in frame.groupby("model", sort=False).groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p_value"])
        # The exact two-sided test's smallest p is 2 / 2^n over the n datasets it ranks (a
        # dataset where the strategy ties FT is dropped); Holm's first step multiplies it by
        # the number of strategies tested. An untested row has no floor (0 there would read as
        # "anything is reachable").
        p_values = frame.loc[index, "p_value"]
        floor = np.minimum(1.0, p_values.notna().sum() * 2.0 / 2.0 ** frame.loc[index, "n_ranked"])
        frame.loc[index, "min_p_holm"] = floor.where(p_values.notna())
    frame["verdict"] = [
        unreachable(ranked, floor, _unit("datasets", n - ranked))
        if not np.isnan(p) and floor >= ALPHA
        else _direction(p, m)
        for p, m, n, ranked, floor in zip(
            frame["p_holm"],
            frame["median_improvement"],
            frame["n_datasets"],
            frame["n_ranked"],
            frame["min_p_holm"],
            strict=True,
        )
    ]
    return frame


def _direction(p_holm: float, median: float) -> str:
    if np.isnan(p_holm):
        return UNTESTED
    if p_holm >= ALPHA:
        return INCONCLUSIVE
    return BETTER if median > 0 else WORSE


def _unit(unit: str, ties: int) -> str:
    """What the exact test counted: ``unit``, less those where the strategy ties FT."""
    return f"{unit} unlike FT's ({ties} tie it)" if ties else unit


def unreachable(n: int, floor: float, unit: str) -> str:
    """The verdict of a test that could not reach significance whatever the data."""
    return f"cannot decide with {n} {unit} (smallest attainable Holm p {floor:.3f})"
