"""``medft report RESULTS_DIR``: every artefact the finished runs of a results folder allow, at
any time — provisional while the grid runs, final when some cells failed for good.

The grid a folder was meant to hold is the one the workflow recorded when it started
(``grids/<name>.json``, ``record_grid``), or the config given with ``--configfile``; each
cell's state is ``medft.status``'s. Finished runs are reported as the workflow would (the
same ``Evidence`` and writers); the cells without a ``metrics.json`` are listed, with their
state and their log's last error, in ``missing_cells`` of their dataset and in the captions of
its tables. Statistics pair seeds on the runs present (``verdicts.complete_pairs``): a missing
run drops its pair only, and the n used is in the statistics table. Nothing is imputed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from medft.errors import ConfigError
from medft.report.evidence import Evidence

GRIDS = "grids"


def record_grid(config: dict) -> Path:
    """The grid a results folder is meant to hold, written when the workflow starts."""
    folder = Path(config["results"]) / GRIDS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{config['name']}.json"
    text = json.dumps(config, indent=1, default=str)
    if path.exists() and path.read_text() == text:
        return path  # unchanged: its date says when the grid last changed
    partial = path.with_suffix(".json.partial")
    partial.write_text(text)
    partial.replace(path)
    return path


def grid_of(results: str | Path, configfiles: list[str] | None = None):
    """The grid of ``results``: from ``configfiles`` when given, else the one recorded there."""
    from medft.workflow import Grid, load_config

    results = Path(results)
    if not results.is_dir():
        raise ConfigError(f"{results}: no such results folder")
    if configfiles:
        config = load_config(configfiles)
    else:
        recorded = sorted((results / GRIDS).glob("*.json"))
        if len(recorded) != 1:
            found = ", ".join(p.stem for p in recorded) or "none"
            raise ConfigError(
                f"{results}: {len(recorded)} recorded grids ({found}) in {results / GRIDS}; "
                "name the grid's config: medft report RESULTS_DIR --configfile CONFIG.yaml"
            )
        config = json.loads(recorded[0].read_text())
    # The folder as given wins over the config's path: a results folder can be moved or copied.
    return Grid({**config, "results": str(results)})


def missing_note(missing: pd.DataFrame, shown: int = 8) -> str:
    """A caption sentence naming the cells without results (the first ``shown`` of them)."""
    if missing.empty:
        return ""
    counts = ", ".join(f"{n} {state}" for state, n in missing["state"].value_counts().items())
    named = "; ".join(
        f"{c.model} {c.strategy} lr{c.lr} seed{c.seed}" for c in missing.head(shown).itertuples()
    )
    more = f"; and {len(missing) - shown} more" if len(missing) > shown else ""
    return (
        f" Incomplete: {len(missing)} cell(s) of this dataset have no results ({counts}): "
        f"{named}{more} (missing_cells); statistics pair the seeds present."
    )


def report_from_results(
    grid,
    out: str | Path,
    select_on: str | None = None,
    margin: float | None = None,
    blocks: str | None = None,
) -> tuple[list[Path], pd.DataFrame]:
    """Write the report of what ``grid``'s results folder holds (``grid_of``) into ``out``;
    returns the files written and every cell without results (dataset, model, strategy, lr,
    seed, state, message). The config's report options unless given."""
    from medft.post_hoc.context import derived_metrics_files
    from medft.report.artefacts import write_report
    from medft.report.collect import collect_epochs, collect_runs
    from medft.status import cell_states

    config, out, results = grid.config, Path(out), grid.results
    cells = cell_states(grid)
    missing = cells[cells["state"] != "done"].reset_index(drop=True)
    items = []
    for dataset in grid.datasets:
        mine = cells[cells["dataset"] == dataset]
        done = [
            f"{grid.run_dir(c.dataset, c.model, c.strategy, c.lr, c.seed)}/metrics.json"
            for c in mine[mine["state"] == "done"].itertuples()
        ]
        if not done:
            continue
        indexes = [p for p in grid.post_hoc_plan.indexes(dataset) if Path(p).exists()]
        item = Evidence.from_runs(
            collect_runs(done + derived_metrics_files(indexes)),
            select_on or config["select_lr_on"],
            collect_epochs(done),
            margin=config["equivalence_margin"] if margin is None else margin,
        )
        prepared = Path(grid.prepared(dataset, config["models"][0])).parent
        item.data_folder = str(prepared) if (prepared / "meta.json").exists() else None
        item.missing = missing[missing["dataset"] == dataset].reset_index(drop=True)
        protocol = grid.report_plan.protocol() + missing_note(item.missing)
        items.append((item, grid.report_plan.metrics(dataset), protocol))
    if not items:
        raise ConfigError(
            f"{results}: none of the grid's {len(cells)} cells has finished (no metrics.json); "
            "`medft status` shows how far it is"
        )
    done = len(cells) - len(missing)
    title = f"medft report: {Path(results).name}" + (
        f" — incomplete, {done} of {len(cells)} cells" if len(missing) else ""
    )
    return write_report(items, out, blocks or config["across_blocks"], title), missing
