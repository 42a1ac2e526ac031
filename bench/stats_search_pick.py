"""False verdicts of the budgeted search's recommendation, chosen on validation and tested on the
evaluation split (``medft.search``; docs/search.md).

Run: ``python bench/stats_search_pick.py [--families 2000] [--jobs 2]``; writes
``bench/results_stats_search.md``.

The recommendation is the best of about 24 arms (strategy, lr) by mean validation score — a
winner picked from many — and is then tested against FT's chosen arm and the runner-up on the
evaluation split, from the same runs. A run lucky in training is lucky on both splits, so the
pick's test scores carry some of the luck that picked it (the winner's curse); Holm counts the
grid's 7 comparisons with FT (``recommend.compare``'s ``family``). This bench measures what
that leaves.

One family is one (dataset, model): the registry's 8 strategies × 3 lrs × n seeds, 12 epochs.
Run r of arm (s, l) at seed k scores, in points,

    validation: 80 + q_sl + σ·(√ρ·z_k + √(1 − ρ)·ε_r) + ν_r,    evaluation: the same + ν'_r,

q_sl the arm's true quality, z_k the seed's effect on every arm (seed pairing), ε_r the run's
own luck (σ 1 point, ρ ½), ν, ν' each split's own noise for the run (0.5 point). Landscapes:
*flat*, every arm alike (every comparison's truth is no difference); *lrs matter*, each
strategy's three lrs a shuffle of 0, −1, −3 points (every strategy's best lr as good as FT's;
the runner-up can be truly worse). Seed 0's epoch log rises to its validation score; gradual
unfreezing may stop from epoch 6 (ResNet-50's blocks), as the search's pools need.

The search runs as ``medft.search.replay.search`` re-enacts it (the defaults: η 5, first rung 1
epoch, 3 rungs); the comparisons through ``medft.report.stats`` as the recommendation makes them
from per-seed values (no predictions: the split's own sampling is not resampled, so its null is
"no difference on this split", ν' included). A *better* or *worse* whose sign the true
difference q_pick − q_other does not have (or that is 0) is false.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from stats_bayesian import options, simulate
from stats_power import processes

from medft.report import stats
from medft.report.verdicts import ALPHA, BETTER, WORSE
from medft.search import replay
from medft.search.rungs import REFERENCE, SearchSettings
from medft.strategies import STRATEGIES

HERE = Path(__file__).parent
LRS = ["1e-05", "0.0001", "0.001"]
EPOCHS = 12
SETTLED_FROM = {"G-LF": 6, "G-FL": 6}  # ResNet-50's 6 blocks: the whole model trains then
SPREAD, SEED_SHARE, SPLIT_NOISE = 1.0, 0.5, 0.5
LANDSCAPES = {"flat": (0.0, 0.0, 0.0), "lrs matter": (0.0, -1.0, -3.0)}
CELLS = [(landscape, seeds) for landscape in LANDSCAPES for seeds in (3, 5)]


def grid(rng: np.random.Generator, landscape: str, seeds: int):
    """A simulated grid as the replay reads it, and each arm's true quality."""
    quality, runs, logs = {}, [], []
    seed_effect = rng.normal(0.0, 1.0, seeds)
    for strategy in STRATEGIES.names():
        for lr, q in zip(LRS, rng.permutation(LANDSCAPES[landscape]), strict=True):
            quality[(strategy, lr)] = float(q)
            luck = SPREAD * (
                np.sqrt(SEED_SHARE) * seed_effect
                + np.sqrt(1 - SEED_SHARE) * rng.normal(0.0, 1.0, seeds)
            )
            select = 80.0 + q + luck + rng.normal(0.0, SPLIT_NOISE, seeds)
            test = 80.0 + q + luck + rng.normal(0.0, SPLIT_NOISE, seeds)
            for seed in range(seeds):
                runs.append(
                    {
                        "strategy": strategy,
                        "lr": lr,
                        "seed": seed,
                        "select": select[seed],
                        "test": test[seed],
                        "diverged": False,
                    }
                )
                epoch = np.arange(EPOCHS)
                rising = select[seed] - 4.0 * np.exp(-epoch / 3.0)
                logs.append(
                    pd.DataFrame(
                        {
                            "strategy": strategy,
                            "lr": lr,
                            "seed": seed,
                            "epoch": epoch,
                            "score": rising + rng.normal(0.0, 0.3, EPOCHS) * (epoch < EPOCHS - 1),
                            "may_stop": epoch >= SETTLED_FROM.get(strategy, 0),
                        }
                    )
                )
    return replay.Grid(pd.concat(logs, ignore_index=True), pd.DataFrame(runs)), quality


def one_family(task: tuple[int, int]) -> dict:
    seed, index = task
    landscape, seeds = CELLS[index]
    simulated, quality = grid(np.random.default_rng(seed), landscape, seeds)
    outcome = replay.search(simulated, SearchSettings(enabled=True), EPOCHS)
    runs = simulated.runs
    arms = outcome.finalists + [a for a in simulated.arms() if a[0] == REFERENCE]
    means = (
        runs[runs[replay.ARM].apply(tuple, axis=1).isin(arms)]
        .groupby(replay.ARM, sort=False)["select"]
        .mean()
        .sort_values(ascending=False, kind="stable")
    )
    pick, runner_up = (tuple(a) for a in means.index[:2])
    others = {"FT": outcome.reference, "runner-up": runner_up}
    if pick[0] == REFERENCE or others["FT"] == runner_up:
        others.pop("FT" if pick[0] == REFERENCE else "runner-up")  # as recommend.compare
    rows = []
    for against, other in others.items():
        pair = runs[runs[replay.ARM].apply(tuple, axis=1).isin([pick, other])]
        pair = pair.assign(
            dataset="d",
            model="m",
            strategy=np.where(pair[replay.ARM].apply(tuple, axis=1) == pick, "pick", "other"),
            main_metric="accuracy",
            test_accuracy=pair["test"] / 100,
        )
        rows.append(stats.paired_tests(pair, reference="other").assign(against=against))
    tested = stats.verdicts(pd.concat(rows, ignore_index=True), family=len(STRATEGIES.names()) - 1)
    result = {"cell": index, "pick_is_ft": pick[0] == REFERENCE}
    for against in ("FT", "runner-up"):
        row = tested[tested["against"] == against]
        if row.empty:
            result[f"false_{against}"] = result[f"decided_{against}"] = np.nan
            continue
        verdict = row["verdict"].iloc[0]
        truth = quality[pick] - quality[others[against]]
        result[f"false_{against}"] = (verdict == BETTER and truth <= 0) or (
            verdict == WORSE and truth >= 0
        )
        result[f"decided_{against}"] = verdict in (BETTER, WORSE)
    result["false_any"] = any(result[f"false_{a}"] == 1 for a in ("FT", "runner-up"))
    return result


def main() -> None:
    args = options(__doc__.splitlines()[0], HERE / "results_stats_search.md", families=2000)
    results, minutes = simulate(one_family, len(CELLS), args, chunksize=20)
    frame = pd.DataFrame(results)
    se = np.sqrt(ALPHA * (1 - ALPHA) / args.families) * 100
    lines = [
        "# The search's recommendation under its own selection: false verdicts",
        "",
        f"`python bench/stats_search_pick.py --families {args.families}` ({minutes:.1f} min on "
        f"{processes(args.jobs)}). {args.families} simulated (dataset, model) searches per row; "
        "the model, the landscapes and what counts as false: the script's docstring. Shares of "
        "families where the comparison was made (the pick FT: no comparison with FT), "
        f"Monte-Carlo standard error near 5 %: ±{se:.1f} pp.",
        "",
        "| landscape | seeds | pick is FT | vs FT: false | vs FT: decided "
        "| vs runner-up: false | vs runner-up: decided | either false |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, (landscape, seeds) in enumerate(CELLS):
        part = frame[frame["cell"] == index]
        shares = {c: part[c].astype(float).mean() * 100 for c in part.columns if c != "cell"}
        lines.append(
            f"| {landscape} | {seeds} | {shares['pick_is_ft']:.1f} % "
            f"| {shares['false_FT']:.2f} % | {shares['decided_FT']:.1f} % "
            f"| {shares['false_runner-up']:.2f} % | {shares['decided_runner-up']:.1f} % "
            f"| {shares['false_any']:.2f} % |"
        )
    Path(args.out).write_text("\n".join([*lines, ""]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
