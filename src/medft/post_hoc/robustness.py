"""Robustness to distribution shift, which LP-FT's claim is about (Kumar et al., ICLR 2022)
and the paper never tests: every strategy's checkpoints at its chosen lr, each seed,
evaluated on corrupted copies of the evaluation split (``corruptions``), the noise drawn by
the run's seed so that every strategy sees the same images. Each pass's per-image scores are
kept (``robustness_scores.parquet``) so that the report's verdicts resample the images' patients
as the main statistics do."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from medft.checkpoints import prediction_frame
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
) -> tuple[list[dict], pd.DataFrame]:
    """The main metric clean and under every corruption at ``severities``, on the same
    ``images`` of the evaluation split (``evenly_spaced``); and every pass's scores, one row
    per image (``checkpoints.prediction_frame`` with its corruption and severity)."""
    clean = evaluation.splits[SPLIT]
    rows = evenly_spaced(len(clean), images)
    passes = [("none", 0)] + [
        (corruption, severity)
        for corruption in CORRUPTIONS
        for severity in severities
        if severity <= len(SEVERITIES[corruption])
    ]
    kept = len(clean) if rows is None else len(rows)
    meta = evaluation.meta
    results, scores = [], []
    try:
        for corruption, severity in passes:
            if rows is not None or severity:
                # severity 0 corrupts nothing: the clean score on the kept rows
                evaluation.splits[SPLIT] = CorruptedSplit(
                    clean, corruption if severity else CORRUPTIONS[0], severity, seed, rows
                )
            _, metrics, probabilities = evaluation.evaluate(SPLIT)
            results.append(
                {
                    "corruption": corruption,
                    "severity": severity,
                    "value": metrics[main],
                    "images": kept,
                }
            )
            frame = prediction_frame(
                evaluation.splits[SPLIT], SPLIT, probabilities, meta.classes, meta.multilabel
            )
            scores.append(frame.assign(corruption=corruption, severity=severity))
    finally:
        evaluation.splits[SPLIT] = clean
    return results, pd.concat(scores, ignore_index=True)


def run(job: Job) -> None:
    from medft.runtime import progress

    chosen = job.chosen()
    rows, scores = [], []
    # One network per strategy: each of its seeds only loads its weights into it.
    evaluations: dict[str, Evaluation] = {}
    for run in progress(list(chosen.itertuples()), len(chosen), "robustness", unit="runs"):
        summary = summary_of(run.run_dir)
        if run.strategy not in evaluations:
            evaluations[run.strategy] = Evaluation(summary, job.batch_size)
        evaluation = evaluations[run.strategy]
        evaluation.load(best_state(run.run_dir))
        cell = {
            "model": run.model,
            "strategy": run.strategy,
            "lr": run.lr,
            "seed": run.seed,
            "run_dir": run.run_dir,
        }
        results, run_scores = evaluate_corrupted(
            evaluation, int(run.seed), summary["main_metric"], job.severities, job.images
        )
        rows += [{**cell, **row} for row in results]
        scores.append(run_scores.assign(**cell))
    dataset, main = chosen["dataset"].iloc[0], chosen["main_metric"].iloc[0]
    tables = {
        "robustness_scores": f"{job.folder}/robustness_scores.parquet",
        "robustness": f"{job.folder}/robustness.parquet",
    }
    pd.concat(scores, ignore_index=True).assign(dataset=dataset).to_parquet(
        tables["robustness_scores"], index=False
    )
    frame = pd.DataFrame(rows).assign(dataset=dataset, main_metric=main)
    frame.to_parquet(tables["robustness"], index=False)
    write_index(job, [], tables)
