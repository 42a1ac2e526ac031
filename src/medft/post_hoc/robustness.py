"""Robustness to distribution shift, which LP-FT's claim is about (Kumar et al., ICLR 2022)
and the paper never tests: every strategy's checkpoints at its chosen lr, each seed,
evaluated on corrupted copies of the evaluation split (``corruptions``), the noise drawn by
the run's seed so that every strategy sees the same images."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from medft.post_hoc.context import Evaluation, Job, best_state, summary_of, write_index
from medft.post_hoc.corruptions import CORRUPTIONS, SEVERITIES, CorruptedSplit

log = logging.getLogger(__name__)
SPLIT = "test"  # the evaluation split


def evenly_spaced(n: int, images: int | None) -> np.ndarray | None:
    """At most ``images`` of ``n`` rows, spread over the whole split (None: all of them)."""
    if images is None or images >= n:
        return None
    return np.unique(np.linspace(0, n - 1, images).round().astype(int))


def evaluate_corrupted(
    evaluation: Evaluation,
    seed: int,
    main: str,
    severities=(1, 2, 3, 4, 5),
    images: int | None = None,
) -> list[dict]:
    """The main metric clean and under every corruption at ``severities``, on the same
    ``images`` of the evaluation split (``evenly_spaced``)."""
    clean = evaluation.splits[SPLIT]
    rows = evenly_spaced(len(clean), images)
    passes = [("none", 0)] + [
        (corruption, severity)
        for corruption in CORRUPTIONS
        for severity in severities
        if severity <= len(SEVERITIES[corruption])
    ]
    kept = len(clean) if rows is None else len(rows)
    results = []
    try:
        for corruption, severity in passes:
            if rows is not None or severity:
                # severity 0 corrupts nothing: the clean score on the kept rows
                evaluation.splits[SPLIT] = CorruptedSplit(
                    clean, corruption if severity else CORRUPTIONS[0], severity, seed, rows
                )
            value = evaluation.evaluate(SPLIT)[1][main]
            results.append(
                {"corruption": corruption, "severity": severity, "value": value, "images": kept}
            )
    finally:
        evaluation.splits[SPLIT] = clean
    return results


def run(job: Job) -> None:
    from medft.runtime import progress

    chosen = job.chosen()
    rows = []
    # One network per strategy: each of its seeds only loads its weights into it.
    evaluations: dict[str, Evaluation] = {}
    for run in progress(list(chosen.itertuples()), len(chosen), "robustness", unit="runs"):
        summary = summary_of(run.run_dir)
        if run.strategy not in evaluations:
            evaluations[run.strategy] = Evaluation(summary, job.batch_size)
        evaluation = evaluations[run.strategy]
        evaluation.load(best_state(run.run_dir))
        cell = {"model": run.model, "strategy": run.strategy, "lr": run.lr, "seed": run.seed}
        rows += [
            {**cell, **row}
            for row in evaluate_corrupted(
                evaluation, int(run.seed), summary["main_metric"], job.severities, job.images
            )
        ]
    table = f"{job.folder}/robustness.parquet"
    frame = pd.DataFrame(rows).assign(dataset=chosen["dataset"].iloc[0])
    frame.assign(main_metric=chosen["main_metric"].iloc[0]).to_parquet(table, index=False)
    write_index(job, [], {"robustness": table})
