"""Robustness to distribution shift, which LP-FT's claim is about (Kumar et al., ICLR 2022)
and the paper never tests: every strategy's checkpoints at its chosen lr, each seed,
evaluated on corrupted copies of the evaluation split (``corruptions``), the noise drawn by
the run's seed so that every strategy sees the same images."""

from __future__ import annotations

import logging

import pandas as pd

from medft.post_hoc.context import Evaluation, Job, best_state, summary_of, write_index
from medft.post_hoc.corruptions import CORRUPTIONS, SEVERITIES, CorruptedSplit

log = logging.getLogger(__name__)
SPLIT = "test"  # the evaluation split


def evaluate_corrupted(
    evaluation: Evaluation, seed: int, main: str, severities=(1, 2, 3, 4, 5)
) -> list[dict]:
    clean = evaluation.splits[SPLIT]
    rows = [{"corruption": "none", "severity": 0, "value": evaluation.evaluate(SPLIT)[1][main]}]
    try:
        for corruption in CORRUPTIONS:
            for severity in (s for s in severities if s <= len(SEVERITIES[corruption])):
                evaluation.splits[SPLIT] = CorruptedSplit(clean, corruption, severity, seed)
                value = evaluation.evaluate(SPLIT)[1][main]
                rows.append({"corruption": corruption, "severity": severity, "value": value})
    finally:
        evaluation.splits[SPLIT] = clean
    return rows


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
                evaluation, int(run.seed), summary["main_metric"], job.severities
            )
        ]
    table = f"{job.folder}/robustness.parquet"
    frame = pd.DataFrame(rows).assign(dataset=chosen["dataset"].iloc[0])
    frame.assign(main_metric=chosen["main_metric"].iloc[0]).to_parquet(table, index=False)
    write_index(job, [], {"robustness": table})
