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


def run_torch_job_here(job: str, kwargs: dict, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    TORCH_JOBS[job](**kwargs)


def train_job(run: dict) -> None:
    from medft.engine import TrainConfig, train
    from medft.strategies import StrategyOptions

    train(TrainConfig(**{**run, "options": StrategyOptions(**run["options"])}))


def features_job(
    data: str, model: str, weights: str, batch_size: int, workers: int, out: str
) -> None:
    from medft import features

    features.extract(data, model, weights, out, batch_size=batch_size, workers=workers)


TORCH_JOBS = {"train": train_job, "features": features_job}


def aggregate_job(metrics_files: list[str], runs_out: str, epochs_out: str) -> None:
    from medft.report import collect_epochs, collect_runs

    collect_runs(metrics_files).to_parquet(runs_out, index=False)
    collect_epochs(metrics_files).to_parquet(epochs_out, index=False)


def concat_job(inputs: list[str], output: str) -> None:
    import pandas as pd

    pd.concat([pd.read_parquet(p) for p in inputs], ignore_index=True).to_parquet(
        output, index=False
    )


DIVERGED_NOTE = (
    " †: at least one seed diverged; its metrics are from its best epoch before divergence "
    "(`diverged` in its metrics.json)."
)


def table_job(runs: str, select_on: str, md: str, csv: str, png: str, protocol: str = "") -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    from medft.report import (
        dataset_table,
        plot_relative_improvement,
        relative_improvement,
        summarise,
    )

    summary = summarise(pd.read_parquet(runs), select_on)
    dataset = summary["dataset"].iloc[0]
    summary.to_csv(csv, index=False)
    table = dataset_table(summary)
    metric = summary["main_metric"].iloc[0]
    Path(md).write_text(
        f"# {dataset}\n\nTest-split metrics in percent, mean ± standard error over "
        f"{int(summary['n_seeds'].max())} seed(s), at the lr chosen on the {select_on} "
        f"{metric}. Bold: best strategy per model."
        + (DIVERGED_NOTE if summary["n_diverged"].any() else "")
        + (f" {protocol}" if protocol else "")
        + "\n\n"
        + table.to_markdown(index=False)
        + "\n"
    )
    figure = plot_relative_improvement(
        relative_improvement(summary), f"{dataset}: relative improvement over FT"
    )
    figure.savefig(png, dpi=120)
    plt.close(figure)


def summary_job(runs: str, select_on: str, outputs: dict[str, str]) -> None:
    import pandas as pd

    from medft.report import best_combination, effectiveness, summarise

    summary = summarise(pd.read_parquet(runs), select_on)
    for name, frame in (
        ("best_combination", best_combination(summary)),
        ("effectiveness", effectiveness(summary)),
    ):
        frame.to_csv(outputs[f"{name}_csv"], index=False)
        Path(outputs[f"{name}_md"]).write_text(
            frame.to_markdown(index=False, floatfmt=".2f") + "\n"
        )
