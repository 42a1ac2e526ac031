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
    # The derived rows it adds, given the grid's strategies and their options.
    rows: Callable[[list[str], object], list[str]] = lambda strategies, options: []
    reads_features: bool = False
    reads_weights: bool = False  # every run's best.pt (refused under `checkpoints: none`)
    # Images it passes through a network, from the split sizes and the grid's config (for the
    # cost model and the scheduler's time limit).
    passes: Callable[[dict, dict], int] = lambda counts, config: 0

    def run(self, job) -> None:
        module, function = self.job.split(":")
        getattr(import_module(module), function)(job)

    def rows_for(self, strategies: list[str], options=None) -> list[str]:
        """The derived rows a grid of ``strategies`` gets (``options``: its
        ``StrategyOptions``, default when None)."""
        from medft.strategies import StrategyOptions

        return self.rows(strategies, options or StrategyOptions())


def wise_ends(strategies: list[str], options) -> dict[str, tuple[str, str]]:
    """WiSE's rows and the two solutions each interpolates, read from the strategies' traits:
    the strategy that trains a head on the frozen backbone's features (LP), with the
    reference and with every strategy that starts from its solution (LP-FT)."""
    from medft.strategies import REFERENCE, STRATEGIES

    heads = [s for s in strategies if STRATEGIES.get(s).shares_features(options)]
    ends = {}
    for start in heads:
        for end in strategies:
            if end == REFERENCE or STRATEGIES.get(end).starts_from(options) == start:
                ends[f"WiSE({start}, {end})"] = (start, end)
    return ends


POST_HOC: Registry[PostHocInfo] = Registry("post-hoc evaluation")


def register_post_hoc(info: PostHocInfo) -> PostHocInfo:
    return POST_HOC.register(info.name)(info)


def robustness_passes(counts: dict, config: dict) -> int:
    """Clean + 4 corruptions (corruptions.py, not imported: it loads torch, which the planner
    does without) × the config's severities, on its images of the evaluation split, for every
    strategy's chosen lr and every seed."""
    images = min(counts["test"], config["robustness_images"] or counts["test"])
    passes = 1 + 4 * len(config["robustness_severities"])
    return len(config["strategies"]) * len(config["seeds"]) * passes * images


register_post_hoc(
    PostHocInfo(
        "probes",
        "kNN (cosine) and logistic-regression probes on the frozen backbone's cached features",
        "medft.post_hoc.probes:run",
        rows=lambda strategies, options: ["kNN", "LogReg"],
        reads_features=True,
    )
)
register_post_hoc(
    PostHocInfo(
        "wise",
        "WiSE-FT: the LP and FT (and LP-FT) weights of each lr and seed interpolated, α chosen "
        "among 0.1-0.9 on the selection split",
        "medft.post_hoc.wise:run",
        reads_weights=True,
        rows=lambda strategies, options: list(wise_ends(strategies, options)),
        # 11 values of α on both evaluated splits, for each row's lrs and seeds
        passes=lambda counts, config: (
            2
            * len(config["lrs"])
            * len(config["seeds"])
            * 11
            * (counts.get("val", 0) + counts.get("test", 0))
        ),
    )
)
register_post_hoc(
    PostHocInfo(
        "robustness",
        "every strategy's chosen-lr checkpoints on corrupted copies of the evaluation split "
        "(noise, blur, contrast, JPEG; the config's robustness_severities of 1-5)",
        "medft.post_hoc.robustness:run",
        reads_weights=True,
        passes=robustness_passes,
    )
)


def derived_rows(config: dict) -> list[str]:
    """Every derived row the config's post-hoc evaluations add to its tables."""
    from medft.strategies import StrategyOptions

    options = StrategyOptions(**config.get("strategy_options", {}))
    return [
        row
        for name in config.get("post_hoc", [])
        for row in POST_HOC.get(name).rows_for(config["strategies"], options)
    ]


def folder(model_dir: str, name: str) -> str:
    """Where evaluation ``name`` of one (dataset, model) writes: ``model_dir`` is
    ``<results>/<dataset>/<model>``."""
    return f"{model_dir}/post_hoc/{name}"
