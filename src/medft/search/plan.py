"""The budgeted search's part of the plan: its rungs' paths, inputs and parameters, the runs
it trains and what the recommendation says of its cost. ``Grid.search_plan`` is what
workflow/rules/search.smk reads; the decisions themselves are ``medft.search.rungs``."""

from __future__ import annotations

from medft.search.rungs import REFERENCE, settle_epochs
from medft.workflow import Grid, lr_tag


class SearchPlan:
    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    @property
    def seed(self) -> int:
        return self.grid.config["seeds"][0]

    def budgets(self, model: str) -> list[int]:
        """The rungs' epoch budgets on ``model``: the last decision at the epoch from which
        every searched strategy's schedule has its final form (docs/search.md)."""
        from medft.cost_plan import comparable_from

        return self.grid.search.budgets(
            self.grid.config["epochs"], settle_epochs(comparable_from(self.grid.cost, model))
        )

    def arms(self, dataset: str) -> list[tuple[str, str]]:
        """The searched arms: every (strategy, lr) but FT's, which run the full protocol."""
        lrs = self.grid.lrs(dataset)
        strategies = self.grid.config["strategies"]
        return [(s, lr_tag(lr)) for s in strategies if s != REFERENCE for lr in lrs]

    def reference_arms(self, dataset: str) -> list[tuple[str, str]]:
        if REFERENCE not in self.grid.config["strategies"]:
            return []
        return [(REFERENCE, lr_tag(lr)) for lr in self.grid.lrs(dataset)]

    def is_first_stage(self, strategy: str) -> bool:
        """Whether another strategy of the grid starts from this one's checkpoint."""
        return any(self.grid.first_stage(s) == strategy for s in self.grid.config["strategies"])

    def folder(self, dataset: str, model: str) -> str:
        return f"{self.grid.results}/{dataset}/{model}/search"

    def decision_path(self, dataset: str, model: str, rung) -> str:
        return f"{self.folder(dataset, model)}/decision{rung}.csv"

    def rung_path(self, dataset, model, strategy, lr, rung) -> str:
        return f"{self.grid.run_dir(dataset, model, strategy, lr, self.seed)}/rung{rung}.json"

    def rung_inputs(self, wildcards) -> list[str]:
        """An arm another strategy starts from (LP, for LP-FT) trains to the end first, as in
        the grid, and is judged on its first epochs; any other arm continues from its own
        previous rung, the first rung waiting for what its first epoch needs."""
        w, rung = wildcards, int(wildcards.rung)
        if self.is_first_stage(w.strategy):
            run = self.grid.run_dir(w.dataset, w.model, w.strategy, w.lr, w.seed)
            return [f"{run}/metrics.json"]
        if rung > 0:
            return [self.rung_path(w.dataset, w.model, w.strategy, w.lr, rung - 1)]
        return self.grid.train_inputs(w)

    def rung_params(self, wildcards) -> dict:
        w, rung = wildcards, int(wildcards.rung)
        return {
            "run": self.grid.params.train(w.dataset, w.model, w.strategy, w.lr, w.seed),
            "rung": rung,
            "budget": self.budgets(w.model)[rung],
            # The last decision compares every arm: slow starters first reach the epoch
            # from which their strategy may stop (docs/search.md).
            "settle": rung == self.grid.search.last_decision,
            "out": self.rung_path(w.dataset, w.model, w.strategy, w.lr, rung),
        }

    def recommendation_files(self, dataset: str, model: str) -> dict[str, str]:
        folder = f"{self.grid.results}/{dataset}/{model}"
        return {
            "md": f"{folder}/recommendation.md",
            "csv": f"{folder}/recommendation.csv",
            "png": f"{folder}/search_curves.png",
        }

    def targets(self) -> list[str]:
        """The recommendations, and FT's full-protocol runs: they wait for no decision, so
        they are asked for from the start and run beside the rungs."""
        return [
            path
            for d in self.grid.datasets
            for m in self.grid.config["models"]
            for path in [
                *self.recommendation_files(d, m).values(),
                *(
                    f"{self.grid.run_dir(d, m, s, lr, seed)}/metrics.json"
                    for s, lr in self.reference_arms(d)
                    for seed in self.grid.config["seeds"]
                ),
            ]
        ]

    def runs(self, dataset: str, model: str, finalists) -> list[dict]:
        """Every run the search trains: each arm's seed 0, every seed of the finalists (rows
        of ``medft.search.rungs.finalists``) and of FT's arms, and the runs those start from
        (LP-FT's LP)."""
        runs = {(s, lr, self.seed) for s, lr in self.arms(dataset)}
        seeds = self.grid.config["seeds"]
        runs |= {(s, lr, seed) for s, lr in self.reference_arms(dataset) for seed in seeds}
        for arm in finalists.itertuples():
            first = self.grid.first_stage(arm.strategy)
            for seed in self.grid.config["seeds"][1:]:
                runs.add((arm.strategy, arm.lr, seed))
                if first:
                    runs.add((first, arm.lr, seed))
        return [
            {
                "strategy": s,
                "lr": lr,
                "seed": seed,
                "dir": self.grid.run_dir(dataset, model, s, lr, seed),
            }
            for s, lr, seed in sorted(runs)
        ]

    def costs(self, dataset: str, model: str) -> dict:
        """What the recommendation reports about cost: the training images, each strategy's
        epoch time on the cost model's reference GPU (``medft plan``), and the hours of
        training epochs the whole grid would take there."""
        c = self.grid.config
        counts, _ = self.grid.cost.counts(dataset, model)
        epoch_s = {s: self.grid.cost.epoch_seconds(dataset, model, s) for s in c["strategies"]}
        runs = self.grid.runs_per_strategy(dataset)
        typical = min(c["epochs"], self.grid.cost.settings.typical_epochs)
        return {
            "n_train": int(counts["train"]),
            "n_images": int(sum(counts.values())),
            # Strategies that train a head on shared features: their epochs pass no image
            # through the backbone; the features job passes each image once.
            "head_only": [s for s in c["strategies"] if self.grid.features_file(dataset, model, s)],
            "epoch_s": epoch_s,
            "split": c["early_stop_on"],
            "grid_hours_typical": sum(epoch_s.values()) * runs * typical / 3600,
            "grid_hours_upper": sum(epoch_s.values()) * runs * c["epochs"] / 3600,
        }
