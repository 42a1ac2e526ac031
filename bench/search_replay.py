"""The budgeted search against the full grid, and against Optuna's pruners and random search,
replayed on stored grids (bench/search/grids/<task>/, written by bench/search/store_grid.py).

Run: ``python bench/search_replay.py`` (Optuna from the ``bench`` extra); writes
``bench/results_search.md``. Nothing trains:
every method reads the grid's recorded epoch logs (the replay is exact: tests/test_search.py),
so each is charged exactly the epochs it would have trained, and its pick is judged on the
grid's own runs of that arm.

Per task and method: cost (share of the grid's training image-passes: backbone epochs ×
training images, plus the features job's pass over every image), the pick, its rank in the
grid by the grid's rule (best mean validation main metric over seeds), regret (test main metric
of the grid's best minus the pick's, mean over seeds, pp) with the 95 % interval and verdict of
the report's statistics (seed-paired, patient bootstrap, docs/protocol.md), and whether the
search's "better/worse than FT" matches the grid's own verdict for that arm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from medft.report import stats
from medft.search import replay
from medft.search.rungs import REFERENCE, SearchSettings

ROOT = Path(__file__).resolve().parent
GRIDS = ROOT / "search" / "grids"
OUT = ROOT / "results_search.md"
MAX_EPOCHS = 12  # bench/search/grid.yaml
N_BOOT = 1000
RANDOM_ORDERS = 50
SETTINGS = {
    "medft (defaults: η 5, first rung 1, 3 rungs)": SearchSettings(enabled=True),
    "medft η 3, first rung 2, 3 rungs (the former defaults)": SearchSettings(
        enabled=True, eta=3, first_rung_epochs=2
    ),
    "medft η 3, first rung 1, 3 rungs": SearchSettings(enabled=True, eta=3),
    "medft η 4, first rung 1, 3 rungs": SearchSettings(enabled=True, eta=4),
    "medft η 3, first rung 1, 4 rungs": SearchSettings(enabled=True, eta=3, rungs=4),
    "medft η 4, first rung 1, 4 rungs": SearchSettings(enabled=True, eta=4, rungs=4),
    "medft η 5, first rung 1, 4 rungs": SearchSettings(enabled=True, rungs=4),
    "medft η 3, first rung 2, 4 rungs": SearchSettings(
        enabled=True, eta=3, first_rung_epochs=2, rungs=4
    ),
}


def compare(runs, predictions, info, arm, against, family=None) -> dict:
    """``arm`` − ``against`` on the evaluation split: the report's statistics, one comparison
    (in a family of ``family``, as the recommendation tests against FT)."""
    label = {arm: "pick", against: "other"}
    pair = runs[runs[["strategy", "lr"]].apply(tuple, axis=1).isin([arm, against])].copy()
    pair["strategy"] = pair[["strategy", "lr"]].apply(tuple, axis=1).map(label)
    pair["run_dir"] = pair["run"]
    tested = stats.paired_tests(pair, reference="other")
    boot = stats.bootstrap_intervals(
        pair,
        {info["dataset"]: info["task"]},
        n_boot=N_BOOT,
        predictions=predictions,
        reference="other",
    )
    return stats.verdicts(tested, boot, family=family).iloc[0].to_dict()


def grid_verdicts(runs, predictions, info) -> dict[tuple[str, str], str]:
    """The grid report's verdict of each strategy's chosen arm against FT's chosen arm."""
    chosen = [replay.choose(runs[runs["strategy"] == s]) for s in runs["strategy"].unique()]
    frame = runs[runs[["strategy", "lr"]].apply(tuple, axis=1).isin(chosen)].copy()
    frame["run_dir"] = frame["run"]
    tested = stats.paired_tests(frame)
    boot = stats.bootstrap_intervals(
        frame, {info["dataset"]: info["task"]}, n_boot=N_BOOT, predictions=predictions
    )
    table = stats.verdicts(tested, boot)
    lrs = dict(chosen)
    return {(s, lrs[s]): v for s, v in zip(table["strategy"], table["verdict"], strict=True)}


def ranking(runs: pd.DataFrame) -> list[tuple[str, str]]:
    means = runs.groupby(["strategy", "lr"], sort=False)["select"].mean()
    return list(means.sort_values(ascending=False, kind="stable").index)


def with_reference(grid: replay.Grid, trained: dict, pick: tuple[str, str]) -> dict:
    """A peer's runs plus what its answer needs to be stated as medft's is: FT at the full
    protocol (the reference) and every seed of the pick."""
    trained = dict(trained)
    for strategy, lr in grid.arms():
        for seed in grid.seeds():
            if strategy == REFERENCE or (strategy, lr) == pick:
                trained[(strategy, lr, seed)] = grid.length(strategy, lr, seed)
    return trained


def optuna_peer(grid: replay.Grid, pruner, seed: int) -> tuple[tuple[str, str], dict]:
    """One study over the arms (each once, in a random order) through ask/tell, each trial
    reporting its seed-0 validation curve epoch by epoch until the pruner stops it; the pick
    is the completed trial with the best score."""
    arms, seed0 = grid.arms(), grid.seeds()[0]
    sampler = optuna.samplers.RandomSampler(seed=seed)
    # A fixed name: Hyperband assigns trials to brackets by hashing it with the trial number.
    study = optuna.create_study(
        study_name=f"replay-{seed}", direction="maximize", sampler=sampler, pruner=pruner
    )
    for index in np.random.default_rng(seed).permutation(len(arms)):  # each arm once
        study.enqueue_trial({"arm": int(index)})
    trained, best = {}, {}
    for _ in arms:
        trial = study.ask()
        arm = arms[trial.suggest_categorical("arm", list(range(len(arms))))]
        log = grid.log(*arm, seed0)
        score, pruned = -math.inf, False
        for step, value in enumerate(log["score"]):
            score = max(score, value)
            trial.report(score, step)
            trained[(*arm, seed0)] = step + 1
            if step + 1 < len(log) and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, score)
            best[arm] = score
    pick = max(best, key=best.get)
    return pick, with_reference(grid, trained, pick)


def random_peer(grid: replay.Grid, budget: float, info: dict, rng) -> tuple[tuple, dict]:
    """Random arms trained fully at seed 0 until the budget (share of the grid's passes) is
    spent, FT's full protocol and the pick's seeds included; the pick: best seed-0 score."""
    seed0 = grid.seeds()[0]
    arms = grid.arms()
    order = [arms[i] for i in rng.permutation(len(arms))]
    trained, scores = with_reference(grid, {}, ("", "")), {}
    for arm in order:
        trial = dict(trained)
        trial[(*arm, seed0)] = grid.length(*arm, seed0)
        best = max(scores, key=scores.get, default=None)
        spent = with_reference(grid, trial, best or arm)
        if replay.cost_share(grid, spent, info["n_train"], info["n_images"]) > budget:
            break
        trained = trial
        scores[arm] = grid.log(*arm, seed0)["score"].max()
    for strategy, lr in grid.arms():  # FT's seed-0 runs are trained anyway
        if strategy == REFERENCE:
            scores[(strategy, lr)] = grid.log(strategy, lr, seed0)["score"].max()
    pick = max(scores, key=scores.get)
    return pick, with_reference(grid, trained, pick)


def oracle_floor(grid: replay.Grid, best: tuple[str, str]) -> dict:
    """What the cheapest search that keeps the issue's requirements would train if it knew
    the grid's best arm in advance: FT at the full protocol, every other arm looked at for one
    epoch (seed 0), and the best arm's every seed (with its first stage's runs) — no rung,
    no comparison at settled schedules. No search can cost less and still consider every arm."""
    seed0 = grid.seeds()[0]
    trained = {}
    for strategy, lr in grid.arms():
        if strategy == REFERENCE:
            for seed in grid.seeds():
                trained[(strategy, lr, seed)] = grid.length(strategy, lr, seed)
        else:
            trained[(strategy, lr, seed0)] = min(1, grid.length(strategy, lr, seed0))
    return with_reference(grid, trained, best)


@dataclass(frozen=True)
class Task:
    """One stored grid and what every method is judged against: the grid's ranking of its
    arms, its best arm, and its report's verdicts against FT."""

    stored: replay.Stored
    order: list[tuple[str, str]]
    verdicts: dict[tuple[str, str], str]

    @property
    def best(self) -> tuple[str, str]:
        return self.order[0]


def judge(task: Task, name: str, pick, trained: dict, ours=None) -> dict:
    grid, info, runs = task.stored.grid, task.stored.info, task.stored.runs
    predictions, order, best, verdicts = (
        task.stored.predictions,
        task.order,
        task.best,
        task.verdicts,
    )
    share = replay.cost_share(grid, trained, info["n_train"], info["n_images"])
    test = runs.groupby(["strategy", "lr"])["test"].mean() * 100
    ft_runs = {key: n for key, n in trained.items() if key[0] == REFERENCE}
    grid_passes = grid.backbone_epochs(grid.grid_epochs()) * info["n_train"] + info["n_images"]
    row = {
        "method": name,
        "cost": share * 100,
        "ft_cost": grid.backbone_epochs(ft_runs) * info["n_train"] / grid_passes * 100,
        "pick": f"{pick[0]} lr={pick[1]}",
        "rank": order.index(pick) + 1,
        "regret": test[best] - test[pick],
    }
    if pick == best:
        row.update(low=0.0, high=0.0, verdict="the grid's best")
    else:
        tested = compare(runs, predictions, info, best, pick)
        row.update(low=tested["low"], high=tested["high"], verdict=tested["verdict"])
        row["verdict"] = {"better": "worse", "worse": "better"}.get(row["verdict"], row["verdict"])
    if ours is not None:
        family = runs["strategy"].nunique() - 1  # as the recommendation job passes it
        against = (
            compare(runs, predictions, info, pick, ours.reference, family)
            if (pick != ours.reference)
            else {"verdict": "is FT"}
        )
        row["vs FT (search)"] = against["verdict"]
        row["vs FT (grid)"] = verdicts.get(
            pick, "not the grid's lr" if pick[0] != REFERENCE else "is FT"
        )
    return row


def task_rows(folder: Path) -> tuple[dict, list[dict]]:
    stored = replay.load_stored(folder)
    grid, info, runs = stored.grid, stored.info, stored.runs
    task = Task(stored, ranking(runs), grid_verdicts(runs, stored.predictions, info))
    rows = []
    for name, settings in SETTINGS.items():
        outcome = replay.search(grid, settings, MAX_EPOCHS)
        rows.append(judge(task, name, outcome.pick, outcome.trained, ours=outcome))
    rows.append(
        judge(
            task,
            "oracle floor (a bound: knows the best arm)",
            task.best,
            oracle_floor(grid, task.best),
        )
    )
    budget = rows[0]["cost"] / 100
    for name, pruner in {
        "Optuna SuccessiveHalvingPruner (min 1, η 3)": optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=3
        ),
        "Optuna HyperbandPruner (1..12, η 3)": optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=MAX_EPOCHS, reduction_factor=3
        ),
    }.items():
        judged = [judge(task, name, *optuna_peer(grid, pruner, seed)) for seed in range(5)]
        rows.append(summarise(name + " (5 orders)", judged))
    rng = np.random.default_rng(0)
    judged = [
        judge(task, "random", *random_peer(grid, budget, info, rng)) for _ in range(RANDOM_ORDERS)
    ]
    rows.append(summarise(f"random search at the defaults' cost ({RANDOM_ORDERS} orders)", judged))
    info["best"] = f"{task.best[0]} lr={task.best[1]}"
    info["ft"] = "FT lr=" + replay.choose(runs[runs["strategy"] == REFERENCE])[1]
    return info, rows


def summarise(name: str, judged: list[dict]) -> dict:
    frame = pd.DataFrame(judged)
    picks = frame["pick"].value_counts()
    return {
        "method": name,
        "cost": frame["cost"].mean(),
        "ft_cost": frame["ft_cost"].mean(),
        "pick": ", ".join(f"{p} ×{n}" for p, n in picks.head(3).items()),
        "rank": frame["rank"].mean(),
        "regret": frame["regret"].mean(),
        "low": np.nan,
        "high": np.nan,
        "verdict": f"worst regret {frame['regret'].max():+.2f} pp",
    }


def main() -> None:
    tasks = sorted(p for p in GRIDS.iterdir() if (p / "grid.json").is_file())
    lines = [
        "# The budgeted search against the grid, Optuna's pruners and random search",
        "",
        "`python bench/search_replay.py`: every method replayed on the stored grids of",
        "`bench/search/grids/` (efficientnet_lite0 + offline ImageNet weights, 64 px, 8",
        "strategies × 3 lrs × 3 seeds, ≤ 12 epochs, patience 3; bench/search/grid.yaml).",
        "Cost: share of the grid's training image-passes. Regret: test main metric of the grid's",
        "best arm (its own rule) minus the pick's, mean over 3 seeds, pp; interval and verdict",
        "from the report's statistics on the grid's runs (pick − best; equivalent within",
        "±1 pp). Peers carry what medft's answer carries: FT at the full protocol and every",
        "seed of the pick.",
        "",
    ]
    summary = []
    for folder in tasks:
        info, rows = task_rows(folder)
        lines += [
            f"## {info['dataset']} ({info['task']}, {info['n_train']} training images)",
            "",
            f"The grid's best: **{info['best']}**; FT's arm by the grid's rule: {info['ft']}.",
            "",
            "| method | cost % (FT's share) | pick | rank | regret pp | 95 % interval |"
            " verdict (pick vs best) | vs FT: search | vs FT: grid |",
            "|---|---:|---|---:|---:|---|---|---|---|",
        ]
        for r in rows:
            interval = "" if np.isnan(r["low"]) else f"[{r['low']:+.2f}, {r['high']:+.2f}]"
            lines.append(
                f"| {r['method']} | {r['cost']:.1f} ({r['ft_cost']:.1f}) | {r['pick']} | "
                f"{r['rank']:.1f} | {r['regret']:+.2f} | {interval} | {r['verdict']} | "
                f"{r.get('vs FT (search)', '')} | {r.get('vs FT (grid)', '')} |"
            )
        lines.append("")
        summary += [{**r, "task": info["dataset"]} for r in rows]
    frame = pd.DataFrame(summary)
    lines += [
        "## All tasks",
        "",
        "The issue's targets: cost ≤ 25 % on every task; mean regret ≤ 1 pp and none above 2 pp "
        "(or the pick equivalent to the grid's best).",
        "",
        "The oracle floor is a lower bound, not a method: FT at the full protocol, every other",
        "arm trained one epoch at seed 0, and the grid's best arm (known in advance) at every",
        "seed. Where it exceeds 25 %, no search that keeps FT at the full protocol and looks at",
        "every arm can meet the cost target on that task.",
        "",
        "| method | mean cost % | max cost % | FT's share % | mean regret pp | max regret pp | "
        "cost target | regret target |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for method, part in frame.groupby("method", sort=False):
        equivalent = part["verdict"].isin(["the grid's best", "equivalent"])
        regret_ok = (part["regret"].mean() <= 1 and part["regret"].max() <= 2) or equivalent.all()
        lines.append(
            f"| {method} | {part['cost'].mean():.1f} | {part['cost'].max():.1f} | "
            f"{part['ft_cost'].mean():.1f} | {part['regret'].mean():+.2f} | "
            f"{part['regret'].max():+.2f} | {'met' if part['cost'].max() <= 25 else 'missed'} | "
            f"{'met' if regret_ok else 'missed'} |"
        )
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
