"""Verdicts of a family of comparisons with the reference strategy (docs/protocol.md,
"Statistics"), on arrays, so the report and ``bench/stats_power.py`` run the same code.

One family is one (dataset, model): ``values`` holds the main metric of each strategy (row 0
the reference) for each seed (columns; NaN where a run is missing), in percentage points;
``boot`` holds, per strategy and seed, the metric on each patient resample of the evaluation
split (K × seeds × B, the same resamples for every run), or None where there are no
predictions.

Each comparison stands on its own pairs (``paired``): the seeds both strategies have
(``complete_pairs``), the spread of their differences, and the part of the evaluation split's
sampling that the seeds share (``shared_test_variance``): the seeds' differences already carry
each run's own image-level noise, so only the part common to all seeds is added, and
evaluation-split noise is counted once. Each part of the variance keeps its own degrees of
freedom (``half_width``): the seeds' spread its t(n − 1) quantile — nothing else tells how much
this pair's seeds spread — and the split's part, measured on its patients, t(patients − 1)'s.
The interval's half-width is √(t²_seeds · s²/n + t²_split · σ²_split) (Banerjee's solution to
the Behrens–Fisher problem, one part known far better than the other), and p the level at
which it touches 0. Its error rate is at most the nominal whatever the two parts' sizes: the
tail probability is convex in the seed part's share of the variance, and at either end it is
exactly the one part's t test (normal seed noise; the split's part as measured). Borrowing
the family's pooled spread, or Welch–Satterthwaite degrees of freedom for the sum, each
assumes more than three seeds can show — the first that every pair spreads alike (false when
FT is noisier than strategies that do not move with it), the second that a spread estimated
from 2 degrees of freedom is near its truth in the far tail Holm reads — and each gave false
verdicts well above 5 % in a design a user can bring (docs/protocol.md, "Statistics"); the
rule before this one put the whole variance on t(n − 1), which holds too but wastes the
split's measured part (``bench/results_stats.md``). ``decide`` then gives the verdicts:

* *better* / *worse*: the two-sided p-value, Holm-corrected over the family, below α;
* *equivalent*: otherwise, when the (1 − 2α/m) interval of the difference lies inside
  ±``margin`` (two one-sided tests per comparison, Bonferroni over the m comparisons) and the
  evaluation split can resolve the margin at all — one of its images moves the metric by no
  more than ``margin`` (``resolution``);
* *inconclusive*: neither, with the number of seeds that would decide it were the observed
  difference and spread to hold;
* *not tested*: the data cannot carry a test, and ``Decision.reasons`` says why (fewer than
  two pairs, zero spread). A degenerate input is named, never decided: zero spread is not
  certainty, and a zero-width interval is not evidence of equivalence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = "better", "worse", "equivalent", "inconclusive"
UNTESTED = "not tested"
# A standard error below this (points) is floating-point noise of equal values, not spread:
# metrics travel as fractions, so equal runs differ by ~1e-14 points after scaling.
FLOAT_NOISE = 1e-9
# Above this, "more seeds" is no longer advice: the report says the test set decides.
MAX_SEEDS = 50
# Points of the seed variance's distribution ``detectable_difference`` averages over.
QUANTILE_POINTS = 20_000
# ``p_values``' bisection: the smallest p it reports, and its steps (on log p: 2⁻⁶⁴ of the
# range, far below any p's meaning).
P_FLOOR = 1e-300
BISECTIONS = 64

FEWER_THAN_TWO = "fewer than 2 complete seed pairs"
ZERO_SPREAD = (
    "zero spread: every seed gave the same difference and nothing measured the evaluation "
    "split's sampling (a zero-width interval is not evidence)"
)
ZERO_WIDTH = (
    "zero-width: the same difference on every seed and every patient resample (e.g. both "
    "perfect), which is not evidence either way"
)
NO_MARGIN = "margin 0: nothing can be shown equivalent within ±0"
NO_RESOLUTION = (
    "no predictions: the evaluation split's sampling and resolution are unknown, so "
    "equivalence is not claimed"
)
UNRESOLVED = "one evaluation image moves the metric by more than the margin: no equivalence"
# Runs chosen on the split that would test them are flattered there, unequally by strategy,
# and a bias the same at every seed outgrows an interval that more seeds narrow (16 % of null
# families at 10 seeds, bench/results_stats_preset.md): no verdict is drawn from them.
CHOSEN_ON_EVALUATION = "{chosen} chosen on the evaluation split that would test it"


@dataclass(frozen=True)
class Estimate:
    """(strategy − reference) per comparison: mean, standard error, degrees of freedom, and
    the parts of the variance that shrink with more seeds and that do not."""

    diff: np.ndarray
    se: np.ndarray
    df: np.ndarray
    seed_var: np.ndarray  # variance of one seed's difference (shrinks as 1/n)
    test_var: np.ndarray  # the evaluation split's shared sampling variance (does not shrink)
    seeds: np.ndarray  # seeds paired
    predictions: bool = False  # whether test_var was measured
    # test_var's degrees of freedom: the evaluation split's patients − 1 (inf: unknown, the
    # normal's quantile); one number is every comparison's
    test_df: np.ndarray | float = np.inf

    def __post_init__(self):
        shaped = np.broadcast_to(np.asarray(self.test_df, dtype=float), np.shape(self.diff))
        object.__setattr__(self, "test_df", shaped)

    def only(self, rows) -> Estimate:
        """The comparisons ``rows`` (a mask or indices) selects, each as it is."""
        per_comparison = (f.name for f in dataclasses.fields(self) if f.name != "predictions")
        return dataclasses.replace(
            self, **{name: getattr(self, name)[rows] for name in per_comparison}
        )

    def at_seeds(self, i: int, seeds: np.ndarray) -> Estimate:
        """Comparison ``i`` as it would stand at each number of ``seeds``, its mean difference
        and both spreads held."""
        held = self.only(np.full(len(seeds), i))
        se = np.sqrt(held.seed_var / seeds + held.test_var)
        return dataclasses.replace(held, seeds=seeds, df=seeds - 1, se=se)


def complete_pairs(values: np.ndarray) -> list[np.ndarray]:
    """Per strategy ≠ the reference (row 0): the seed columns where both have a value. The
    one place a missing run drops its pair, for the report and the simulation alike."""
    reference = ~np.isnan(values[0])
    return [np.flatnonzero(reference & ~np.isnan(row)) for row in values[1:]]


def seed_summary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean difference, variance of one seed's difference, pairs) per comparison, over its
    complete pairs."""
    diff, seed_var, seeds = [], [], []
    for row, columns in zip(values[1:], complete_pairs(values), strict=True):
        d = row[columns] - values[0, columns]
        diff.append(d.mean() if len(d) else np.nan)
        seed_var.append(np.var(d, ddof=1) if len(d) > 1 else np.nan)
        seeds.append(len(d))
    return np.array(diff), np.array(seed_var), np.array(seeds, dtype=float)


def shared_test_variance(differences: np.ndarray) -> float:
    """The evaluation split's sampling variance that does not average out over seeds, from
    each seed's difference on every patient resample (seeds × B).

    A seed's resampled difference is the split's common draw plus that run pair's own
    image-level noise: Var(D_s) = σ²_common + σ²_own, Var(mean over n seeds) = σ²_common +
    σ²_own / n. The seed spread already holds σ²_own (each seed was scored on one draw of
    images), so only σ²_common = (n Var(D̄) − mean Var(D_s)) / (n − 1), the seeds' mean
    covariance, is added. With one seed the two cannot be told apart: all of it."""
    differences = differences[:, ~np.isnan(differences).any(axis=0)]
    n = len(differences)
    if differences.shape[1] < 2:
        return np.nan
    if n == 1:
        return float(np.var(differences[0], ddof=1))
    mean_var = np.var(differences.mean(axis=0), ddof=1)
    each_var = np.var(differences, axis=1, ddof=1).mean()
    return float(max(0.0, (n * mean_var - each_var) / (n - 1)))


def paired(
    values: np.ndarray, boot: np.ndarray | None = None, groups: int | None = None
) -> Estimate:
    """Each comparison on its complete pairs (``seed_summary``), plus the shared
    evaluation-split variance where ``boot`` (K × seeds × B) is given, resampling ``groups``
    patients (``estimate_from_parts``)."""
    diff, seed_var, seeds = seed_summary(values)
    test_var = np.full(len(diff), np.nan)
    if boot is not None:
        for i, columns in enumerate(complete_pairs(values)):
            if len(columns):
                test_var[i] = shared_test_variance(boot[i + 1, columns] - boot[0, columns])
    return estimate_from_parts(diff, seed_var, seeds, test_var, groups)


def estimate_from_parts(diff, seed_var, seeds, test_var, groups=None) -> Estimate:
    """An estimate from its summaries: mean paired difference, the variance of one paired
    difference over seeds, the number of pairs, the shared evaluation-split variance (NaN
    where there are no predictions) and the patients it was resampled from (None or NaN:
    unknown). Its standard error holds both parts; each keeps its own degrees of freedom, the
    seeds' n − 1 and the patients' − 1 (the module's docstring says why)."""
    diff, seed_var, seeds, test_var, groups = (
        np.broadcast_to(np.asarray(np.nan if x is None else x, dtype=float), np.shape(diff))
        for x in (diff, seed_var, seeds, test_var, groups)
    )
    predictions = bool(np.any(~np.isnan(test_var)))
    test_var = np.nan_to_num(test_var)
    se = np.sqrt(seed_var / seeds + test_var)
    test_df = np.where(groups > 1, groups - 1, np.inf)
    return Estimate(diff, se, seeds - 1, seed_var, test_var, seeds, predictions, test_df)


def half_width(estimate: Estimate, tail) -> np.ndarray:
    """Half-width of the interval that leaves ``tail`` (per side) outside: each part of the
    variance with its own quantile — the seeds' at t(n − 1), the split's shared part at
    t(patients − 1) (docs/protocol.md, "Statistics")."""
    with np.errstate(invalid="ignore"):
        seed_quantile = stats.t.isf(tail, estimate.df)
    return np.sqrt(
        seed_quantile**2 * estimate.seed_var / estimate.seeds
        + stats.t.isf(tail, estimate.test_df) ** 2 * estimate.test_var
    )


def p_values(estimate: Estimate) -> np.ndarray:
    """Two-sided p per comparison — the smallest level at which ``half_width`` excludes 0 —
    NaN where untestable (``untestable``). With one part nil it is the other part's own t
    test's p; with both, the level is found by bisection (its half-width falls as it grows)."""
    distance = np.abs(estimate.diff)
    seed_part = estimate.seed_var / estimate.seeds
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(
            estimate.test_var > 0,
            2 * stats.t.sf(distance / np.sqrt(estimate.test_var), estimate.test_df),
            2 * stats.t.sf(distance / np.sqrt(seed_part), estimate.df),
        )
    both = (estimate.test_var > 0) & (seed_part > 0) & (distance > 0)
    if both.any():
        low, high = np.full(both.sum(), np.log(P_FLOOR)), np.zeros(both.sum())
        part = estimate.only(both)
        for _ in range(BISECTIONS):
            middle = (low + high) / 2
            wider = half_width(part, np.exp(middle) / 2) > distance[both]
            low, high = np.where(wider, middle, low), np.where(wider, high, middle)
        p[both] = np.exp(high)
    return np.where([r is not None for r in untestable(estimate)], np.nan, p)


def untestable(estimate: Estimate) -> list[str | None]:
    """Why each comparison cannot be tested, or None."""
    reasons = []
    for seeds, own_se in zip(estimate.seeds, estimate.se, strict=True):
        if seeds < 2:
            reasons.append(FEWER_THAN_TWO)
        elif not own_se > FLOAT_NOISE:
            # The pair's differences hold no spread at all (identical runs, or both at the
            # ceiling): any p or interval would decide on a spread they lack.
            reasons.append(ZERO_WIDTH if estimate.predictions else ZERO_SPREAD)
        else:
            reasons.append(None)
    return reasons


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
    return half_width(estimate, alpha / max(m, 1))


@dataclass(frozen=True)
class Decision:
    p: np.ndarray
    p_holm: np.ndarray
    low: np.ndarray  # the 95 % interval of the difference
    high: np.ndarray
    equivalence_low: np.ndarray  # the (1 − 2α/m) interval equivalence is judged on
    equivalence_high: np.ndarray
    verdict: list[str]
    seeds_to_decide: list[int | None]  # inconclusive only; None: no number of seeds would
    reasons: list[str]  # why a comparison is not tested, or cannot be equivalent; "" if none


def decide(
    estimate: Estimate,
    margin: float,
    alpha: float = ALPHA,
    family: int | None = None,
    resolution: np.ndarray | float | None = None,
    advise_seeds: bool = True,
) -> Decision:
    """The verdicts of one family. ``family``: the size of the larger family these comparisons
    belong to (``holm``). ``resolution``: points of the metric one evaluation image can move
    (``medft.report.stats.one_image_points``); above ``margin``, or unknown (no
    predictions), no comparison is equivalent; neither is any at a margin of 0.
    ``advise_seeds``: whether inconclusive verdicts get ``seeds_to_decide`` (the simulation
    benches, which count verdicts only, skip it: it is most of their time)."""
    not_testable = untestable(estimate)
    p = p_values(estimate)
    p_holm = holm(p, family)
    m = max(int((~np.isnan(p)).sum()), family or 0)
    half95 = half_width(estimate, alpha / 2)
    equivalence_half = equivalence_half_width(estimate, m, alpha)
    resolution = np.broadcast_to(
        np.asarray(np.nan if resolution is None else resolution, dtype=float), p.shape
    )
    verdicts, seeds, reasons = [], [], []
    for i, ph in enumerate(p_holm):
        barrier = _equivalence_barrier(margin, resolution[i])
        if not_testable[i] is not None:
            verdicts.append(UNTESTED)
            reasons.append(not_testable[i])
        elif ph < alpha:
            verdicts.append(BETTER if estimate.diff[i] > 0 else WORSE)
            reasons.append("")
        elif barrier is None and abs(estimate.diff[i]) + equivalence_half[i] <= margin:
            verdicts.append(EQUIVALENT)
            reasons.append("")
        else:
            verdicts.append(INCONCLUSIVE)
            reasons.append(barrier or "")
        seeds.append(
            seeds_to_decide(estimate, i, m, margin, alpha, equivalence=barrier is None)
            if advise_seeds and verdicts[-1] == INCONCLUSIVE
            else None
        )
    untested = np.array([v == UNTESTED for v in verdicts])
    blank = np.where(untested, np.nan, 1.0)
    return Decision(
        p,
        p_holm,
        (estimate.diff - half95) * blank,
        (estimate.diff + half95) * blank,
        (estimate.diff - equivalence_half) * blank,
        (estimate.diff + equivalence_half) * blank,
        verdicts,
        seeds,
        reasons,
    )


def _equivalence_barrier(margin: float, resolution: float) -> str | None:
    """Why no equivalence can be shown, whatever the interval; None where it can."""
    if not margin > 0:
        return NO_MARGIN
    if np.isnan(resolution):
        return NO_RESOLUTION
    if resolution > margin:
        return UNRESOLVED
    return None


def detectable_difference(
    seeds: int, comparisons: int, power: float = 0.8, alpha: float = ALPHA
) -> float:
    """The smallest true difference, in units of the seed spread of one paired difference (its
    standard deviation over seeds), that a comparison is called *better* or *worse* with
    ``power`` when Holm tests it first among ``comparisons`` (α/m two-sided, the strictest
    step) on its n − 1 degrees of freedom. The evaluation split's own sampling only adds to
    the difference needed. For planning seeds before a grid runs (``medft plan``)."""
    from scipy import optimize

    df = seeds - 1
    critical = stats.t.ppf(1 - alpha / (2 * comparisons), df)
    # The t statistic is (Z + shift) / sqrt(V / df), V ~ χ²(df): its two tails, averaged over
    # V's quantiles at midpoints (scipy's noncentral t loses precision in the far tail at 1-2
    # df). The quantiles are drawn once; the solver only moves the shift.
    quantiles = (np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS
    bars = critical * np.sqrt(stats.chi2.ppf(quantiles, df) / df)

    def rejected(shift: float) -> float:
        return float(np.mean(stats.norm.sf(bars - shift) + stats.norm.cdf(-bars - shift)))

    return float(optimize.brentq(lambda shift: rejected(shift) - power, 0.0, 1e4) / np.sqrt(seeds))


def seeds_to_decide(
    estimate: Estimate,
    i: int,
    m: int,
    margin: float,
    alpha: float = ALPHA,
    equivalence: bool = True,
) -> int | None:
    """The fewest seeds at which comparison ``i`` would be decided — significant at Holm's
    strictest step, or equivalent (where ``equivalence`` can be shown at all) — if its mean
    difference and spreads held; None where even ``MAX_SEEDS`` would not (the evaluation
    split's own uncertainty is then too large)."""
    seed_var, n0, diff = estimate.seed_var[i], estimate.seeds[i], estimate.diff[i]
    if np.isnan(diff) or np.isnan(seed_var) or n0 < 2:
        return None
    n = np.arange(int(n0) + 1, MAX_SEEDS + 1)
    grown = estimate.at_seeds(i, n)
    decided = abs(diff) > half_width(grown, alpha / (2 * m))
    if equivalence:
        decided |= abs(diff) + half_width(grown, alpha / m) <= margin
    return int(n[decided][0]) if decided.any() else None
