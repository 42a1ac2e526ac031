"""The search re-enacted on a finished grid: which arms it would train, how far, what it
would recommend and what that costs — without training. Exact, because a paused and resumed
run equals the grid's straight run epoch by epoch (tests/test_search.py), so every rung's
score is the grid's seed-0 epoch log cut at the rung's budget, and every finalist's run is a
grid run.

A grid here is two frames: ``epochs`` (``strategy``, ``lr``, ``seed``, ``epoch``, ``score``:
the early-stopping split's main metric, ``may_stop``) and ``runs`` (one row per run:
``strategy``, ``lr``, ``seed``, ``select``: the selection split's main metric at its best
epoch, ``test``: the evaluation split's, ``diverged``). Costs count backbone epochs (the
epochs a head-only strategy trains pass no image through the backbone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from medft.search.rungs import REFERENCE, SearchSettings, decide, finalists, survivors

ARM = ["strategy", "lr"]


def _starts_from() -> dict[str, str]:
    """Each registered strategy that starts from another's run, and that one (defaults)."""
    from medft.strategies import STRATEGIES, StrategyOptions

    options = StrategyOptions()
    found = {name: STRATEGIES.get(name).starts_from(options) for name in STRATEGIES.names()}
    return {name: first for name, first in found.items() if first}


def _head_only() -> tuple[str, ...]:
    """The registered strategies that train a head on shared features (defaults)."""
    from medft.strategies import STRATEGIES, StrategyOptions

    options = StrategyOptions()
    return tuple(n for n in STRATEGIES.names() if STRATEGIES.get(n).shares_features(options))


@dataclass(frozen=True)
class Grid:
    epochs: pd.DataFrame
    runs: pd.DataFrame
    head_only: tuple[str, ...] = field(default_factory=_head_only)
    starts_from: dict[str, str] = field(default_factory=_starts_from)

    @property
    def first_stages(self) -> set[str]:
        return set(self.starts_from.values())

    @cached_property
    def _logs(self) -> dict[tuple[str, str, int], pd.DataFrame]:
        """Each run's epoch log, split once (a replay reads them many times)."""
        return {
            key: log.sort_values("epoch")
            for key, log in self.epochs.groupby(["strategy", "lr", "seed"], sort=False)
        }

    def log(self, strategy: str, lr: str, seed: int) -> pd.DataFrame:
        return self._logs[(strategy, lr, seed)]

    def length(self, strategy: str, lr: str, seed: int) -> int:
        return len(self.log(strategy, lr, seed))

    def arms(self) -> list[tuple[str, str]]:
        return list(self.runs[ARM].drop_duplicates().itertuples(index=False, name=None))

    def seeds(self) -> list[int]:
        return sorted(self.runs["seed"].unique())

    def settle_epochs(self, max_epochs: int) -> int:
        """The epochs after which every searched strategy may stop, from the logs; a strategy
        whose schedule never reaches its final form within the protocol counts as the whole
        protocol (as ``medft.cost_plan.comparable_from`` clamps it)."""
        searched = [s for s in self.epochs["strategy"].unique() if s != REFERENCE]
        ready = self.epochs[self.epochs["may_stop"].astype(bool)]
        first = ready.groupby("strategy")["epoch"].min()
        return min(max_epochs, max(int(first.get(s, max_epochs - 1)) + 1 for s in searched))

    def backbone_epochs(self, trained: dict[tuple[str, str, int], int]) -> int:
        return sum(n for (s, _, _), n in trained.items() if s not in self.head_only)

    def grid_epochs(self) -> dict[tuple[str, str, int], int]:
        sizes = self.epochs.groupby(["strategy", "lr", "seed"]).size()
        return {key: int(n) for key, n in sizes.items()}


def choose(runs: pd.DataFrame, arms: list[tuple[str, str]] | None = None) -> tuple[str, str]:
    """The grid's rule: the arm with the best mean selection-split score over seeds."""
    frame = runs if arms is None else runs[runs[ARM].apply(tuple, axis=1).isin(arms)]
    means = frame.groupby(ARM, sort=False)["select"].mean()
    return tuple(means.idxmax())


@dataclass(frozen=True)
class Outcome:
    pick: tuple[str, str]
    reference: tuple[str, str] | None
    finalists: list[tuple[str, str]]
    trained: dict[tuple[str, str, int], int]  # epochs per run the search trained
    decisions: list[pd.DataFrame]


def search(grid: Grid, settings: SearchSettings, max_epochs: int) -> Outcome:
    """medft's search on ``grid``: FT at the full protocol, the other arms halved on seed 0,
    the finalists' every seed; the pick by the grid's rule among finalists and FT's arms."""
    seed0 = grid.seeds()[0]
    trained: dict[tuple[str, str, int], int] = {}
    for strategy, lr in grid.arms():
        if strategy == REFERENCE:
            for seed in grid.seeds():
                trained[(strategy, lr, seed)] = grid.length(strategy, lr, seed)
        elif strategy in grid.first_stages:  # trains to the end first, judged per rung
            trained[(strategy, lr, seed0)] = grid.length(strategy, lr, seed0)
    alive = [arm for arm in grid.arms() if arm[0] != REFERENCE]
    decisions = []
    budgets = settings.budgets(max_epochs, grid.settle_epochs(max_epochs))
    diverged = {
        (r.strategy, r.lr) for r in grid.runs.itertuples() if r.seed == seed0 and r.diverged
    }
    for k, budget in enumerate(budgets):
        rows = []
        for strategy, lr in alive:
            log = grid.log(strategy, lr, seed0)
            n = min(budget, len(log))
            if k == settings.last_decision:  # as the engine's settle: on until it may stop
                ready = log["may_stop"].astype(bool).to_numpy()
                while n < len(log) and not ready[n - 1]:
                    n += 1
            key = (strategy, lr, seed0)
            trained[key] = max(trained.get(key, 0), n)
            over = n == len(log)
            rows.append(
                {
                    "strategy": strategy,
                    "lr": lr,
                    "score": log["score"].iloc[:n].max(),
                    "epochs": n,
                    "over": over,
                    "may_stop": bool(log["may_stop"].iloc[n - 1]),
                    "diverged": over and (strategy, lr) in diverged,
                }
            )
        decisions.append(decide(pd.DataFrame(rows), settings.eta))
        alive = survivors(decisions[-1])
    final = list(finalists(decisions)[ARM].itertuples(index=False, name=None))
    for strategy, lr in final:
        for seed in grid.seeds():
            trained[(strategy, lr, seed)] = grid.length(strategy, lr, seed)
            first = grid.starts_from.get(strategy)
            if first:
                trained[(first, lr, seed)] = grid.length(first, lr, seed)
    ft_arms = [arm for arm in grid.arms() if arm[0] == REFERENCE]
    reference = choose(grid.runs, ft_arms) if ft_arms else None
    return Outcome(choose(grid.runs, final + ft_arms), reference, final, trained, decisions)


def cost_share(
    grid: Grid, trained: dict[tuple[str, str, int], int], n_train: int, n_images: int
) -> float:
    """The share of the grid's training image-passes: backbone epochs × training images, plus
    the features job's one pass over every image on both sides."""
    mine = grid.backbone_epochs(trained) * n_train + n_images
    return mine / (grid.backbone_epochs(grid.grid_epochs()) * n_train + n_images)


@dataclass(frozen=True)
class Stored:
    """A grid stored by bench/search/store_grid.py: the replay's frames, the grid's
    ``grid.json`` (task type, training and total images) and each run's test predictions by
    run key (``<strategy>/lr<lr>/seed<seed>``)."""

    grid: Grid
    info: dict
    predictions: dict[str, pd.DataFrame]

    @property
    def runs(self) -> pd.DataFrame:
        return self.grid.runs


def load_stored(folder) -> Stored:
    import json
    from pathlib import Path

    folder = Path(folder)
    info = json.loads((folder / "grid.json").read_text())
    runs = pd.read_parquet(folder / "runs.parquet")
    metric = runs["main_metric"].iloc[0]
    runs = runs.assign(
        lr=runs["run"].str.split("/").str[1].str.removeprefix("lr"),
        select=runs[f"val_{metric}"],
        test=runs[f"test_{metric}"],
        diverged=runs["diverged_epoch"].notna(),
    )
    epochs = pd.read_parquet(folder / "epochs.parquet")
    parts = epochs["run"].str.split("/")
    epochs = epochs.assign(
        strategy=parts.str[0],
        lr=parts.str[1].str.removeprefix("lr"),
        seed=parts.str[2].str.removeprefix("seed").astype(int),
        score=epochs[f"val_{metric}"],
    )
    predictions = pd.read_parquet(folder / "predictions.parquet")
    by_run = {
        run: frame.drop(columns="run").sort_values("id").reset_index(drop=True)
        for run, frame in predictions.groupby("run")
    }
    return Stored(Grid(epochs, runs), info, by_run)
