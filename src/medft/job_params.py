"""Each job's parameters, as its rule passes them to its script: the keyword arguments of
``medft.engine.TrainConfig`` for a train job, of ``features_job`` for a features job.
``Grid.params`` is what the rules read."""

from __future__ import annotations

from pathlib import Path


class JobParams:
    def __init__(self, grid) -> None:
        self.grid = grid

    def train(self, dataset, model, strategy, lr, seed) -> dict:
        """Keyword arguments of ``medft.engine.TrainConfig`` for one cell."""
        c = self.grid.config
        entry = self.grid.datasets[dataset]
        run = {
            "data": str(Path(self.grid.prepared(dataset, model)).parent),
            "model": model,
            "weights": c["weights"],
            "strategy": strategy,
            "lr": float(lr),
            "seed": int(seed),
            "out": self.grid.run_dir(dataset, model, strategy, lr, seed),
            "epochs": c["epochs"],
            "patience": c["patience"],
            "early_stop_on": c["early_stop_on"],
            "batch_size": c["batch_size"],
            "workers": c["loader_workers"],
            "main_metric": entry.get("main_metric"),
            "options": c["strategy_options"],
        }
        run["features"] = self.grid.features_file(dataset, model, strategy)
        run["backbone"] = self.grid.backbone_record(model)
        first = self.grid.first_stage(strategy)
        if first:
            run["init"] = f"{self.grid.run_dir(dataset, model, first, lr, seed)}/best.pt"
        return run

    def features(self, dataset: str, model: str) -> dict:
        """Keyword arguments of ``features_job`` for one (dataset, model)."""
        return {
            "data": str(Path(self.grid.prepared(dataset, model)).parent),
            "model": model,
            "weights": self.grid.config["weights"],
            "batch_size": self.grid.config["batch_size"],
            "workers": self.grid.config["loader_workers"],
            "out": self.grid.features_path(dataset, model),
            "backbone": self.grid.backbone_record(model),
        }
