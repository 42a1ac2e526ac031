"""The post-hoc evaluations' own tables (``medft.post_hoc``): robustness to corruptions, with
verdicts against FT, and its curves by severity. Their derived runs (probes, WiSE) are rows of
the ordinary tables; the WiSE curve is read by its writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medft.post_hoc import folder
from medft.strategies import REFERENCE, STRATEGIES


def tables(runs: pd.DataFrame | None, name: str, table: str) -> list[Path]:
    """The ``table`` files evaluation ``name`` wrote for the models of ``runs`` (found from
    the trained runs' folders: ``<results>/<dataset>/<model>/<strategy>/lr<lr>/seed<seed>``)."""
    if runs is None or "run_dir" not in runs:
        return []
    trained = runs[runs["strategy"].map(lambda s: s in STRATEGIES)]
    model_dirs = sorted({str(Path(d).parents[2]) for d in trained["run_dir"]})
    return [p for d in model_dirs if (p := Path(folder(d, name)) / table).is_file()]


# Resamples of the corrupted passes: each run's metric is recomputed on every pass (20 with
# all severities), so the main statistics' 2,000 would cost 20 times theirs (an AUROC on 5,000
# images × 2,000 resamples: ~1 s here); 1,000 estimate the test's variances to ±4.5 %.
ROBUSTNESS_BOOT = 1000


def robustness(
    frame: pd.DataFrame,
    margin: float,
    scores: pd.DataFrame | None = None,
    task: str | None = None,
    n_boot: int | None = None,
    chosen_on_evaluation: str = "",
) -> pd.DataFrame:
    """Per (model, strategy): the main metric clean and averaged over every corruption and
    severity (percent, mean over seeds), the relative drop, the drop per corruption, and the
    verdict against FT on the corrupted mean (the report's test, Holm within the model) with the
    seed pairs it stands on (``seeds``), sorted by the drop. With the passes' per-image
    ``scores`` (and the dataset's ``task``), the test counts the evaluation images' sampling as
    the main statistics do (``corrupted_bootstrap``); without them, the seeds only. Where the
    evaluation split chose the checkpoints (``chosen_on_evaluation``, ``stats.verdicts``'),
    nothing is tested."""
    from medft.report import stats

    clean = frame[frame["severity"] == 0]
    corrupted = frame[frame["severity"] > 0]
    keys = ["dataset", "model", "strategy", "seed"]
    per_seed = (
        corrupted.groupby(keys, sort=False)["value"].mean().rename("corrupted").reset_index()
    ).merge(clean[[*keys, "value"]].rename(columns={"value": "clean"}), on=keys)
    per_seed["drop"] = (per_seed["clean"] - per_seed["corrupted"]) / per_seed["clean"] * 100
    main = frame["main_metric"].iloc[0]
    runs = per_seed.assign(main_metric=main, **{f"test_{main}": per_seed["corrupted"]})
    boot = None
    if scores is not None:
        runs = runs.merge(clean[[*keys, "run_dir"]], on=keys)
        boot = corrupted_bootstrap(runs, scores, task, n_boot or ROBUSTNESS_BOOT)
    tested = stats.verdicts(
        stats.paired_tests(runs), boot, margin=margin, chosen_on_evaluation=chosen_on_evaluation
    )
    by_corruption = (
        corrupted.merge(clean[[*keys, "value"]].rename(columns={"value": "clean"}), on=keys)
        .assign(drop=lambda f: (f["clean"] - f["value"]) / f["clean"] * 100)
        .pivot_table(index=["model", "strategy"], columns="corruption", values="drop")
        .add_prefix("drop % ")
        .reset_index()
    )
    table = (
        per_seed.groupby(["model", "strategy"], sort=False)[["clean", "corrupted", "drop"]]
        .mean()
        .reset_index()
        .assign(clean=lambda f: f["clean"] * 100, corrupted=lambda f: f["corrupted"] * 100)
        .rename(columns={"drop": "relative drop %"})
        .merge(by_corruption, on=["model", "strategy"])
        .merge(
            tested[["model", "strategy", "diff_mean", "low", "high", "p_holm", "verdict"]].assign(
                seeds=tested["n_pairs"]
            ),
            on=["model", "strategy"],
            how="left",
        )
    )
    table["verdict"] = table["verdict"].where(table["strategy"] != REFERENCE, "reference")
    table["seeds"] = table["seeds"].astype("Int64")  # FT's row has none
    return table.sort_values(["model", "relative drop %"], kind="stable").reset_index(drop=True)


def corrupted_bootstrap(
    runs: pd.DataFrame, scores: pd.DataFrame, task: str, n_boot: int, seed: int = 0
) -> pd.DataFrame:
    """``stats.bootstrap_intervals``'s columns for the corrupted mean: per (dataset, model)
    the patients of the evaluated images resampled once, every run's main metric on every
    corrupted pass recomputed on each resample and averaged over the passes, as its point
    value is; then the same seed-paired comparisons with FT."""
    from medft.report import stats

    rows = []
    for (dataset, model), cell in runs.groupby(stats.CELL, sort=False):
        metric = cell["main_metric"].iloc[0]
        mine = scores[(scores["dataset"] == dataset) & (scores["model"] == model)]
        passes = {
            key: part.sort_values("id", kind="stable")
            for key, part in mine[mine["severity"] > 0].groupby(
                ["run_dir", "corruption", "severity"], sort=False
            )
        }
        first = stats.same_images(
            {
                f"{run} ({corruption}, severity {severity})": part
                for (run, corruption, severity), part in passes.items()
            },
            "rerun the robustness job of the run named",
        )
        groups = stats.resampling_groups(first, dataset)
        weights = stats.group_weights(groups, n_boot, np.random.default_rng(seed))
        by_run: dict[str, list[np.ndarray]] = {}
        for (run_dir, _, _), part in passes.items():
            values = stats.resampled_values(metric, task, part, weights)
            by_run.setdefault(run_dir, []).append(values)
        resampled = {run_dir: np.mean(values, axis=0) for run_dir, values in by_run.items()}
        resolution = stats.one_image_points(metric, stats.targets_scores(first)[0])
        rows += stats.resampled_comparisons(cell, resampled, resolution, len(np.unique(groups)))
    return pd.DataFrame(rows, columns=[*stats.CELL, "strategy", *stats.BOOT_COLUMNS])


def severity_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (model, strategy, corruption, severity): the main metric, mean over seeds; the
    clean value is severity 0 of every corruption."""
    clean = frame[frame["severity"] == 0]
    corrupted = frame[frame["severity"] > 0]
    starts = pd.concat(clean.assign(corruption=c) for c in sorted(corrupted["corruption"].unique()))
    both = pd.concat([starts, corrupted])
    return (
        both.groupby(["model", "strategy", "corruption", "severity"], sort=False)["value"]
        .mean()
        .reset_index()
    )
