"""Evaluations of a finished grid that train nothing: they read its checkpoints, predictions
and cached features (docs/report.md, "After training").

A ``PostHocInfo`` entry carries what the planner and the report need: the rows it adds to the
tables beside the strategies (each a *derived run*: a ``metrics.json`` and its predictions in
the runs' own format, so the tables, statistics and verdicts treat it like any strategy), the
strategies whose runs it needs, whether it reads the shared features, and its job, imported
only when it runs. Adding one is a module with its job and one ``register_post_hoc`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from medft.registry import Registry


@dataclass(frozen=True)
class PostHocInfo:
    name: str
    summary: str
    job: str  # "module:function", called with a ``context.Job``
    rows: tuple[str, ...] = ()  # derived rows, by the strategies they need (``row_needs``)
    row_needs: tuple[tuple[str, ...], ...] = ()
    reads_features: bool = False
    # Images it passes through a network, from the split sizes and the grid's strategies,
    # lrs and seeds (for the cost model and the scheduler's time limit).
    passes: Callable[[dict, int, int, int], int] = lambda counts, strategies, lrs, seeds: 0

    def run(self, job) -> None:
        module, function = self.job.split(":")
        getattr(import_module(module), function)(job)

    def rows_for(self, strategies: list[str]) -> list[str]:
        """The derived rows a grid of ``strategies`` gets."""
        return [
            row
            for row, needs in zip(self.rows, self.row_needs, strict=True)
            if all(s in strategies for s in needs)
        ]


POST_HOC: Registry[PostHocInfo] = Registry("post-hoc evaluation")


def register_post_hoc(info: PostHocInfo) -> PostHocInfo:
    return POST_HOC.register(info.name)(info)


register_post_hoc(
    PostHocInfo(
        "probes",
        "kNN (cosine) and logistic-regression probes on the frozen backbone's cached features",
        "medft.post_hoc.probes:run",
        rows=("kNN", "LogReg"),
        row_needs=((), ()),
        reads_features=True,
    )
)
register_post_hoc(
    PostHocInfo(
        "wise",
        "WiSE-FT: the LP and FT (and LP-FT) weights of each lr and seed interpolated, α chosen "
        "on the selection split",
        "medft.post_hoc.wise:run",
        rows=("WiSE(LP, FT)", "WiSE(LP, LP-FT)"),
        row_needs=(("LP", "FT"), ("LP", "LP-FT")),
        # 11 values of α on both evaluated splits, for each row's lrs and seeds
        passes=lambda counts, strategies, lrs, seeds: (
            2 * lrs * seeds * 11 * (counts.get("val", 0) + counts.get("test", 0))
        ),
    )
)
register_post_hoc(
    PostHocInfo(
        "robustness",
        "every strategy's chosen-lr checkpoints on corrupted copies of the evaluation split "
        "(noise, blur, contrast, JPEG; severities 1-5)",
        "medft.post_hoc.robustness:run",
        # clean + 4 corruptions × 5 severities, every strategy's chosen lr, every seed
        passes=lambda counts, strategies, lrs, seeds: strategies * seeds * 21 * counts["test"],
    )
)


def derived_rows(config: dict) -> list[str]:
    """Every derived row the config's post-hoc evaluations add to its tables."""
    return [
        row
        for name in config.get("post_hoc", [])
        for row in POST_HOC.get(name).rows_for(config["strategies"])
    ]


def folder(model_dir: str, name: str) -> str:
    """Where evaluation ``name`` of one (dataset, model) writes: ``model_dir`` is
    ``<results>/<dataset>/<model>``."""
    return f"{model_dir}/post_hoc/{name}"
