"""Family-wise false positives and power of the verdict rules, on simulated grids (issue 19).

Run: ``python bench/stats_power.py [--families 1000] [--boot 400] [--jobs 2]``; writes
``bench/results_stats.md``. docs/protocol.md ("Statistics") states the choice it supports.

One family is one (dataset, model): FT and 7 other strategies, n seeds each, all evaluated
on one test set of P patients × m images, accuracy in percent. Image i of patient p is right
for run r of strategy j when

    b_p + c_i + γ_jp + u_r + η_ir > 0,

with b_p the patient's difficulty, c_i the image's, γ_jp a strategy × patient interaction
(strategy j is better on some patients, worse on others — on a small test set this does not
average out), u_r = μ + δ_j + σ_j·ε_r the run's skill (training noise, its spread σ_j
differing by strategy: LP's small, gradual unfreezing's and Auto-RGN's larger), η_ir the run's
own errors. A share ρ_j of ε_r and η_ir is FT's of the same seed (``SHARED``: seed pairing
correlates runs that train alike), so pairs differ in how much they spread.
δ_j is set so that strategy j's population accuracy is FT's (85 %) plus the true
difference in pp. The seed spread is about 1 pp of accuracy, as the paper's (median SE of the
main metric over its Tables 3–10: 0.3–0.6 pp with 3 seeds).

Rules (``medft.report.verdicts`` is the product's code; the first and last are only here):

* ``today``: the former rule — seed-paired t-test, Holm, and the patient bootstrap's 95 %
  percentile interval excluding 0 on the same side;
* ``seed_t``: the seed-paired t-test alone, Holm;
* ``combined``: seed-paired spread + patient-bootstrap variance, n − 1 df, Holm;
* ``pooled``: as combined with one seed variance pooled over the family (strategies × seeds
  residual, (k − 1)(n − 1) df);
* ``pooled+own``: pooled for *better* / *worse*, each pair's own spread (``combined``) for
  *equivalent* (``decide(..., own=)``): the product's rule;
* ``hier_boot``: a hierarchical bootstrap (seed pairs and patients resampled together),
  two-sided percentile p, Holm.

Reported per (seeds, test size): under the global null (all δ = 0) the family-wise rate of
any *better*/*worse*; with one strategy δ pp better, the rate at which it is found *better*
(power) and the family-wise false-verdict rate among the 6 others; the rate of *equivalent*
verdicts (margin 1 pp) for the δ = 0 strategies (power to show equivalence) and for a
strategy exactly at the margin (false equivalence).
"""

from __future__ import annotations

import argparse
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
    RULES,
    WORSE,
    decide,
    holm,
    p_values,
)

HERE = Path(__file__).parent
K = 8  # FT + 7 strategies, the paper's
BASE_ACCURACY = 0.85
SIGMA = {"patient": 1.0, "image": 0.5, "interaction": 0.25, "run_image": 0.7}
# Per strategy, in the paper's order (FT, LP, G-LF, G-FL, LP-FT, L1-SP, L2-SP, Auto-RGN): the
# spread of its training noise (×SEED_SCALE), and how much of a seed's noise and errors it
# shares with FT's run of the same seed (same head initialisation and batch order: L1-/L2-SP
# with small penalties train almost as FT does; LP shares nothing).
SPREAD = np.array([1.0, 0.3, 1.5, 1.5, 1.0, 1.0, 1.0, 2.0])
SHARED = np.array([1.0, 0.0, 0.5, 0.5, 0.3, 0.95, 0.95, 0.5])
MARGIN = 1.0
DESIGNS = [(3, 150), (5, 150), (3, 5000), (5, 5000)]  # (seeds, test images)
EFFECTS = [0.0, 1.0, 2.0, 4.0]  # pp of the strategy that differs (index 4: "LP-FT")
TESTED = 4
IMAGES_PER_PATIENT = {150: 3, 5000: 5}


def latent_scale() -> float:
    return float(np.sqrt(sum(v**2 for v in SIGMA.values())))


def shift_for(points: float) -> float:
    """The latent skill shift that moves population accuracy from 85 % by ``points`` pp."""
    tau = latent_scale()
    return tau * (stats.norm.ppf(BASE_ACCURACY + points / 100) - stats.norm.ppf(BASE_ACCURACY))


# Latent skill per seed so that FT's accuracy varies ~1 pp between seeds.
SEED_SCALE = shift_for(1.0)


def simulate(rng, seeds: int, images: int, deltas: np.ndarray):
    """Correctness (K·seeds runs × images) and the patient of each image."""
    m = IMAGES_PER_PATIENT[images]
    patients = images // m
    tau = latent_scale()
    mu = tau * stats.norm.ppf(BASE_ACCURACY)
    patient_of = np.repeat(np.arange(patients), m)
    b = rng.normal(0, SIGMA["patient"], patients)[patient_of]
    c = rng.normal(0, SIGMA["image"], images)
    gamma = rng.normal(0, SIGMA["interaction"], (K, patients))[:, patient_of]
    shifts = np.array([shift_for(d) for d in deltas])
    own = np.sqrt(1 - SHARED**2)
    noise = SHARED[:, None] * rng.normal(size=seeds) + own[:, None] * rng.normal(size=(K, seeds))
    skill = mu + shifts[:, None] + SEED_SCALE * SPREAD[:, None] * noise
    common_eta = rng.normal(0, SIGMA["run_image"], (seeds, images))
    eta = SHARED[:, None, None] * common_eta + own[:, None, None] * rng.normal(
        0, SIGMA["run_image"], (K, seeds, images)
    )
    latent = b + c + gamma[:, None, :] + skill[:, :, None] + eta
    return (latent > 0).astype(np.float32), patient_of


def bootstrap_weights(rng, patient_of: np.ndarray, n_boot: int) -> np.ndarray:
    patients = patient_of.max() + 1
    draws = rng.integers(0, patients, (n_boot, patients)) + patients * np.arange(n_boot)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_boot * patients).reshape(n_boot, patients)
    return counts[:, patient_of].astype(np.float32)  # (B, images)


def today(values, boot, correct_boot_diff):
    """The former rule: seed-paired t-test, Holm, and the bootstrap percentile interval."""
    p_holm = holm(p_values(RULES["seed_t"](values)))
    low, high = np.percentile(correct_boot_diff, [2.5, 97.5], axis=1)
    return [
        BETTER if ph < ALPHA and lo > 0 else WORSE if ph < ALPHA and hi < 0 else "none"
        for ph, lo, hi in zip(p_holm, low, high, strict=True)
    ]


def hier_boot(rng, per_run_boot: np.ndarray, n_boot: int):
    """Seed pairs and patients resampled together: per_run_boot is (K, seeds, B)."""
    _, seeds, _ = per_run_boot.shape
    draws = rng.integers(0, seeds, (n_boot, seeds))
    column = np.arange(n_boot)[:, None]
    # Resample b: seeds draws[b] of every strategy (pairs kept), patients resample b.
    resampled = per_run_boot[:, draws, column].mean(axis=2)  # (K, B)
    diff = resampled[1:] - resampled[0]
    p = 2 * np.minimum((diff <= 0).mean(axis=1), (diff >= 0).mean(axis=1))
    p_holm = holm(np.minimum(p, 1.0))
    observed = np.median(diff, axis=1)
    return [
        (BETTER if d > 0 else WORSE) if ph < ALPHA else "none"
        for ph, d in zip(p_holm, observed, strict=True)
    ]


def one_family(args) -> list[dict]:
    seed, seeds, images, effect, n_boot = args
    rng = np.random.default_rng(seed)
    deltas = np.zeros(K)
    deltas[TESTED] = effect
    margin_case = effect == 0.0  # the null families also carry a strategy at the margin
    if margin_case:
        deltas[K - 2] = MARGIN
    correct, patient_of = simulate(rng, seeds, images, deltas)
    values = correct.mean(axis=2) * 100  # (K, seeds)
    weights = bootstrap_weights(rng, patient_of, n_boot)
    runs = correct.reshape(-1, images) @ weights.T / weights.sum(axis=1) * 100
    per_run_boot = runs.reshape(K, seeds, n_boot)
    boot = per_run_boot.mean(axis=1)  # (K, B): seed-mean on each resample
    rows = []
    decisions = {"today": today(values, boot, boot[1:] - boot[0])}
    for name in ("seed_t", "combined", "pooled"):
        decisions[name] = decide(RULES[name](values, boot), MARGIN).verdict
    # The product's rule: differences on the pooled spread, equivalence on each pair's own.
    own = RULES["combined"](values, boot)
    decisions["pooled+own"] = decide(RULES["pooled"](values, boot), MARGIN, own=own).verdict
    decisions["hier_boot"] = hier_boot(rng, per_run_boot, n_boot)
    nulls = [j - 1 for j in range(1, K) if deltas[j] == 0]
    for rule, verdict in decisions.items():
        rows.append(
            {
                "rule": rule,
                "seeds": seeds,
                "images": images,
                "effect": effect,
                "false_any": any(verdict[j] in (BETTER, WORSE) for j in nulls),
                "found": verdict[TESTED - 1] == BETTER,
                "equivalent_null": np.mean([verdict[j] == EQUIVALENT for j in nulls]),
                "equivalent_at_margin": verdict[K - 3] == EQUIVALENT if margin_case else np.nan,
            }
        )
    return rows


def _section(title: str, rows: pd.DataFrame, value: str) -> list[str]:
    """A titled table of one rate (percent), rules × designs."""
    pivot = rows.pivot_table(index="rule", columns=["seeds", "images"], values=value)
    return ["", f"### {title}", "", _markdown(pivot * 100, "{:.1f} %")]


def table(frame: pd.DataFrame) -> str:
    null = frame[frame["effect"] == 0.0]
    lines = _section(
        "Family-wise false-positive rate under the null (δ = 0 but the margin strategy)",
        null,
        "false_any",
    )[1:]
    for effect in EFFECTS[1:]:
        lines += _section(
            f"Power: one strategy {effect:g} pp better (share of families: *better*)",
            frame[frame["effect"] == effect],
            "found",
        )
    eq = null[null["rule"].isin(["seed_t", "combined", "pooled", "pooled+own"])]
    lines += _section(
        f"Equivalence (margin ±{MARGIN:g} pp): true-zero comparisons called *equivalent*",
        eq,
        "equivalent_null",
    )
    lines += _section(
        f"False equivalence: a strategy exactly {MARGIN:g} pp better called *equivalent*",
        eq,
        "equivalent_at_margin",
    )
    return "\n".join(lines)


def choose(frame: pd.DataFrame) -> tuple[str, str]:
    """The rule with the most power (mean over effects and designs) among those whose
    family-wise error stays within 5 % in every design; and why."""
    fwer = frame[frame["effect"] == 0.0].groupby(["rule", "seeds", "images"])["false_any"].mean()
    worst = fwer.groupby("rule").max()
    valid = worst[worst <= ALPHA].index
    power = frame[frame["effect"] > 0].groupby("rule")["found"].mean()
    best = power[valid].idxmax()
    text = (
        f"**Chosen: `{best}`** — the most power (mean over the effects and designs below: "
        f"{power[best] * 100:.1f} %) among the rules whose family-wise error stays within 5 % in "
        f"every design (worst: {worst[best] * 100:.1f} %). Rules over 5 % somewhere: "
        + ", ".join(f"`{r}` ({worst[r] * 100:.1f} %)" for r in worst.index if r not in valid)
        + ". Mean power of the others within 5 %: "
        + ", ".join(f"`{r}` {power[r] * 100:.1f} %" for r in valid if r != best)
        + ". `pooled` and `pooled+own` differ only in equivalence; the product runs "
        "`pooled+own` (medft.report.stats.verdicts)."
    )
    return best, text


def _markdown(pivot: pd.DataFrame, fmt: str) -> str:
    header = "| rule | " + " | ".join(f"{s} seeds, {i:,} images" for s, i in pivot.columns) + " |"
    rule = "|---|" + "---|" * len(pivot.columns)
    rows = [
        f"| {name} | " + " | ".join(fmt.format(v) for v in row) + " |"
        for name, row in pivot.iterrows()
    ]
    return "\n".join([header, rule, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--boot", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results_stats.md"))
    args = parser.parse_args()
    designs = [(s, i, e) for s, i in DESIGNS for e in EFFECTS]
    tasks = [
        (d * 1_000_000 + f, *design, args.boot)
        for d, design in enumerate(designs)
        for f in range(args.families)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = [row for family in pool.map(one_family, tasks, chunksize=50) for row in family]
    frame = pd.DataFrame(rows)
    minutes = (time.perf_counter() - started) / 60
    _, choice = choose(frame)
    text = [
        "# Verdict rules on simulated grids: family-wise error and power",
        "",
        f"`python bench/stats_power.py --families {args.families} --boot {args.boot}` "
        f"({minutes:.1f} min on {args.jobs} processes). {args.families:,} simulated families per "
        "cell of every table; one family = FT + 7 strategies on one test set, Holm over the 7. "
        "The model and its parameters: the script's docstring. Monte-Carlo standard error of a "
        "rate near 5 %: ±0.7 pp.",
        "",
        choice,
        "",
        table(frame),
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
