"""The report's part of the plan: where a config's report goes, which files the workflow
expects of it (from ``medft.report.artefacts.ARTEFACTS``), and the protocol line of its
captions. ``Grid.report_plan`` is what workflow/rules/report.smk reads."""

from __future__ import annotations

from medft.workflow import Grid


class ReportPlan:
    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def protocol(self) -> str:
        """One sentence naming the choices that made this grid's numbers, for captions: the
        selection, and what each of the grid's strategies says of its own options."""
        from medft.strategies import STRATEGIES

        c, o = self.grid.config, self.grid.strategy_options
        choices = [STRATEGIES.get(s).caption(o) for s in c["strategies"]]
        return (
            f"Protocol: early stopping on {c['early_stop_on']}, lr chosen on "
            f"{c['select_lr_on']}; frozen BatchNorm {o.frozen_bn}"
            + "".join(f"; {choice}" for choice in choices if choice)
            + "."
        )

    @property
    def folder(self) -> str:
        """Everything derived from this config's runs: keyed by the config's ``name``, so
        that two configs sharing a results folder never overwrite each other's report."""
        return f"{self.grid.results}/report/{self.grid.config['name']}"

    def dataset_files(self, dataset: str) -> dict[str, str]:
        """What ``medft.report.artefacts.dataset_artefacts`` writes for one dataset, by
        output key: every dataset artefact the grid's strategies call for."""
        return self._files("dataset", f"{self.folder}/{dataset}")

    def summary_files(self) -> dict[str, str]:
        return self._files("summary", f"{self.folder}/summary")

    def _files(self, scope: str, folder: str) -> dict[str, str]:
        from medft.report.artefacts import artefacts_of

        return {
            name.replace(".", "_"): f"{folder}/{name}"
            for entry in artefacts_of(scope)
            if entry.expected(self.grid.config)
            for name in entry.files
        }

    def targets(self) -> list[str]:
        return [
            *(p for d in self.grid.datasets for p in self.dataset_files(d).values()),
            *self.summary_files().values(),
        ]

    def metrics(self, dataset: str) -> list[str] | None:
        return self.grid.datasets[dataset].get("report_metrics")
