"""Strategies compared across blocks, the field's standard for many methods on many data sets
(docs/protocol.md, "Across datasets"). A block is a dataset by default, its models averaged:
the models of one dataset share its images and its difficulty, so (dataset, model) blocks are
not independent and counting each would claim more evidence than the datasets hold; the
(dataset, model) view is an option (``BLOCKS``), named in every caption.

* ``rank_test``: the Friedman test over the blocks' ranks and the Nemenyi post-hoc test, drawn
  as a critical-difference diagram (Demšar, JMLR 2006), through ``autorank``; where blocks
  share a dataset, a verdict also needs the datasets' sign-flip test (``sign_flip_p``);
* ``across_datasets``: per model and strategy, a Wilcoxon signed-rank test of the relative
  improvement over FT across datasets, Holm-corrected over strategies;
* ``bayesian``: per strategy against FT, the Bayesian signed-rank test (Benavoli et al., JMLR
  2017) with a region of practical equivalence of ±margin points: P(better), P(equivalent),
  P(worse), through ``baycomp``; a verdict also needs its frequentist twin, the exact
  signed-rank test, Holm-corrected over the strategies (``bench/results_stats_bayesian.md``:
  the posterior alone, at 0.95 for each of seven strategies, gave false verdicts in most
  families at large between-dataset spreads), whose signs flip by dataset where blocks share
  one.

The datasets are what is independent: in the (dataset, model) view a dataset's models share its
effect, and tests that count them as independent blocks gave false verdicts in 13–61 % of
simulated families. There the tests that decide flip the signs of a dataset's blocks together
(exact over the 2^n sign patterns of n datasets), so they hold their level whatever the models
of a dataset share, and can claim no more than the datasets can.

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
    "dataset_model": "the (dataset, model) pairs, each a block (the datasets decide the verdicts)",
}
# A Bayesian verdict needs this posterior probability (Benavoli et al. use 0.95).
DECISIVE = 0.95
# The sign-flip test enumerates every sign pattern up to 2^16 (16 datasets); beyond, it draws
# as many at random (Monte-Carlo error of a p near 0.05: ±0.001).
SIGN_PATTERNS = 2**16
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


def rank_test(wide: pd.DataFrame, alpha: float = ALPHA, withheld: str = "") -> RankTest:
    """The Friedman test and Nemenyi's post-hoc test over ``wide``'s blocks (rows), each
    strategy's verdict against FT. Where blocks share a dataset (the index's ``dataset`` level;
    the (dataset, model) view), Nemenyi's independent blocks do not hold, and a verdict also
    needs the datasets' sign-flip test of the strategy's rank difference from FT, Holm over
    the strategies (``p_datasets_holm``; NaN where every dataset is one block); ``nemenyi``
    is Nemenyi's verdict alone. ``withheld``: why no test is run whatever the blocks (the
    evaluation split chose the runs)."""
    n, k = wide.shape
    rank_of = wide.rank(axis=1, ascending=False)
    ranks = rank_of.mean()
    floor = friedman_floor(n, k) if k > 1 else np.nan
    table = pd.DataFrame({"strategy": ranks.index, "mean_rank": ranks.to_numpy()})
    table["rank_vs_FT"] = table["mean_rank"] - ranks.get(REFERENCE, np.nan)
    table["p_datasets_holm"] = np.nan
    if withheld or n < MIN_BLOCKS or k < 3 or not floor < alpha:
        reason = (
            withheld
            if withheld
            else f"no rank test with {n} blocks (autorank needs {MIN_BLOCKS})"
            if n < MIN_BLOCKS
            else f"no rank test with {k} strategies"
            if k < 3
            else f"cannot decide with {n} blocks (Friedman's smallest attainable p {floor:.3f})"
        )
        table["nemenyi"] = table["verdict"] = [
            "reference" if s == REFERENCE else reason for s in table["strategy"]
        ]
        return RankTest(table, n, np.nan, floor, np.nan, None)
    from contextlib import redirect_stdout
    from io import StringIO

    from autorank import autorank

    with redirect_stdout(StringIO()):  # autorank prints its forced choice of test
        result = autorank(wide, alpha=alpha, verbose=False, force_mode="nonparametric")
    significant = result.pvalue < alpha
    # A lower mean rank is better (rank 1: the highest metric).
    table["nemenyi"] = [
        "reference"
        if s == REFERENCE
        else (BETTER if d < 0 else WORSE)
        if significant and abs(d) > result.cd
        else INCONCLUSIVE
        for s, d in zip(table["strategy"], table["rank_vs_FT"], strict=True)
    ]
    table["verdict"] = table["nemenyi"]
    datasets = dataset_of(wide)
    if REFERENCE in wide.columns and not datasets.is_unique:
        table = _datasets_decide(table, rank_of, datasets, alpha)
    return RankTest(table, n, float(result.pvalue), floor, float(result.cd), result)


def dataset_of(wide: pd.DataFrame) -> pd.Index:
    """Each block's dataset: the index's ``dataset`` level, else each block its own."""
    if "dataset" in wide.index.names:
        return wide.index.get_level_values("dataset")
    return pd.RangeIndex(len(wide))


def _datasets_decide(
    table: pd.DataFrame, rank_of: pd.DataFrame, datasets: pd.Index, alpha: float
) -> pd.DataFrame:
    """Nemenyi's verdicts where the datasets' sign-flip test agrees: swapping a strategy's
    and FT's places in every block of a dataset negates that dataset's rank difference, so
    under no difference each dataset's sign is a coin flip, whatever its blocks share."""
    others = table["strategy"] != REFERENCE
    tests = [
        sign_flip_p(rank_of[REFERENCE].to_numpy() - rank_of[s].to_numpy(), datasets)
        for s in table.loc[others, "strategy"]
    ]
    m = len(tests)
    table.loc[others, "p_datasets_holm"] = holm([p for p, _ in tests])
    floors = {
        s: (min(1.0, m * 2.0 / 2.0**flipped), flipped)
        for s, (_, flipped) in zip(table.loc[others, "strategy"], tests, strict=True)
    }
    n_datasets = len(datasets.unique())
    verdicts = []
    for _, row in table.iterrows():
        if row["nemenyi"] not in (BETTER, WORSE):
            verdicts.append(row["nemenyi"])
            continue
        floor, flipped = floors[row["strategy"]]
        if floor >= alpha:
            unit = _unit("datasets", n_datasets - flipped)
            verdicts.append(unreachable(flipped, floor, unit))
        else:
            verdicts.append(row["nemenyi"] if row["p_datasets_holm"] < alpha else INCONCLUSIVE)
    return table.assign(verdict=verdicts)


def sign_flip_p(
    per_block: np.ndarray, datasets, alternative: str = "two-sided"
) -> tuple[float, int]:
    """The test that ``per_block``'s total is 0 with each dataset's blocks flipping sign
    together (``scipy.stats.permutation_test`` on the datasets' sums: exact up to
    ``SIGN_PATTERNS``): its p, and the number of datasets whose sum is not 0 — the signs it
    flips, which bound its smallest p (2 / 2^n two-sided). NaN where every sum is 0."""
    sums = pd.Series(per_block).groupby(np.asarray(datasets), sort=False).sum().to_numpy()
    sums = sums[sums != 0]
    if not len(sums):
        return np.nan, 0
    # scipy wants two observations; a 0 beside one sum flips to itself, and leaves every
    # pattern's total, so the p, as it is.
    padded = sums if len(sums) > 1 else np.append(sums, 0.0)
    test = stats.permutation_test(
        (padded,),
        lambda x, axis: np.sum(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=SIGN_PATTERNS,
        alternative=alternative,
        rng=0,
    )
    return float(test.pvalue), len(sums)


def signed_ranks(differences: np.ndarray) -> np.ndarray:
    """Wilcoxon's signed ranks: the ranks of |differences| among those not 0 (mid-ranks for
    ties), with their signs; 0 for a difference of 0, which has no sign (scipy's default)."""
    ranks = np.zeros(len(differences))
    nonzero = differences != 0
    ranks[nonzero] = stats.rankdata(np.abs(differences[nonzero])) * np.sign(differences[nonzero])
    return ranks


def bayesian(
    values: pd.DataFrame, margin: float, by: str = "dataset", withheld: str = ""
) -> pd.DataFrame:
    """Per strategy ≠ FT over its ``blocks`` with FT — the (dataset, model) pairs where both
    have a value, so that a cell another strategy lacks changes nothing here: P(better),
    P(equivalent), P(worse) than FT, the difference counted as equivalent within ±``margin``
    points; ``posterior``, the one reaching ``DECISIVE``; and the verdict, where the exact
    signed-rank test agrees (``_frequentist_twin``; its p-values and their Holm adjustment as
    columns); no test below ``MIN_BLOCKS_BAYESIAN`` blocks, nor at all where ``withheld``
    says why (the evaluation split chose the runs)."""
    import baycomp

    rows = []
    for strategy in (s for s in values.columns if s != REFERENCE):
        paired = blocks(values[[strategy, REFERENCE]], by)
        x, y = paired[strategy].to_numpy(), paired[REFERENCE].to_numpy()
        datasets = dataset_of(paired)
        tested = len(x) >= MIN_BLOCKS_BAYESIAN and not withheld
        if not tested:
            better = same = worse = np.nan
            counted = f"{len(x)} block{'' if len(x) == 1 else 's'}"
            decided = [withheld or f"no test with {counted} (needs {MIN_BLOCKS_BAYESIAN})"]
        else:
            better, same, worse = baycomp.two_on_multiple(x, y, rope=margin, random_state=0)
            probabilities = {BETTER: better, EQUIVALENT: same, WORSE: worse}
            decided = [v for v, p in probabilities.items() if p >= DECISIVE]
        p_signed_rank, n_signed = _signed_rank_p(x - y, datasets)
        rows.append(
            {
                "strategy": strategy,
                "n_blocks": len(x),
                "n_datasets": len(datasets.unique()),
                # The exact test ranks only the blocks that differ from FT's (scipy drops ties).
                "n_ranked": int(np.count_nonzero(x - y)),
                # The datasets whose signs it flips: their blocks' signed ranks do not sum to 0.
                "n_signed": n_signed,
                "median_difference": float(np.median(x - y)) if len(x) else np.nan,
                # Beside the median: where the two differ in sign the gains are skewed, and
                # the verdict (about the typical block) is not about the mean.
                "mean_difference": float(np.mean(x - y)) if len(x) else np.nan,
                "P(better)": better,
                "P(equivalent)": same,
                "P(worse)": worse,
                "p_signed_rank": p_signed_rank if tested else np.nan,
                "p_equivalence": _equivalence_p(x - y, datasets, margin) if tested else np.nan,
                "posterior": decided[0] if decided else INCONCLUSIVE,
            }
        )
    table = pd.DataFrame(rows)
    return _frequentist_twin(table) if len(table) else table.assign(verdict=[])


def _signed_rank_p(
    differences: np.ndarray, datasets: pd.Index, alternative: str = "two-sided"
) -> tuple[float, int]:
    """The exact signed-rank test of no difference, and the datasets whose signs it flips.
    Each dataset one block: Wilcoxon's (scipy, exact at any size). Blocks sharing a dataset:
    the same statistic with each dataset's blocks flipping together (``sign_flip_p``), which
    is Wilcoxon's exact test where every dataset is one block. NaN where every difference is
    0 (nothing to rank)."""
    if not datasets.is_unique:
        return sign_flip_p(signed_ranks(differences), datasets, alternative)
    if not np.any(differences != 0):
        return np.nan, 0
    p = stats.wilcoxon(differences, alternative=alternative).pvalue
    return float(p), int(np.count_nonzero(differences))


def _equivalence_p(differences: np.ndarray, datasets: pd.Index, margin: float) -> float:
    """Two one-sided signed-rank tests that the differences lie within ±``margin``: the larger
    p. NaN at a margin of 0, within which nothing is equivalent."""
    if not margin > 0:
        return np.nan
    above_lower, _ = _signed_rank_p(differences + margin, datasets, "greater")
    below_upper, _ = _signed_rank_p(differences - margin, datasets, "less")
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
    # The exact test's smallest p: 2 / 2^n two-sided over the n datasets whose signs it flips,
    # 1 / 2^n one-sided (against ±margin a tie is all but impossible); Holm's first step
    # multiplies it by m.
    signed = table["n_signed"].astype(float)
    floors = {
        BETTER: np.minimum(1.0, m * 2.0 / 2.0**signed),
        WORSE: np.minimum(1.0, m * 2.0 / 2.0**signed),
        EQUIVALENT: np.minimum(1.0, m / 2.0 ** table["n_datasets"].astype(float)),
    }
    verdicts = []
    for i, row in table.iterrows():
        claim = row["posterior"]
        if claim not in (BETTER, WORSE, EQUIVALENT):
            verdicts.append(claim)
            continue
        p = row["p_equivalence_holm"] if claim == EQUIVALENT else row["p_holm"]
        if floors[claim][i] >= ALPHA:
            n = int(row["n_datasets"] if claim == EQUIVALENT else row["n_signed"])
            unit = _unit("datasets", int(row["n_datasets"]) - n)
            verdicts.append(unreachable(n, floors[claim][i], unit))
        elif p < ALPHA:
            verdicts.append(claim)
        else:
            verdicts.append(INCONCLUSIVE)
    return table.assign(verdict=verdicts)


def across_datasets(improvement: pd.DataFrame, withheld: str = "") -> pd.DataFrame:
    """Per model and strategy ≠ FT: the Wilcoxon signed-rank test of the relative improvement
    over FT across datasets (only with ``MIN_DATASETS_WILCOXON`` or more), Holm-corrected over
    the strategies of a model. Columns: model, strategy, n_datasets, n_ranked (those where it
    differs from FT), median_improvement, mean_improvement, p_value, p_holm, min_p_holm,
    verdict. ``withheld``: why nothing is tested (the evaluation split chose the runs)."""
    rows = []
    others = improvement[improvement["strategy"] != REFERENCE].dropna(subset=["improvement"])
    for (model, strategy), block in others.groupby(["model", "strategy"], sort=False):
        values = block["improvement"].to_numpy()
        p = (
            float(stats.wilcoxon(values).pvalue)
            if len(values) >= MIN_DATASETS_WILCOXON and np.any(values != 0) and not withheld
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
        withheld
        if withheld
        else unreachable(ranked, floor, _unit("datasets", n - ranked))
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
