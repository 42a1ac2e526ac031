"""The workflow's job entry points: what ``workflow/scripts/*.py`` call with values read from
the ``snakemake`` object, each writing its job's log (``log_to``)."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from medft.data.preprocess import Preprocess


@contextmanager
def log_to(path: str | Path):
    """Send logging and stderr (progress included) to a job's log file. A known user error
    (``medft.errors.USER_ERRORS``) ends the job as one line, in the log and on the terminal,
    instead of a traceback."""
    from medft.errors import USER_ERRORS

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    failure = None
    with open(path, "a") as log:
        old_stderr, sys.stderr = sys.stderr, log
        handler = logging.StreamHandler(log)
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        try:
            yield
        except USER_ERRORS as error:
            log.write(f"error: {error}\n")
            failure = error
        finally:
            sys.stderr = old_stderr
            logging.getLogger().removeHandler(handler)
    if failure is not None:
        raise SystemExit(f"medft: {failure} (log: {path})")


def prepare_job(dataset: str, options: dict, resize: int, crop: int, out_dir: str) -> None:
    from medft.data.sources import prepare_dataset

    prepare_dataset(dataset, options, Preprocess(resize, crop), out_dir)


@contextmanager
def threads_held_to(threads: int):
    """Every thread pool a job's libraries start, held to the job's threads: torch's is not
    the only one — numpy's OpenBLAS, scikit-learn's OpenMP and Arrow's (Parquet) start a
    thread per CPU, so a report's bootstrap, a probe or a table read would run that many in a
    job the scheduler counted as ``threads`` (Snakemake sets OMP_NUM_THREADS for shell jobs
    only). Restored on leaving, for a job run in a process that goes on (the CLI, a test)."""
    import pyarrow
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads(), pyarrow.cpu_count()
    torch.set_num_threads(threads)
    pyarrow.set_cpu_count(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before[0])
        pyarrow.set_cpu_count(before[1])


def run_torch_job_here(job: str, kwargs: dict, threads: int) -> None:
    with threads_held_to(threads):
        TORCH_JOBS[job](**kwargs)


def train_job(run: dict, keep_best: bool = True) -> None:
    """One cell; ``keep_best`` False (``checkpoints: none``) deletes its best.pt once its
    metrics.json is written, so no run is left without either."""
    from medft.engine import TrainConfig, train
    from medft.strategies import StrategyOptions

    train(TrainConfig(**{**run, "options": StrategyOptions(**run["options"])}))
    if not keep_best:
        (Path(run["out"]) / "best.pt").unlink(missing_ok=True)


def features_job(
    data: str,
    model: str,
    weights: str,
    batch_size: int,
    workers: int,
    out: str,
    backbone: dict | None = None,
) -> None:
    from medft import features

    features.extract(
        data, model, weights, out, batch_size=batch_size, workers=workers, backbone=backbone
    )


def search_rung_job(run: dict, rung: int, budget: int, settle: bool, out: str) -> None:
    from medft.engine import TrainConfig
    from medft.search.progress import advance
    from medft.strategies import StrategyOptions

    config = TrainConfig(**{**run, "options": StrategyOptions(**run["options"])})
    advance(config, rung, budget, settle, out)


def search_decision_job(results: list[str], eta: int, out: str) -> None:
    from medft.runtime import atomic_write_text
    from medft.search.progress import read_results
    from medft.search.rungs import decide

    decision = decide(read_results(results), eta)
    atomic_write_text(decision.to_csv(index=False), Path(out))


def recommendation_job(
    finalist_metrics: list[str],
    decisions: list[str],
    arm_runs: list[dict],
    budgets: list[int],
    select_on: str,
    title: str,
    costs: dict,
    outputs: dict[str, str],
    margin: float | None = None,
) -> None:
    """The recommendation of one (dataset, model): ``arm_runs`` are every run the search
    trained ({strategy, lr, seed, dir}: each arm's seed 0, the finalists' other seeds);
    ``margin``: the equivalence margin in points."""
    import pandas as pd

    from medft.report.collect import collect_runs
    from medft.search import recommend
    from medft.search.rungs import finalists, read_decision

    runs = collect_runs(finalist_metrics)
    tasks = dict(zip(runs["dataset"], runs["task"], strict=False))
    steps = [read_decision(p) for p in decisions]
    table = recommend.finalist_table(
        runs, recommend.with_reference(runs, finalists(steps)), select_on
    )
    logs = pd.concat(
        [
            pd.read_csv(Path(r["dir"]) / "epochs.csv").assign(
                strategy=r["strategy"], lr=r["lr"], seed=r["seed"]
            )
            for r in arm_runs
        ],
        ignore_index=True,
    )
    spent = recommend.search_cost(
        logs, costs["n_train"], costs["epoch_s"], costs["head_only"], costs["n_images"]
    )
    recommend.write(
        outputs["md"],
        outputs["csv"],
        outputs["png"],
        title,
        table,
        recommend.compare(
            runs, table, tasks, margin=margin, family=len(costs["epoch_s"]) - 1, select_on=select_on
        ),
        steps,
        budgets,
        recommend.seed0_curves(logs, runs["main_metric"].iloc[0], costs["split"]),
        {**spent, **costs},
    )


def aggregate_job(inputs: list[str], runs_out: str, epochs_out: str) -> None:
    """The runs of one dataset: the grid's ``metrics.json`` files and the derived runs the
    post-hoc evaluations' index files list (they have no epochs)."""
    from medft.post_hoc.context import derived_metrics_files
    from medft.report.collect import collect_epochs, collect_runs

    trained = [path for path in inputs if path.endswith("metrics.json")]
    derived = derived_metrics_files(
        [path for path in inputs if path.endswith(".json") and not path.endswith("metrics.json")]
    )
    collect_runs(trained + derived).to_parquet(runs_out, index=False)
    collect_epochs(trained).to_parquet(epochs_out, index=False)


def post_hoc_job(name: str, inputs: list[str], params: dict) -> None:
    """One post-hoc evaluation of one (dataset, model): ``inputs`` are its finished runs'
    ``metrics.json`` files and, where it reads them, the shared features."""
    from medft.post_hoc import POST_HOC
    from medft.post_hoc.context import Job

    runs = [path for path in inputs if path.endswith("metrics.json")]
    features = next((path for path in inputs if not path.endswith("metrics.json")), None)
    Path(params["folder"]).mkdir(parents=True, exist_ok=True)
    POST_HOC.get(name).run(Job(runs, features=features, **params))


def dataset_report_job(
    runs: str,
    epochs: str,
    select_on: str,
    outputs: dict[str, str],
    metrics: list[str] | None = None,
    protocol: str = "",
    margin: float | None = None,
    data: str | None = None,
) -> None:
    """One dataset's tables, statistics, figures and data card; ``outputs`` are the rule's
    files, all in one folder, and must be what ``dataset_artefacts`` writes; ``margin``: the
    equivalence margin in points; ``data``: the prepared dataset's folder."""
    import pandas as pd

    from medft.report.artefacts import dataset_artefacts
    from medft.report.evidence import Evidence

    evidence = Evidence.from_runs(
        pd.read_parquet(runs), select_on, pd.read_parquet(epochs), margin=margin
    )
    evidence.data_folder = data
    folder = Path(next(iter(outputs.values()))).parent
    written = {str(p) for p in dataset_artefacts(evidence, folder, metrics, protocol)}
    declared = {str(Path(p)) for p in outputs.values()}
    if declared != written:  # undeclared files would silently miss the HTML report
        raise RuntimeError(
            f"the report did not write {sorted(declared - written)} and wrote undeclared "
            f"{sorted(written - declared)}: the rule's outputs must be ARTEFACTS' files"
        )


# The jobs that import torch (the report's calibration does, through torchmetrics): the ones
# the warm worker runs (``medft.warm``) when ``warm_worker`` is on.
TORCH_JOBS = {
    "train": train_job,
    "features": features_job,
    "search_rung": search_rung_job,
    "post_hoc": post_hoc_job,
    "dataset_report": dataset_report_job,
}


def summary_report_job(inputs: list[str], outputs: list[str], blocks: str = "dataset") -> None:
    """Across datasets: ``inputs`` are files of each dataset's report folder (datasets in
    order), ``outputs`` the summary's files, all in one folder; ``blocks``: config's
    ``across_blocks``."""
    from medft.report.artefacts import summary_artefacts
    from medft.report.evidence import Evidence

    folders = dict.fromkeys(str(Path(p).parent) for p in inputs)
    summary_artefacts([Evidence.load(f) for f in folders], Path(outputs[0]).parent, blocks)


def partial_report_job(config: dict, out: str) -> None:
    """The report of what the grid's finished runs allow (``medft.report.results_folder``)."""
    from medft.report.results_folder import report_from_results
    from medft.workflow import Grid

    _, missing = report_from_results(Grid(config), out)
    print(f"{len(missing)} cell(s) without results, listed in each dataset's missing_cells")
