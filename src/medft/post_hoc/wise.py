"""WiSE-FT (Wortsman et al., CVPR 2022) from the grid's own ends: for each lr and seed, the
weights of the LP solution (pretrained backbone, trained head) and of the FT solution (or
LP-FT's, which starts from that LP solution) interpolated, θ(α) = (1 − α)·θ_LP + α·θ_FT, at
α = 0, 0.1, …, 1. α = 0 is the LP run and α = 1 the FT run, evaluated again
(tests/test_post_hoc.py checks they reproduce their metrics); the row's α is chosen on the
selection split among the interior points only (``MIXED``): the ends are rows of the tables
already, and their scores on that split are biased upwards — each end was early-stopped and
its lr chosen there — so a choice that includes them leans to an end (on BreastMNIST α = 1 at
every seed, docs/beyond.md), while no interior point was selected on it."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from medft.post_hoc import wise_ends
from medft.post_hoc.context import (
    Evaluation,
    Job,
    best_state,
    summary_of,
    write_derived,
    write_index,
)

log = logging.getLogger(__name__)

ALPHAS = tuple(np.round(np.linspace(0, 1, 11), 2))
MIXED = tuple(float(a) for a in ALPHAS if 0 < a < 1)


def interpolate(start: dict, end: dict, alpha: float) -> dict:
    """(1 − α)·start + α·end for every floating tensor; counters (BatchNorm's
    ``num_batches_tracked``) are taken from ``end``."""
    if set(start) != set(end):
        raise ValueError("the two solutions are not of the same network")
    return {
        key: (start[key] * (1 - alpha) + value * alpha) if value.is_floating_point() else value
        for key, value in end.items()
    }


def curve(evaluation: Evaluation, start: dict, end: dict, splits: list[str]):
    """Per α: (loss, metrics, scores) on each split."""
    points = {}
    for alpha in ALPHAS:
        evaluation.load(interpolate(start, end, float(alpha)))
        points[float(alpha)] = {split: evaluation.evaluate(split) for split in splits}
    return points


def run(job: Job) -> None:
    from medft.checkpoints import prediction_frame
    from medft.strategies import StrategyOptions

    runs = job.runs()
    by_cell = {(r.strategy, r.lr, r.seed): r.run_dir for r in runs.itertuples()}
    options = StrategyOptions(**summary_of(runs["run_dir"].iloc[0])["config"]["options"])
    ends = wise_ends(sorted(runs["strategy"].unique()), options)
    written, rows = [], []
    # One network per end strategy: every (lr, seed) only loads its weights into it.
    evaluations: dict[str, Evaluation] = {}
    for row in job.rows:
        first, second = ends[row]
        for (strategy, lr, seed), run_dir in sorted(by_cell.items()):
            if strategy != second or (first, lr, seed) not in by_cell:
                continue
            like = summary_of(run_dir)
            if second not in evaluations:
                evaluations[second] = Evaluation(like, job.batch_size)
            evaluation = evaluations[second]
            splits = [s for s in ("val", "test") if s in evaluation.splits]
            points = curve(
                evaluation, best_state(by_cell[(first, lr, seed)]), best_state(run_dir), splits
            )
            main = like["main_metric"]
            for alpha, evaluated in points.items():
                rows += [
                    {
                        "row": row,
                        "lr": lr,
                        "seed": seed,
                        "alpha": alpha,
                        "split": split,
                        "value": m[main],
                    }
                    for split, (_, m, _) in evaluated.items()
                ]
            chosen = max(
                MIXED, key=lambda a: np.nan_to_num(points[a][job.select_on][1][main], nan=-np.inf)
            )
            log.info("%s lr=%g seed=%d: α=%.1f", row, lr, seed, chosen)
            evaluated = points[chosen]
            results = {s: {"loss": loss, **metrics} for s, (loss, metrics, _) in evaluated.items()}
            predictions = pd.concat(
                prediction_frame(
                    evaluation.splits[s],
                    s,
                    scores,
                    evaluation.meta.classes,
                    evaluation.meta.multilabel,
                )
                for s, (_, _, scores) in evaluated.items()
            )
            written.append(
                write_derived(job, row, like, lr, seed, results, predictions, {"alpha": chosen})
            )
    curve_path = f"{job.folder}/curve.parquet"
    pd.DataFrame(rows, columns=["row", "lr", "seed", "alpha", "split", "value"]).to_parquet(
        curve_path, index=False
    )
    write_index(job, written, {"curve": curve_path})
