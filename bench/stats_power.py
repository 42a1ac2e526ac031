"""Family-wise false positives and power of the verdict rule, on simulated grids (issues 19, 32).

Run: ``python bench/stats_power.py [--families 600] [--boot 400] [--jobs 2]``; writes
``bench/results_stats.md``. docs/protocol.md ("Statistics") states the choice it supports.

One family is one (dataset, model): FT and 7 other strategies, n seeds each, all evaluated
on one test set of P patients × m images, accuracy in percent. Image i of patient p is right
for run r of strategy j when

    b_p + c_i + γ_jp + u_r + η_ir > 0,

with b_p the patient's difficulty, c_i the image's, γ_jp a strategy × patient interaction
(strategy j is better on some patients, worse on others — on a small test set this does not
average out), u_r = μ + δ_j + σ_j·ε_r the run's skill (training noise, its spread σ_j
differing by strategy), η_ir the run's own errors. A share ρ_j of ε_r and η_ir is FT's of the
same seed (seed pairing correlates runs that train alike). δ_j is set so that strategy j's
population accuracy is FT's (85 %) plus the true difference in pp. The seed spread is about
1 pp of accuracy, as the paper's (median SE of the main metric over its Tables 3–10: 0.3–0.6
pp with 3 seeds).

Designs (``SPREADS`` × predictions × a missing seed), each at 3, 5 and 10 seeds:

* spreads *alike*: σ_j and ρ_j as the strategies plausibly differ (LP's small and unshared,
  gradual unfreezing's and Auto-RGN's larger, L1-/L2-SP almost FT's run);
* *one noisy*: six strategies move with FT (ρ = 0.95, σ = FT's), one (Auto-RGN's kind)
  independent with three times FT's spread — the design that broke the former pooled rule;
* *two noisy*: the same with two such strategies (L2-SP's and Auto-RGN's places) — the worst
  of the designs probed beyond these: the pool then understates both, and neither is far
  enough above it to be tested on its own spread every time;
* *graded*: every strategy its own spread (0.3–4 × FT's) and its own share with FT, four of
  them independent of it;
* *FT noisy 2×, 3×*: the reference itself two or three times noisier than five strategies
  that do not move with it, the two others moving with FT — every comparison with the five
  then carries FT's seed noise, and a pool's (k − 1)(n − 1) degrees of freedom overstate what
  three of FT's seeds tell: the design where the pooled floor failed
  (``bench/stats_worst_cells.py`` simulates the cells nearest 5 % again with more families);
* *with predictions*: the report's path with saved predictions, 150 or 5,000 images: the
  patient bootstrap (per run, the same resamples for all) enters the test;
* *per-seed rows*: the report's path without predictions (a table of per-seed results): only
  the seeds' values. Such a verdict is about the evaluation split at hand — its patients'
  sampling cannot be counted — so its null is "no difference on this split" (γ = 0);
* *a missing seed*: one seed's run of two strategies (one null, the one that differs) lost.

Rules: ``paired`` is the product's (``medft.report.verdicts.paired`` + ``decide``, the functions
``medft report`` calls: each pair's own seed spread on its n − 1 degrees of freedom and the
split's shared part on the patients' − 1, each at its own t quantile); ``paired, one t`` the
product's rule before it (the same two parts summed, the whole on t(n − 1): valid, but it reads
the split's measured part as if known from the seeds' few degrees of freedom); ``pooled
floor`` the rule before that (the larger of
the pair's own spread and the family's pooled one, with the degrees of freedom of the one used,
combined with the split's patients by Welch–Satterthwaite), kept to measure what changed;
``former`` the rule before issue 32 (one seed spread pooled over the family plus the bootstrap
variance of the seed mean — evaluation-split noise counted twice — with equivalence on each
pair's own spread). Candidates measured and rejected, no longer simulated (their figures are
bench/results_stats.md and bench/results_stats_worst.md as of commit 4edc1c9): ``own spread
only`` (each pair's own spread, Welch–Satterthwaite with the split: up to 23.8 %),
``moderated`` (limma's empirical Bayes towards the family's spread: up to 17.5 %),
``sphericity-corrected pool`` (the pooled floor's degrees of freedom corrected by Box's ε: 6.7 %
of 2,000 families with FT noisy), and, as of e77af7e, ``pool's df to 2×``.

Reported per design: under the null (δ = 0 everywhere but one strategy exactly at the margin)
the family-wise rate of any *better*/*worse*; with one strategy δ pp better, the rate at which
it is found *better* (power); the rate of *equivalent* (margin 1 pp) for the δ = 0 strategies
and for the strategy at the margin (false equivalence).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from medft.report.verdicts import (
    ALPHA,
    BETTER,
    EQUIVALENT,
    WORSE,
    Estimate,
    decide,
    paired,
    seed_summary,
    untestable,
)

HERE = Path(__file__).parent
K = 8  # FT + 7 strategies, the paper's
BASE_ACCURACY = 0.85
SIGMA = {"patient": 1.0, "image": 0.5, "interaction": 0.25, "run_image": 0.7}
# Per strategy, in the paper's order (FT, LP, G-LF, G-FL, LP-FT, L1-SP, L2-SP, Auto-RGN): the
# spread of its training noise (×SEED_SCALE), and how much of a seed's noise and errors it
# shares with FT's run of the same seed.
SPREADS = {
    "alike": (
        np.array([1.0, 0.3, 1.5, 1.5, 1.0, 1.0, 1.0, 2.0]),
        np.array([1.0, 0.0, 0.5, 0.5, 0.3, 0.95, 0.95, 0.5]),
    ),
    "one noisy": (
        np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0]),
        np.array([1.0, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.0]),
    ),
    "two noisy": (
        np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0]),
        np.array([1.0, 0.95, 0.95, 0.95, 0.95, 0.95, 0.0, 0.0]),
    ),
    "graded": (
        np.array([1.0, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0, 4.0]),
        np.array([1.0, 0.0, 0.5, 0.95, 0.5, 0.0, 0.0, 0.0]),
    ),
    # The reference noisier than five strategies that do not move with it (LP's kind: frozen
    # features, only the head's start varies); L1-/L2-SP move with FT.
    "FT noisy 2×": (
        np.array([2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 1.0]),
        np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.95, 0.95, 0.0]),
    ),
    "FT noisy 3×": (
        np.array([3.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 1.0]),
        np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.95, 0.95, 0.0]),
    ),
}
MARGIN = 1.0
SEEDS = (3, 5, 10)
# Evaluation sets: 150 and 5,000 images here; 100 and 1,000 in bench/robustness_power.py; 39
# (13 patients, the demo's synth-nodule) in bench/stats_worst_cells.py.
IMAGES_PER_PATIENT = {39: 3, 100: 2, 150: 3, 1000: 4, 5000: 5}
# (spreads, images or None for per-seed rows, a missing seed)
DESIGNS = [
    *((s, i, False) for s in ("alike", "one noisy") for i in (150, 5000, None)),
    ("alike", 5000, True),
    ("alike", None, True),
    # After the first six so that their families keep their random seeds.
    *((s, i, False) for s in ("two noisy", "graded", "FT noisy 3×") for i in (5000, None)),
    ("FT noisy 3×", 150, False),
    *(("FT noisy 2×", i, False) for i in (5000, None)),
]
EFFECTS = [0.0, 1.0, 2.0, 4.0]  # pp of the strategy that differs (index 4: "LP-FT")
TESTED = 4
AT_MARGIN = K - 2  # in the null families, one strategy exactly at the margin
MISSING = (2, TESTED)  # strategies whose seed 0 is lost in the missing-seed designs


def latent_scale() -> float:
    return float(np.sqrt(sum(v**2 for v in SIGMA.values())))


def shift_for(points: float) -> float:
    """The latent skill shift that moves population accuracy from 85 % by ``points`` pp."""
    tau = latent_scale()
    return tau * (stats.norm.ppf(BASE_ACCURACY + points / 100) - stats.norm.ppf(BASE_ACCURACY))


# Latent skill per seed so that FT's accuracy varies ~1 pp between seeds.
SEED_SCALE = shift_for(1.0)


def run_noise(rng, spreads: str, seeds: int, *shape, scale: float = 1.0) -> np.ndarray:
    """Training noise (K, seeds, *shape): a share ρ_j of strategy j's is FT's of the same seed."""
    _, shared = SPREADS[spreads]
    own = np.sqrt(1 - shared**2)
    per_strategy = (-1,) + (1,) * (1 + len(shape))
    common = rng.normal(0, scale, (seeds, *shape))
    return shared.reshape(per_strategy) * common + own.reshape(per_strategy) * rng.normal(
        0, scale, (K, seeds, *shape)
    )


def clean_latent(rng, seeds: int, images: int, deltas, spreads: str, interaction: bool):
    """The latent b_p + c_i + γ_jp + u_r + η_ir (K, seeds, images) and the patient of each
    image; an image is right where it is above 0."""
    spread, _ = SPREADS[spreads]
    m = IMAGES_PER_PATIENT[images]
    patients = images // m
    mu = latent_scale() * stats.norm.ppf(BASE_ACCURACY)
    patient_of = np.repeat(np.arange(patients), m)
    b = rng.normal(0, SIGMA["patient"], patients)[patient_of]
    c = rng.normal(0, SIGMA["image"], images)
    gamma = rng.normal(0, SIGMA["interaction"] * interaction, (K, patients))[:, patient_of]
    shifts = np.array([shift_for(d) for d in deltas])
    skill = mu + shifts[:, None] + SEED_SCALE * spread[:, None] * run_noise(rng, spreads, seeds)
    eta = run_noise(rng, spreads, seeds, images, scale=SIGMA["run_image"])
    return b + c + gamma[:, None, :] + skill[:, :, None] + eta, patient_of


def simulate(rng, seeds: int, images: int, deltas: np.ndarray, spreads: str, interaction: bool):
    """Correctness (K, seeds, images) and the patient of each image."""
    latent, patient_of = clean_latent(rng, seeds, images, deltas, spreads, interaction)
    return (latent > 0).astype(np.float32), patient_of


def bootstrap_weights(rng, patient_of: np.ndarray, n_boot: int) -> np.ndarray:
    patients = patient_of.max() + 1
    draws = rng.integers(0, patients, (n_boot, patients)) + patients * np.arange(n_boot)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_boot * patients).reshape(n_boot, patients)
    return counts[:, patient_of].astype(np.float32)  # (B, images)


def two_way_residual(values: np.ndarray) -> np.ndarray:
    """The strategies × seeds layout's residual (seeds as blocks) over the seeds every
    strategy has."""
    full = values[:, ~np.isnan(values).any(axis=0)]
    return full - full.mean(axis=1, keepdims=True) - full.mean(axis=0) + full.mean()


def pooled_spread(values: np.ndarray) -> tuple[float, float]:
    """The variance of a paired difference pooled over the family (2σ² from the two-way
    residual) and its (k − 1)(n − 1) degrees of freedom: right only where every strategy
    spreads alike."""
    residual = two_way_residual(values)
    k, n = residual.shape
    df = (k - 1) * (n - 1)
    if df <= 0:
        return np.nan, 0.0
    return 2 * float((residual**2).sum()) / df, float(df)


def welch_df(seed_part, seed_df, test_part, test_df) -> np.ndarray:
    """Welch–Satterthwaite degrees of freedom of ``seed_part + test_part``; the seeds' alone
    where the split's part is unmeasured."""
    with np.errstate(divide="ignore", invalid="ignore"):
        welch = (seed_part + test_part) ** 2 / (seed_part**2 / seed_df + test_part**2 / test_df)
    measured = (test_part > 0) & (test_df > 0) & np.isfinite(welch)
    return np.where(measured, welch, seed_df)


def as_whole(estimate: Estimate) -> Estimate:
    """``estimate`` read as the rules before the two-part test read it: the whole variance on
    one t quantile, at ``estimate.df`` (its seed part carries all of it)."""
    return dataclasses.replace(
        estimate,
        seed_var=estimate.se**2 * estimate.seeds,
        test_var=np.zeros_like(estimate.se),
        test_df=np.inf,
    )


def pooled_floor(values: np.ndarray, boot: np.ndarray | None, units: int | None) -> Estimate:
    """The product's rule before this one: the larger of the pair's own seed variance and the
    family's pooled one, with the degrees of freedom of the one used, plus the split's shared
    part, the two combined by Welch–Satterthwaite (the split's: patients − 1)."""
    own = paired(values, boot)
    pooled, pooled_df = pooled_spread(values)
    by_pool = pooled > own.seed_var
    used = np.where(by_pool, pooled, own.seed_var)
    seed_df = np.where(by_pool, pooled_df, own.seeds - 1)
    test_df = np.nan if units is None else units - 1
    df = welch_df(used / own.seeds, seed_df, own.test_var, test_df)
    se = np.sqrt(used / own.seeds + own.test_var)
    return as_whole(dataclasses.replace(own, se=se, df=df, seed_var=used))


def pooled_floor_verdicts(values, boot, units, resolution) -> list[str]:
    """Differences on ``pooled_floor``; equivalence, as that rule judged it, on each pair's
    own spread with the Welch–Satterthwaite degrees of freedom; a pair without spread of its
    own untested, as that rule left it."""
    own = paired(values, boot)
    degenerate = [reason is not None for reason in untestable(own)]
    test_df = np.nan if units is None else units - 1
    own = as_whole(
        dataclasses.replace(
            own, df=welch_df(own.seed_var / own.seeds, own.seeds - 1, own.test_var, test_df)
        )
    )
    floor = pooled_floor(values, boot, units)
    test = decide(floor, MARGIN, resolution=resolution, advise_seeds=False)
    equivalence = decide(own, MARGIN, resolution=resolution, advise_seeds=False)
    return [
        _pooled_floor_verdict(t, e, d)
        for t, e, d in zip(test.verdict, equivalence.verdict, degenerate, strict=True)
    ]


def _pooled_floor_verdict(tested: str, on_own_spread: str, degenerate: bool) -> str:
    if degenerate:
        return "none"
    if tested in (BETTER, WORSE):
        return tested
    return EQUIVALENT if on_own_spread == EQUIVALENT else "none"


def former(values: np.ndarray, boot: np.ndarray | None) -> Estimate:
    """The rule before issue 32, for comparison: one seed spread pooled over the family
    (the strategies × seeds residual, (k − 1)(n − 1) df) plus the bootstrap variance of the
    seed-mean difference."""
    diff, _, seeds = seed_summary(values)
    pooled, df = pooled_spread(values)
    k = len(values)
    test_var = np.zeros(k - 1)
    if boot is not None:
        mean = np.nanmean(boot, axis=1)
        test_var = np.var(mean[1:] - mean[0], axis=1, ddof=1)
    se = np.sqrt(pooled / seeds + test_var)
    return as_whole(
        Estimate(
            diff,
            se,
            np.full(k - 1, float(df)),
            np.full(k - 1, pooled),
            test_var,
            seeds,
            boot is not None,
        )
    )


def former_own(values: np.ndarray, boot: np.ndarray | None) -> Estimate:
    """The former equivalence test: each pair's own spread plus the seed mean's bootstrap
    variance, n − 1 df."""
    diff, seed_var, seeds = seed_summary(values)
    test_var = np.zeros(len(diff))
    if boot is not None:
        mean = np.nanmean(boot, axis=1)
        test_var = np.var(mean[1:] - mean[0], axis=1, ddof=1)
    se = np.sqrt(seed_var / seeds + test_var)
    return as_whole(Estimate(diff, se, seeds - 1, seed_var, test_var, seeds, boot is not None))


def former_verdicts(values, boot) -> list[str]:
    """Differences on the pooled spread, equivalence on each pair's own (no resolution guard:
    the former guard passed where it was unknown)."""
    test = decide(former(values, boot), MARGIN, resolution=0.0, advise_seeds=False)
    own = decide(former_own(values, boot), MARGIN, resolution=0.0, advise_seeds=False)
    return [
        t if t in (BETTER, WORSE) else EQUIVALENT if o == EQUIVALENT else "none"
        for t, o in zip(test.verdict, own.verdict, strict=True)
    ]


def one_family_offset(offset: int, args) -> list[dict]:
    """``one_family`` with its random seed moved by ``offset``: the benches that simulate
    stats_power.py's cells again draw families disjoint from its own."""
    seed, *rest = args
    return one_family((offset + seed, *rest))


def one_family(args) -> list[dict]:
    seed, seeds, design, effect, n_boot = args
    spreads, images, missing = design
    rng = np.random.default_rng(seed)
    deltas = np.zeros(K)
    deltas[TESTED] = effect
    margin_case = effect == 0.0
    if margin_case:
        deltas[AT_MARGIN] = MARGIN
    with_predictions = images is not None
    correct, patient_of = simulate(
        rng, seeds, images or 150, deltas, spreads, interaction=with_predictions
    )
    # float64: equal runs must give exactly equal differences, which the zero-spread guard
    # reads (float32 left ~1e-6 points of rounding, so identical pairs were "significant").
    values = correct.mean(axis=2, dtype=np.float64) * 100  # (K, seeds)
    boot, resolution, units = None, None, None
    if with_predictions:
        units = int(patient_of.max()) + 1
        weights = bootstrap_weights(rng, patient_of, n_boot)
        runs = correct.reshape(-1, images) @ weights.T / weights.sum(axis=1) * 100
        boot = runs.reshape(K, seeds, n_boot)
        resolution = 100 / images
    if missing:
        values[list(MISSING), 0] = np.nan
        if boot is not None:
            boot[list(MISSING), 0] = np.nan
    estimate = paired(values, boot, units)
    decisions = {
        "paired": decide(estimate, MARGIN, resolution=resolution, advise_seeds=False).verdict,
        "paired, one t": decide(
            as_whole(estimate), MARGIN, resolution=resolution, advise_seeds=False
        ).verdict,
        "pooled floor": pooled_floor_verdicts(values, boot, units, resolution),
        "former": former_verdicts(values, boot),
    }
    nulls = [j - 1 for j in range(1, K) if deltas[j] == 0]
    return [
        {
            "rule": rule,
            "spreads": spreads,
            "data": data_label(images),
            "missing": missing,
            "seeds": seeds,
            "effect": effect,
            "false_any": any(verdict[j] in (BETTER, WORSE) for j in nulls),
            "found": verdict[TESTED - 1] == BETTER,
            "equivalent_null": np.mean([verdict[j] == EQUIVALENT for j in nulls]),
            "equivalent_at_margin": verdict[AT_MARGIN - 1] == EQUIVALENT if margin_case else np.nan,
        }
        for rule, verdict in decisions.items()
    ]


PER_SEED_ROWS = "per-seed rows"


def data_label(images: int | None) -> str:
    """A design's data column: predictions on that many images, or per-seed rows (None)."""
    return PER_SEED_ROWS if images is None else f"predictions, {images:,} images"


def rate_table(rows: pd.DataFrame, value: str, index: dict[str, str]) -> str:
    """A markdown table of ``value``'s mean as a percentage, one row per combination of the
    ``index`` columns (column → header), one column per number of seeds."""
    pivot = rows.pivot_table(index=list(index), columns="seeds", values=value, sort=False)
    headers = [*index.values(), *(f"{s} seeds" for s in pivot.columns)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for keys, row in pivot.iterrows():
        cells = [_cell(key) for key in keys] + [f"{v * 100:.1f} %" for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rate_sections(rows: pd.DataFrame, index: dict[str, str], values: dict[str, str]) -> list[str]:
    """Markdown sections of a results file: under each title, ``rate_table`` of its value."""
    lines = []
    for title, value in values.items():
        lines += [f"### {title}", "", rate_table(rows, value, index), ""]
    return lines


def _cell(key) -> str:
    if isinstance(key, bool | np.bool_):
        return "yes" if key else ""
    if isinstance(key, int | np.integer):
        return f"{key:,}"
    return str(key)


def _pivot(rows: pd.DataFrame, value: str, rules: list[str]) -> str:
    columns = {"spreads": "spreads", "data": "data", "missing": "missing seed", "rule": "rule"}
    return rate_table(rows[rows["rule"].isin(rules)], value, columns)


def table(frame: pd.DataFrame) -> str:
    rules = list(dict.fromkeys(frame["rule"]))
    null = frame[frame["effect"] == 0.0]
    lines = [
        "### Family-wise false-positive rate under the null (δ = 0 but the margin strategy)",
        "",
        _pivot(null, "false_any", rules),
    ]
    for effect in EFFECTS[1:]:
        lines += [
            "",
            f"### Power: one strategy {effect:g} pp better (share of families: *better*)",
            "",
            _pivot(frame[frame["effect"] == effect], "found", rules),
        ]
    lines += [
        "",
        f"### Equivalence (margin ±{MARGIN:g} pp): true-zero comparisons called *equivalent*",
        "",
        _pivot(null, "equivalent_null", rules),
        "",
        f"### False equivalence: a strategy exactly {MARGIN:g} pp better called *equivalent*",
        "",
        _pivot(null, "equivalent_at_margin", rules),
    ]
    return "\n".join(lines)


def summary(frame: pd.DataFrame, families: int) -> str:
    """The headline: each rule's worst family-wise error over the designs, and mean power."""
    fwer = (
        frame[frame["effect"] == 0.0]
        .groupby(["rule", "spreads", "data", "missing", "seeds"])["false_any"]
        .mean()
    )
    worst = fwer.groupby("rule").max()
    where = fwer.groupby("rule").idxmax()
    # Monte-Carlo: the largest of the designs' rates is allowed 2 standard errors above 5 %.
    limit = ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / families)
    power = frame[frame["effect"] > 0].groupby("rule")["found"].mean()
    lines = [
        "| rule | worst family-wise error (design) | within 5 % | mean power |",
        "|---|---|---|---|",
    ]
    for rule in dict.fromkeys(frame["rule"]):
        design = ", ".join(str(x) for x in where[rule][1:])
        ok = "yes" if worst[rule] <= limit else "**no**"
        lines.append(
            f"| {rule} | {worst[rule] * 100:.1f} % ({design}) | {ok} | {power[rule] * 100:.1f} % |"
        )
    return "\n".join(lines) + (
        f"\n\n'Within 5 %': at most 5 % + 2 Monte-Carlo standard errors ({limit * 100:.1f} %) "
        "in every design."
    )


def command_line(description: str, out: Path, families: int) -> argparse.Namespace:
    """The simulation benches' options: families per cell, bootstrap resamples, processes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--families", type=int, default=families)
    parser.add_argument("--boot", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(out))
    return parser.parse_args()


def run_cells(family, cells, args: argparse.Namespace, chunksize: int) -> tuple[list, float]:
    """``args.families`` simulated families of every (seeds, design, effect) cell through
    ``family`` (called with (rng seed, seeds, design, effect, resamples)) in ``args.jobs``
    processes: its results in order, and the minutes they took."""
    tasks = [
        (c * 1_000_000 + f, seeds, design, effect, args.boot)
        for c, (seeds, design, effect) in enumerate(cells)
        for f in range(args.families)
    ]
    return map_with_progress(family, tasks, args.jobs, chunksize)


def null_families(family, designs, seeds, args, chunksize: int):
    """``args.families`` null families of every (design, seeds) cell through ``family``: a
    frame of the rows each returns, the minutes they took, and the largest rate that is
    within 5 % (5 % + 2 Monte-Carlo standard errors)."""
    cells = [(s, d, 0.0) for d in designs for s in seeds]
    families, minutes = run_cells(family, cells, args, chunksize)
    frame = pd.DataFrame([row for rows in families for row in rows])
    return frame, minutes, ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / args.families)


def processes(jobs: int) -> str:
    """The results files' "on N processes", singular at one."""
    return f"{jobs} process" + ("" if jobs == 1 else "es")


def map_with_progress(family, tasks: list, jobs: int, chunksize: int) -> tuple[list, float]:
    """``family`` over ``tasks`` in ``jobs`` processes, a progress line a minute: its results in
    order, and the minutes they took."""
    started = last_line = time.perf_counter()
    results = []
    with ProcessPoolExecutor(jobs) as pool:
        for result in pool.map(family, tasks, chunksize=chunksize):
            results.append(result)
            now = time.perf_counter()
            # These benches run for most of an hour: a line a minute says how far they are.
            if now - last_line >= 60 or len(results) == len(tasks):
                last_line = now
                print(progress_line(len(results), len(tasks), now - started), flush=True)
    return results, (time.perf_counter() - started) / 60


def progress_line(done: int, total: int, seconds: float) -> str:
    left = seconds / done * (total - done)
    return (
        f"{done:,}/{total:,} families ({done / total:.0%}), "
        f"{seconds / 60:.1f} min, ~{left / 60:.0f} min left"
    )


def main() -> None:
    args = command_line(__doc__.splitlines()[0], HERE / "results_stats.md", families=600)
    cells = [(s, d, e) for d in DESIGNS for s in SEEDS for e in EFFECTS]
    families, minutes = run_cells(one_family, cells, args, chunksize=50)
    frame = pd.DataFrame([row for family in families for row in family])
    text = [
        "# Verdict rules on simulated grids: family-wise error and power",
        "",
        f"`python bench/stats_power.py --families {args.families} --boot {args.boot}` "
        f"({minutes:.1f} min on {processes(args.jobs)}). {args.families:,} simulated families per "
        "cell of every table; one family = FT + 7 strategies on one test set, Holm over the 7. "
        "The model, its designs and the rules: the script's docstring. Monte-Carlo standard "
        f"error of a rate near 5 %: ±{np.sqrt(0.05 * 0.95 / args.families) * 100:.1f} pp.",
        "",
        summary(frame, args.families),
        "",
        table(frame),
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
