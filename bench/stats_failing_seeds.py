"""Verdicts where a strategy fails on rare seeds: the family-wise error of the product's test.

Run: ``python bench/stats_failing_seeds.py [--families 2000] [--jobs 2]``; writes
``bench/results_stats_failing.md``. docs/protocol.md ("Statistics") quotes it.

Fine-tuning fails on some seeds (a run that collapses early and recovers only partly), so a
strategy's seed values can be a mixture: most runs near its typical score, a few far below.
``bench/stats_power.py`` draws every run's skill from a normal; here a run fails with
probability q and then scores F points lower. One family is FT and 7 strategies on per-seed
rows (the report's path without predictions, where nothing of the evaluation split widens the
interval: the path nearest 5 % in ``bench/results_stats_worst.md``), each run's score its
strategy's typical value plus normal seed noise of 1 point, independent between runs.
Designs, each with no difference in mean anywhere (the test's null):

* *FT fails*: FT and six strategies fail alike; one strategy never fails and its typical
  score sits q·F below FT's, so that their means are equal;
* *one fails*: only that strategy fails, its typical score q·F above FT's;
* *all fail alike*: every strategy, FT included, fails with the same q and F (each
  difference then symmetric about 0).

Besides these all-or-nothing failures, a *long tail*: each run of a failing strategy loses an
exponential amount with mean F points (probability 1: every run loses some, a few lose much —
skewness 2, the continuous version of the same shape).

A verdict of *better* / *worse* on any comparison is false (under the mean). Through the
functions ``medft report`` calls (``medft.report.verdicts.paired`` and ``decide``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from stats_power import HERE, command_line, processes, run_cells

from medft.report.verdicts import ALPHA, BETTER, WORSE, decide, paired

K = 8  # FT + 7 strategies
STEADY = 1  # the strategy that differs from the rest in how it fails
SEED_SPREAD = 1.0  # points
MARGIN = 1.0
DESIGNS = ("FT fails", "one fails", "all fail alike")
FAILURES = ((0.1, 10.0), (0.1, 20.0), (0.2, 10.0))  # (probability, points lost)
# Long tails (probability None), after the failures so that their families keep their seeds.
TAILS = ((None, 2.0), (None, 5.0))
SEEDS = (3, 5, 10, 20)


def failing(design: str, probability: float) -> np.ndarray:
    """Per strategy (row 0 FT), the chance that one of its runs fails (1: a long tail)."""
    chance = np.full(K, probability)
    if design == "FT fails":
        chance[STEADY] = 0.0
    elif design == "one fails":
        chance[:] = 0.0
        chance[STEADY] = probability
    return chance


def one_family(args) -> dict:
    seed, seeds, (design, probability, points), _effect, _boot = args
    rng = np.random.default_rng(seed)
    tail = probability is None
    chance = failing(design, 1.0 if tail else probability)
    # Typical scores set so that every strategy's mean equals FT's.
    typical = (chance - chance[0]) * points
    fails = rng.random((K, seeds)) < chance[:, None]
    lost = rng.exponential(points, (K, seeds)) if tail else points
    values = 80.0 + typical[:, None] + rng.normal(0, SEED_SPREAD, (K, seeds)) - fails * lost
    decision = decide(paired(values), MARGIN, advise_seeds=False)
    verdicts = decision.verdict
    return {
        "design": design,
        "failure": f"a long tail: each run loses Exp(mean {points:g}) points"
        if tail
        else f"{probability:.0%} of runs lose {points:g} points",
        "seeds": seeds,
        "false_any": any(v in (BETTER, WORSE) for v in verdicts),
        "false_steady": verdicts[STEADY - 1] in (BETTER, WORSE),
        # As the only comparison (a user comparing one strategy with FT): its own p < α.
        "false_alone": bool(decision.p[STEADY - 1] < ALPHA),
        # Every run of a long tail loses some: nothing to see as one failure.
        "failure_seen": np.nan if tail else bool(fails[0].any() or fails[STEADY].any()),
    }


def main() -> None:
    args = command_line(__doc__.splitlines()[0], HERE / "results_stats_failing.md", 2000)
    cells = [
        (seeds, (design, probability, points), 0.0)
        for failures in (FAILURES, TAILS)
        for design in DESIGNS
        for probability, points in failures
        for seeds in SEEDS
    ]
    rows, minutes = run_cells(one_family, cells, args, chunksize=200)
    frame = pd.DataFrame(rows)
    limit = ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / args.families)
    lines = [
        "# Verdicts where a strategy fails on rare seeds",
        "",
        f"`python bench/stats_failing_seeds.py --families {args.families}` ({minutes:.1f} min "
        f"on {processes(args.jobs)}). {args.families} null families per cell (FT and 7 "
        "strategies, per-seed rows, equal means everywhere); the model and the designs: the "
        "script's docstring. False: the share of families with any *better* or *worse*, and "
        "of those of the strategy that fails differently from FT (the steady one where FT "
        "fails, the failing one where only it fails). Monte-Carlo standard error near 5 %: "
        f"±{100 * np.sqrt(ALPHA * (1 - ALPHA) / args.families):.1f} pp; in bold above "
        f"{100 * limit:.1f} %. Alone: were that comparison the only one (a user comparing one "
        "strategy with FT), its own p below 0.05. Seen: the share of families where FT's or "
        "that strategy's seeds show a failure.",
        "",
        "| design | failure | seeds | false, family-wise | false, that strategy | alone | seen |",
        "|---|---|---|---|---|---|---|",
    ]
    for (design, failure, seeds), cell in frame.groupby(["design", "failure", "seeds"], sort=False):
        rates = [cell[c].mean() for c in ("false_any", "false_steady", "false_alone")]
        shown = [f"**{r:.1%}**" if r > limit else f"{r:.1%}" for r in rates]
        seen = cell["failure_seen"]
        seen_text = "—" if seen.isna().all() else f"{seen.mean():.0%}"
        lines.append(f"| {design} | {failure} | {seeds} | {' | '.join(shown)} | {seen_text} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
