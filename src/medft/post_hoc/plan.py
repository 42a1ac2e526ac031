"""The post-hoc evaluations' part of the plan: which run, on what, and where they write.
``Grid.post_hoc_plan`` is what workflow/rules/post_hoc.smk reads."""

from __future__ import annotations

from medft.post_hoc import POST_HOC, folder


class PostHocPlan:
    def __init__(self, grid) -> None:
        self.grid = grid

    @property
    def names(self) -> list[str]:
        return list(self.grid.config.get("post_hoc", []))

    def index(self, dataset: str, model: str, name: str) -> str:
        return f"{folder(self.model_dir(dataset, model), name)}.json"

    def model_dir(self, dataset: str, model: str) -> str:
        return f"{self.grid.results}/{dataset}/{model}"

    def indexes(self, dataset: str) -> list[str]:
        """Every post-hoc output of ``dataset``: what its report waits for."""
        return [
            self.index(dataset, model, name)
            for model in self.grid.config["models"]
            for name in self.names
        ]

    def inputs(self, wildcards) -> list[str]:
        """The finished runs of the (dataset, model), and the shared features where read."""
        w = wildcards
        runs = [
            f"{self.grid.run_dir(*cell)}/metrics.json"
            for cell in self.grid.cells(w.dataset)
            if cell[1] == w.model
        ]
        if POST_HOC.get(w.evaluation).reads_features:
            runs.append(self.grid.features_path(w.dataset, w.model))
        return runs

    def params(self, dataset: str, model: str, name: str) -> dict:
        """Keyword arguments of ``medft.post_hoc.context.Job``, but the input files."""
        return {
            "folder": folder(self.model_dir(dataset, model), name),
            "index": self.index(dataset, model, name),
            "rows": POST_HOC.get(name).rows_for(
                self.grid.config["strategies"], self.grid.strategy_options
            ),
            "select_on": self.grid.config["select_lr_on"],
            "batch_size": self.grid.config["batch_size"],
            "severities": tuple(self.grid.config["robustness_severities"]),
            "images": self.grid.config["robustness_images"],
        }
