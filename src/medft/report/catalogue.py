"""The registry of report artefacts: what an entry carries and how a writer registers.

An entry holds the artefact's file stem and formats, its scope (one per dataset, or one
across datasets), when the workflow expects it, when the evidence allows it, and its writer,
whose docstring is the artefact's entry in docs/report.md (``make docs`` writes that section
from the registry). The writers live in ``dataset_writers`` and ``summary_writers``;
``medft.report.artefacts`` loads them and writes reports.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from medft.registry import Registry

DATASET, SUMMARY = "dataset", "summary"


def _always(_) -> bool:
    return True


@dataclass(frozen=True)
class Artefact:
    stem: str
    formats: tuple[str, ...]
    scope: str  # DATASET: one per dataset; SUMMARY: one across datasets
    # Writes ``<stem>.<format>`` for each of its formats: (DatasetReport | SummaryReport, stem).
    write: Callable
    # Whether the workflow expects it, given the (validated) config: its strategies (read as
    # traits), its axes.
    expected: Callable[[dict], bool] = _always
    # Whether the evidence at hand allows it (published means have no runs, logs or
    # predictions; one seed has no statistics).
    available: Callable[[object], bool] = _always

    @property
    def files(self) -> list[str]:
        return [f"{self.stem}.{extension}" for extension in self.formats]

    @property
    def description(self) -> str:
        """What the artefact holds, for docs/report.md: its writer's docstring."""
        doc = inspect.getdoc(self.write)
        if not doc:
            raise ValueError(f"the writer of artefact {self.stem!r} has no docstring")
        return " ".join(doc.split())


ARTEFACTS: Registry[Artefact] = Registry("report artefact")


def artefact(stem: str, formats: tuple[str, ...], scope: str = DATASET, **traits):
    """Register the decorated writer as the artefact ``stem``."""

    def register(write: Callable) -> Callable:
        ARTEFACTS.register(stem)(Artefact(stem, formats, scope, write, **traits))
        return write

    return register


def artefacts_of(scope: str) -> list[Artefact]:
    return [a for name in ARTEFACTS.names() if (a := ARTEFACTS.get(name)).scope == scope]
