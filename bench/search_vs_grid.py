"""The budgeted search checked against the full grid (issue 12), on the runs both left.

Run the two workflows first (each a few CPU-hours on 2 cores; commands in
bench/results_search.md), then ``python bench/search_vs_grid.py``; it writes
``bench/results_search.md``'s measured part (``bench/_work/search_vs_grid.md``), from:

* cost: training image-passes (epochs × training images) and measured training hours of every
  run folder each workflow trained in;
* the answer: the grid's best (strategy, lr) by the grid's own rule (best mean validation main
  metric over seeds) against the search's recommendation, tested on the grid's runs of both
  arms with the report's statistics (seed-paired t-test, patient bootstrap); the grid's best
  by test mean too;
* exact resume: each arm's seed-0 epoch log in the search against the grid's same cell, epoch
  by epoch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from medft.report import stats
from medft.report.collect import collect_runs
from medft.search.recommend import arm_label
from medft.search.rungs import SearchSettings, decide, finalists, survivors

MODEL = "efficientnet_lite0"
HEAD_ONLY = {"LP"}
# bench/search/grid.yaml's epoch budget.
MAX_EPOCHS = 12
# Per strategy, the first epoch early stopping may end its run on efficientnet_lite0
# (9 blocks: gradual unfreezing trains them all from epoch 8), as medft.cost_plan.comparable_from
# finds it.
COMPARABLE_FROM = {s: 0 for s in ("FT", "LP", "LP-FT", "L1-SP", "L2-SP", "Auto-RGN")} | {
    "G-LF": 8,
    "G-FL": 8,
}


def run_logs(folder: Path) -> pd.DataFrame:
    """Every run folder's epoch log under ``folder`` (dataset/model/strategy/lr/seed)."""
    frames = []
    for log in sorted(folder.glob("*/lr*/seed*/epochs.csv")):
        seed_dir = log.parent
        frame = pd.read_csv(log)
        frame["strategy"] = seed_dir.parent.parent.name
        frame["lr"] = seed_dir.parent.name.removeprefix("lr")
        frame["seed"] = int(seed_dir.name.removeprefix("seed"))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def cost(logs: pd.DataFrame, n_train: int, n_images: int) -> dict:
    """Epochs, and training image-passes through the backbone: LP trains a head on the
    features job's file in both workflows, so its epochs pass none and the features job
    passes every image once."""
    backbone = logs[~logs["strategy"].isin(HEAD_ONLY)]
    return {
        "runs": logs.groupby(["strategy", "lr", "seed"]).ngroups,
        "epochs": len(logs),
        "backbone_epochs": len(backbone),
        "image_passes": len(backbone) * n_train + n_images,
        "hours": logs["seconds"].sum() / 3600,
    }


def grid_answer(grid_runs: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, lr): seeds, mean validation and test main metric (percent), best first
    by validation."""
    metric = grid_runs["main_metric"].iloc[0]
    frame = grid_runs.assign(lr=grid_runs["lr"].map(lambda v: f"{float(v):g}"))
    table = frame.groupby(["strategy", "lr"], as_index=False).agg(
        n=("seed", "size"),
        val=(f"val_{metric}", "mean"),
        test=(f"test_{metric}", "mean"),
    )
    table[["val", "test"]] *= 100
    return table.sort_values("val", ascending=False).reset_index(drop=True)


def compare_on_grid(grid_runs: pd.DataFrame, arm: tuple, best: tuple, task: str) -> dict:
    """The search's arm against the grid's best, on the grid's runs of both (3 seeds)."""
    frame = grid_runs.assign(lr=grid_runs["lr"].map(lambda v: f"{float(v):g}"))
    frame["strategy"] = [
        arm_label(s, lr) for s, lr in zip(frame["strategy"], frame["lr"], strict=True)
    ]
    mine, theirs = arm_label(*arm), arm_label(*best)
    pair = frame[frame["strategy"].isin([mine, theirs])]
    paired = stats.paired_tests(pair, reference=theirs)
    boot = stats.bootstrap_intervals(pair, {frame["dataset"].iloc[0]: task}, reference=theirs)
    tested = stats.verdicts(paired, boot).iloc[0]
    return {
        "diff": tested["diff_mean"],
        "p": tested["p_value"],
        "boot": (tested["boot_low"], tested["boot_high"]),
        "verdict": tested["verdict"],
    }


def resume_check(search_logs: pd.DataFrame, grid_logs: pd.DataFrame, split: str, metric: str):
    """Seed-0 epochs the search trained that the grid also trained: how many, and the largest
    difference of their validation main metric."""
    column = f"{split}_{metric}"
    keys = ["strategy", "lr", "epoch"]
    both = search_logs[search_logs["seed"] == 0][[*keys, column]].merge(
        grid_logs[grid_logs["seed"] == 0][[*keys, column]], on=keys, suffixes=("_search", "_grid")
    )
    gap = (both[f"{column}_search"] - both[f"{column}_grid"]).abs()
    return len(both), float(gap.max()) if len(both) else np.nan


def replay(
    grid_logs: pd.DataFrame,
    metric: str,
    comparable_from: dict,
    one_pool: bool,
    settings: SearchSettings,
) -> list:
    """The search's decisions re-enacted on the grid's seed-0 curves (exact: a paused and
    resumed run equals a straight one); ``one_pool``: plain successive halving, every arm
    ranked against every other from the first rung (no slow-starter rule)."""
    seed0 = grid_logs[grid_logs["seed"] == 0]
    arms = list(seed0.groupby(["strategy", "lr"], sort=False).groups)
    decisions = []
    for k, budget in enumerate(settings.budgets(MAX_EPOCHS)):
        rows = []
        for strategy, lr in arms:
            log = seed0[(seed0["strategy"] == strategy) & (seed0["lr"] == lr)]
            reach = budget
            if k == settings.last_decision and not one_pool:
                reach = max(budget, comparable_from[strategy] + 1)
            seen = log[log["epoch"] < reach]
            rows.append(
                {
                    "strategy": strategy,
                    "lr": lr,
                    "score": seen[f"val_{metric}"].max(),
                    "epochs": len(seen),
                    "over": len(seen) == len(log),
                    "may_stop": one_pool or len(seen) - 1 >= comparable_from[strategy],
                }
            )
        decision = decide(pd.DataFrame(rows), settings.eta)
        decisions.append(decision)
        arms = survivors(decision)
    return decisions


def replay_search(
    grid_logs: pd.DataFrame, grid_runs: pd.DataFrame, settings: SearchSettings
) -> tuple[pd.DataFrame, tuple]:
    """The whole search re-enacted on the grid's runs (exact: resume is exact, and the
    finalists' runs are grid cells): the epoch logs it would have, and its recommendation."""
    metric = grid_runs["main_metric"].iloc[0]
    decisions = replay(grid_logs, metric, COMPARABLE_FROM, False, settings)
    final = finalists(decisions)
    keep = set(zip(final["strategy"], final["lr"], strict=True))
    keep |= {("LP", lr) for s, lr in keep if s == "LP-FT"}  # LP-FT starts from LP's run
    pieces = []
    for (strategy, lr, seed), log in grid_logs.groupby(["strategy", "lr", "seed"]):
        if (strategy, lr) in keep or (strategy == "LP" and seed == 0):
            pieces.append(log)  # a finalist's run, or LP-FT's first stage: the whole run
        elif seed == 0:
            reached = max(
                int(d.set_index(["strategy", "lr"]).loc[(strategy, lr), "epochs"])
                for d in decisions
                if ((d["strategy"] == strategy) & (d["lr"] == lr)).any()
            )
            pieces.append(log.iloc[:reached])
    answer = grid_answer(grid_runs)
    mine = answer.merge(final[["strategy", "lr"]], on=["strategy", "lr"])
    return pd.concat(pieces), tuple(mine[["strategy", "lr"]].iloc[0])


def replay_row(grid_logs, grid_runs, answer, settings, grid_cost, n_train, n_images) -> str:
    logs, arm = replay_search(grid_logs, grid_runs, settings)
    spent = cost(logs, n_train, n_images)
    rank = answer.index[(answer["strategy"] == arm[0]) & (answer["lr"] == arm[1])][0] + 1
    return (
        f"| {settings.eta} | {settings.first_rung_epochs} | {settings.rungs} | "
        f"{spent['epochs']} | {spent['image_passes'] / grid_cost['image_passes']:.1%} | "
        f"{arm_label(*arm)} | {rank} |"
    )


def replay_lines(
    grid_logs: pd.DataFrame, metric: str, comparable_from: dict, settings: SearchSettings
) -> list[str]:
    lines = ["", "Replay on the grid's seed-0 curves, slow-starter rule against one pool:", ""]
    for name, one_pool in (("the rule", False), ("one pool (plain successive halving)", True)):
        decisions = replay(grid_logs, metric, comparable_from, one_pool, settings)
        slow = [f"{s} lr={lr}" for s, lr in survivors(decisions[0]) if comparable_from[s] > 0]
        final = ", ".join(f"{s} lr={lr}" for s, lr in survivors(decisions[-1]))
        lines.append(
            f"- {name}: slow starters past the first cut: {', '.join(slow) or 'none'}; "
            f"finalists (before FT's reference): {final}"
        )
    return lines


def dataset_section(root: Path, dataset: str, search: str, settings: SearchSettings) -> str:
    grid_dir = root / "grid" / dataset / MODEL
    search_dir = root / search / dataset / MODEL
    meta = json.loads(next((root / "data" / dataset).glob("*/meta.json")).read_text())
    n_train = meta["split_counts"]["train"]
    n_images = sum(meta["split_counts"].values())
    grid_runs = collect_runs(sorted(grid_dir.glob("*/lr*/seed*/metrics.json")))
    metric, task = grid_runs["main_metric"].iloc[0], grid_runs["task"].iloc[0]
    grid_logs, search_logs = run_logs(grid_dir), run_logs(search_dir)
    grid_cost = cost(grid_logs, n_train, n_images)
    search_cost = cost(search_logs, n_train, n_images)
    answer = grid_answer(grid_runs)
    recommendation = pd.read_csv(search_dir / "recommendation.csv", dtype={"lr": str})
    chosen = tuple(
        recommendation.loc[recommendation["role"] == "recommended", ["strategy", "lr"]].iloc[0]
    )
    best = tuple(answer[["strategy", "lr"]].iloc[0])
    best_test = tuple(answer.sort_values("test", ascending=False)[["strategy", "lr"]].iloc[0])
    rank = (
        int(np.flatnonzero((answer["strategy"] == chosen[0]) & (answer["lr"] == chosen[1]))[0]) + 1
    )
    lines = [
        f"### {dataset} · {MODEL} (main metric: {metric}, {n_train} training images)",
        "",
        "| | runs | epochs (LP's included) | backbone epochs | training image-passes "
        "| hours measured |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {name} | {c['runs']} | {c['epochs']} | {c['backbone_epochs']} | "
            f"{c['image_passes']:,} | {c['hours']:.2f} |"
            for name, c in (("full grid", grid_cost), ("search", search_cost))
        ],
        f"| search / grid | | {search_cost['epochs'] / grid_cost['epochs']:.1%} "
        f"| {search_cost['backbone_epochs'] / grid_cost['backbone_epochs']:.1%} "
        f"| **{search_cost['image_passes'] / grid_cost['image_passes']:.1%}** "
        f"| {search_cost['hours'] / grid_cost['hours']:.1%} |",
        "",
        f"- The search recommends **{arm_label(*chosen)}**; the grid's best by its own rule "
        f"(mean validation {metric} over 3 seeds) is **{arm_label(*best)}**; the search's pick is "
        f"the grid's #{rank} of {len(answer)} arms by that rule. Best by test mean: "
        f"{arm_label(*best_test)}.",
    ]
    if chosen != best:
        c = compare_on_grid(grid_runs, chosen, best, task)
        lines.append(
            f"- On the grid's own runs, {arm_label(*chosen)} − {arm_label(*best)}: "
            f"{c['diff']:+.2f} pp test {metric} (3 seed pairs), p = {c['p']:.3g}, bootstrap "
            f"95 % [{c['boot'][0]:+.2f}, {c['boot'][1]:+.2f}]: **{c['verdict']}**."
        )
    n, gap = resume_check(search_logs, grid_logs, "val", metric)
    lines += [
        f"- Exact resume: the {n} seed-0 epochs both trained (search paused and resumed at the "
        f"rungs, grid straight through) differ by at most {gap:.2g} in validation {metric}.",
        "",
        *replay_lines(grid_logs, metric, COMPARABLE_FROM, settings),
        "",
        "Other settings, the search re-enacted on the grid's runs (exact, as the resume check "
        "shows: each row with the settings of a measured search equals it):",
        "",
        "| η | first rung | rungs | epochs | image-passes / grid | recommends | grid rank |",
        "|---:|---:|---:|---:|---:|---|---:|",
        *[
            replay_row(
                grid_logs, grid_runs, answer, SearchSettings(True, *v), grid_cost, n_train, n_images
            )
            for v in ((3, 1, 3), (4, 1, 3), (3, 2, 3), (4, 2, 3), (3, 1, 4))
        ],
        "",
        "Top of the grid (mean over 3 seeds, percent):",
        "",
        answer.head(8)
        .assign(val=answer["val"].map("{:.2f}".format), test=answer["test"].map("{:.2f}".format))
        .to_markdown(index=False, disable_numparse=True),
        "",
        "The search's recommendation, as written (`recommendation.md`):",
        "",
        "\n".join(
            "> " + line for line in (search_dir / "recommendation.md").read_text().splitlines()
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("results/bench-search"))
    parser.add_argument("--datasets", nargs="+", default=["breastmnist", "synth-nodule"])
    parser.add_argument("--search", default="search-4-rungs", help="the search's folder")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--first-rung-epochs", type=int, default=1)
    parser.add_argument("--rungs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("bench/_work/search_vs_grid.md"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = SearchSettings(True, args.eta, args.first_rung_epochs, args.rungs)
    args.out.write_text(
        "\n".join(dataset_section(args.root, d, args.search, settings) for d in args.datasets)
    )
    print(args.out.read_text())


if __name__ == "__main__":
    main()
