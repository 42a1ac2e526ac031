"""Verdicts of a family of comparisons with the reference strategy (docs/protocol.md,
"Statistics"), on arrays, so the report and ``bench/stats_power.py`` run the same code.

One family is one (dataset, model): ``values`` holds the main metric of each strategy (row 0
the reference) for each seed (columns; NaN where a run is missing), in percentage points;
``boot`` holds, per strategy, the seed-mean metric on each patient resample of the evaluation
split (the same resamples for every row), or None where there are no predictions.

A rule turns them into, per strategy ≠ the reference, the mean difference, its standard error
and degrees of freedom. ``decide`` then gives the four verdicts:

* *better* / *worse*: the rule's two-sided p-value, Holm-corrected over the family, below α;
* *equivalent*: otherwise, when the (1 − 2α/m) interval of the difference lies inside
  ±``margin`` (two one-sided tests per comparison, Bonferroni over the m comparisons) and the
  evaluation split can resolve the margin at all — one of its images moves the metric by no
  more than ``margin`` (``resolution``): on a few dozen images two models that are both
  perfect give a bootstrap of zero width, which says nothing about a 1-point difference;
* *inconclusive*: neither, with the number of seeds that would decide it were the observed
  difference and spread to hold.

The default rule (``pooled``) was chosen by simulation: ``bench/results_stats.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = "better", "worse", "equivalent", "inconclusive"
UNTESTED = "not tested"
# Above this, "more seeds" is no longer advice: the report says the test set decides.
MAX_SEEDS = 50


@dataclass(frozen=True)
class Estimate:
    """A rule's estimate of (strategy − reference): mean, standard error, degrees of freedom
    (those of the seed spread), and the parts of the variance that shrink with more seeds and
    that do not."""

    diff: np.ndarray
    se: np.ndarray
    df: np.ndarray
    seed_var: np.ndarray  # variance of one seed's difference (shrinks as 1/n)
    test_var: np.ndarray  # the evaluation split's sampling variance (does not shrink)
    seeds: np.ndarray  # seeds paired


def _paired_differences(values: np.ndarray) -> list[np.ndarray]:
    reference = values[0]
    return [(row - reference)[~np.isnan(row) & ~np.isnan(reference)] for row in values[1:]]


def _boot_var(boot: np.ndarray | None, k: int) -> np.ndarray:
    if boot is None:
        return np.zeros(k - 1)
    differences = boot[1:] - boot[0]
    return np.nanvar(differences, axis=1, ddof=1)


def seed_t(values: np.ndarray, boot: np.ndarray | None = None) -> Estimate:
    """The seed-paired t-test: each strategy's own spread of paired differences, n − 1 df;
    the evaluation split's sampling is not counted."""
    pairs = _paired_differences(values)
    n = np.array([len(p) for p in pairs], dtype=float)
    seed_var = np.array([np.var(p, ddof=1) if len(p) > 1 else np.nan for p in pairs])
    diff = np.array([p.mean() if len(p) else np.nan for p in pairs])
    zero = np.zeros_like(diff)
    return Estimate(diff, np.sqrt(seed_var / n), n - 1, seed_var, zero, n)


def combined(values: np.ndarray, boot: np.ndarray | None = None) -> Estimate:
    """Each pair's own seed spread plus the patient bootstrap's variance of the seed-mean
    difference, with the seed part's n − 1 degrees of freedom. (Welch–Satterthwaite's, which
    count the bootstrap part as known, raised the family-wise error to 13.6 % at 3 seeds:
    with 2 degrees of freedom the t tail is too sensitive to an underestimated seed spread;
    bench/results_stats.md.)"""
    seed = seed_t(values)
    test_var = _boot_var(boot, len(values))
    return estimate_from_parts(seed.diff, seed.seed_var, seed.seeds, test_var, seed.df)


def pooled_spread(values: np.ndarray) -> tuple[float, float]:
    """(variance of a paired difference, degrees of freedom) from the residual of the
    strategies × seeds layout — seeds as blocks, only seeds every strategy has: 2σ² and
    (k − 1)(n − 1)."""
    full = values[:, ~np.isnan(values).any(axis=0)]
    k, n = full.shape
    df = (k - 1) * (n - 1)
    if df <= 0:
        return np.nan, 0.0
    residual = full - full.mean(axis=1, keepdims=True) - full.mean(axis=0) + full.mean()
    return 2 * float((residual**2).sum()) / df, float(df)


def pooled(values: np.ndarray, boot: np.ndarray | None = None) -> Estimate:
    """One seed spread for the whole family (``pooled_spread``) plus the patient bootstrap's
    variance; the pooled degrees of freedom. The default: the most power at a family-wise
    error within 5 % in every simulated design (bench/results_stats.md)."""
    seed = seed_t(values)
    pair_var, df = pooled_spread(values)
    m = len(values) - 1
    return estimate_from_parts(
        seed.diff, np.full(m, pair_var), seed.seeds, _boot_var(boot, len(values)), np.full(m, df)
    )


def estimate_from_parts(diff, seed_var, seeds, test_var, seed_df) -> Estimate:
    """An estimate from its summaries: mean paired difference, the variance of one paired
    difference over seeds and its degrees of freedom, the number of pairs, and the bootstrap
    variance of the seed-mean difference (0 without predictions)."""
    diff, seed_var, seeds, test_var, seed_df = (
        np.asarray(x, dtype=float) for x in (diff, seed_var, seeds, test_var, seed_df)
    )
    se = np.sqrt(seed_var / seeds + test_var)
    return Estimate(diff, se, seed_df, seed_var, test_var, seeds)


RULES: dict[str, Callable[..., Estimate]] = {
    "seed_t": seed_t,
    "combined": combined,
    "pooled": pooled,
}


def p_values(estimate: Estimate) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(estimate.diff) / estimate.se
        p = 2 * stats.t.sf(t, estimate.df)
    p = np.where(estimate.se == 0, np.where(estimate.diff == 0, 1.0, 0.0), p)
    return np.where(estimate.seeds < 2, np.nan, p)


def holm(p_values, family: int | None = None) -> np.ndarray:
    """Holm-adjusted p-values; NaN (untested) entries stay NaN and do not count. ``family``:
    the tests are part of a larger family of that many (the rest unseen), so each is adjusted
    as if it came first among them — the search's comparisons with FT carry the grid's
    multiplicity, and claim no more than the grid's own verdict could."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    # statsmodels' multipletests gives the same numbers (tests/test_verdicts.py) but runs
    # gc.collect() on every call, which dominates the power simulation.
    order = tested[np.argsort(p[tested], kind="stable")]
    size = max(len(order), family or 0)
    steps = (size - np.arange(len(order))) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted


def equivalence_half_width(estimate: Estimate, m: int, alpha: float = ALPHA) -> np.ndarray:
    """Half-width of the (1 − 2α/m) interval: TOST at α, Bonferroni over m comparisons."""
    return stats.t.ppf(1 - alpha / max(m, 1), estimate.df) * estimate.se


@dataclass(frozen=True)
class Decision:
    p: np.ndarray
    p_holm: np.ndarray
    low: np.ndarray  # the 95 % interval of the difference, for display
    high: np.ndarray
    # The interval equivalence is judged on: the pair's own spread, (1 − 2α/m). Shown beside
    # the verdict, since it can be far narrower than the family's 95 % interval above.
    equivalence_low: np.ndarray
    equivalence_high: np.ndarray
    verdict: list[str]
    seeds_to_decide: list[int | None]  # inconclusive only; None: no number of seeds would


def decide(
    estimate: Estimate,
    margin: float,
    alpha: float = ALPHA,
    own: Estimate | None = None,
    family: int | None = None,
    resolution: np.ndarray | float | None = None,
) -> Decision:
    """The four verdicts of one family. ``estimate`` tests the differences; ``own`` — each
    pair's own seed spread (``combined``), default ``estimate`` — tests equivalence: a pair that
    moves with the reference seed by seed (a strategy that trains almost as FT does) can show
    equivalence that the family's pooled spread would hide, and TOST on its own spread is valid
    whatever the others do. ``family``: the size of the larger family these comparisons
    belong to (``holm``). ``resolution``: points of the metric one evaluation image can move
    (``medft.report.stats.one_image_points``); above ``margin`` no comparison is equivalent;
    None where unknown (no predictions)."""
    own = own or estimate
    p = p_values(estimate)
    p_holm = holm(p, family)
    m = max(int((~np.isnan(p)).sum()), family or 0)
    half95 = stats.t.ppf(1 - alpha / 2, estimate.df) * estimate.se
    equivalence_half = equivalence_half_width(own, m, alpha)
    resolvable = ~(np.broadcast_to(np.asarray(resolution, dtype=float), p.shape) > margin)
    equivalent = (np.abs(own.diff) + equivalence_half <= margin) & resolvable
    verdicts, seeds = [], []
    for i, ph in enumerate(p_holm):
        if np.isnan(ph):
            verdicts.append(UNTESTED)
        elif ph < alpha:
            verdicts.append(BETTER if estimate.diff[i] > 0 else WORSE)
        elif equivalent[i]:
            verdicts.append(EQUIVALENT)
        else:
            verdicts.append(INCONCLUSIVE)
        seeds.append(
            seeds_to_decide(estimate, own if resolvable[i] else None, i, m, margin, alpha)
            if verdicts[-1] == INCONCLUSIVE
            else None
        )
    return Decision(
        p,
        p_holm,
        estimate.diff - half95,
        estimate.diff + half95,
        own.diff - equivalence_half,
        own.diff + equivalence_half,
        verdicts,
        seeds,
    )


def _grown(estimate: Estimate, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Seed counts above the observed, and the standard error and degrees of freedom at each,
    were the observed spread to hold."""
    seed_var, n0 = estimate.seed_var[i], estimate.seeds[i]
    if np.isnan(estimate.diff[i]) or np.isnan(seed_var) or n0 < 2:
        return None
    n = np.arange(int(n0) + 1, MAX_SEEDS + 1)
    se = np.sqrt(seed_var / n + estimate.test_var[i])
    return n, se, estimate.df[i] / (n0 - 1) * (n - 1)


def seeds_to_decide(
    estimate: Estimate, own: Estimate | None, i: int, m: int, margin: float, alpha: float = ALPHA
) -> int | None:
    """The fewest seeds at which comparison ``i`` would be decided — significant at Holm's
    strictest step, or equivalent (unless ``own`` is None: the split cannot show it) — if its
    mean difference and spreads held; None where even ``MAX_SEEDS`` would not (the evaluation
    split's own uncertainty is then too large)."""
    found = []
    grown = _grown(estimate, i)
    if grown is not None:
        n, se, df = grown
        significant = abs(estimate.diff[i]) / se > stats.t.ppf(1 - alpha / (2 * m), df)
        found += list(n[significant][:1])
    grown = _grown(own, i) if own is not None else None
    if grown is not None:
        n, se, df = grown
        equivalent = abs(own.diff[i]) + stats.t.ppf(1 - alpha / m, df) * se <= margin
        found += list(n[equivalent][:1])
    return int(min(found)) if found else None
