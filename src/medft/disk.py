"""What a grid keeps on disk, before it runs (``medft plan``): per (dataset, model) the
prepared shards, LP's shared features, each run's ``best.pt`` and its small files, and the
peak while running, when each job in flight also holds ``last.pt`` (weights and Adam's two
moments: about three times the weights).

Sizes come from the model's own state dict (built on the meta device: no memory, no weights),
the image counts ``medft.cost`` uses, and the prepared dataset's folder where it exists. The
small files of a run (predictions, logs, metrics) and robustness's per-image scores are
estimated from the evaluation split's size, calibrated on the demo's runs
(``tests/test_disk.py`` checks the estimate against a finished demo's folder).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

GB = 1e9
# A run's small files: predictions.parquet (id, split, group, target, one probability per
# class: ~60 bytes a row plus a few kB of Parquet metadata), epochs.csv, metrics.json, the log.
RUN_FIXED_BYTES = 8_000
PREDICTION_ROW_BYTES = 60
PROBABILITY_BYTES = 8
EPOCH_LOG_BYTES = 700  # one epoch: its row of epochs.csv and its lines of the log
# robustness_scores.parquet: a row per image, pass and run, its names dictionary-encoded;
# 12 bytes a row on BreastMNIST's 78,120 (binary), more with more classes
SCORE_ROW_BYTES = 16
# Adam keeps two moments per trained weight: last.pt is the weights three times over.
LAST_CHECKPOINT_FACTOR = 3
# Per dataset: its report folder, its share of report.html, the post-hoc outputs' small files.
REPORT_BYTES_PER_DATASET = 4_000_000


@cache
def state_dict_bytes(model: str, num_classes: int = 2) -> int:
    """The bytes of ``model``'s state dict: what ``best.pt`` holds (a foundation backbone's
    from its parameter count, float32, without its weights at hand)."""
    import torch

    from medft.foundation import backbone
    from medft.models import create_model

    spec = backbone(model)
    if spec is not None and spec.params_m:
        return int(spec.params_m * 1e6 * 4)

    with torch.device("meta"):
        module = create_model(model, num_classes, "none").module
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _shard_bytes(grid, dataset: str, model: str, counts: dict[str, int]) -> tuple[str, int]:
    """The prepared dataset's folder and its size: measured where it exists, else uint8
    images at the stored size, three channels (grey sources take a third)."""
    meta = Path(grid.prepared(dataset, model))
    if meta.exists():
        return str(meta.parent), folder_bytes(meta.parent)
    size = grid.preprocess(model, dataset).resize
    return str(meta.parent), sum(counts.values()) * size * size * 3


def disk_table(grid, in_flight: int):
    """Per (dataset, model): runs, one ``best.pt``, and the GB kept (shards, features,
    weights, run files) and the ``last.pt`` of one job in flight; a total row, whose
    ``peak GB`` adds ``in_flight`` jobs' ``last.pt`` (the largest model's) to what is kept."""
    import pandas as pd

    from medft.post_hoc import robustness_passes

    c, cost = grid.config, grid.cost
    shards_seen: set[str] = set()
    rows = []
    for dataset in grid.datasets:
        runs_per_strategy = grid.runs_per_strategy(dataset)
        for model in c["models"]:
            counts, _ = cost.counts(dataset, model)
            folder, shard = _shard_bytes(grid, dataset, model, counts)
            shard = 0 if folder in shards_seen else shard  # models of one size share shards
            shards_seen.add(folder)
            weights = state_dict_bytes(model)
            features = any(grid.features_file(dataset, model, s) for s in c["strategies"])
            feature_bytes = (
                sum(counts.values()) * cost.model(model).feature_dim * 4 if features else 0
            )
            kept = sum(grid.keeps_weights(s) for s in c["strategies"]) * runs_per_strategy
            n_runs = len(c["strategies"]) * runs_per_strategy
            epochs = min(c["epochs"], cost.settings.typical_epochs)
            evaluated = counts["val"] + counts["test"]
            per_run = (
                RUN_FIXED_BYTES
                + evaluated * (PREDICTION_ROW_BYTES + PROBABILITY_BYTES * 4)
                + epochs * EPOCH_LOG_BYTES
            )
            if "robustness" in c.get("post_hoc", []):
                scores = robustness_passes(counts, c) * SCORE_ROW_BYTES
            else:
                scores = 0
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "runs": n_runs,
                    "best.pt MB": weights / 1e6,
                    "shards GB": shard / GB,
                    "features GB": feature_bytes / GB,
                    "weights kept GB": kept * weights / GB,
                    "run files GB": (n_runs * per_run + scores) / GB,
                    "last.pt per job GB": LAST_CHECKPOINT_FACTOR * weights / GB,
                }
            )
    table = pd.DataFrame(rows)
    parts = ["shards GB", "features GB", "weights kept GB", "run files GB"]
    table["kept GB"] = table[parts].sum(axis=1) + REPORT_BYTES_PER_DATASET / GB / len(c["models"])
    total = {"dataset": "total", "runs": table["runs"].sum()}
    total.update({p: table[p].sum() for p in [*parts, "kept GB"]})
    total["last.pt per job GB"] = table["last.pt per job GB"].max()
    peak = total["kept GB"] + in_flight * total["last.pt per job GB"]
    total["peak GB"] = peak
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def render(grid, in_flight: int) -> str:
    table = disk_table(grid, in_flight)
    total = table.iloc[-1]
    checkpoints = grid.config["checkpoints"]
    return (
        table.drop(columns="peak GB")
        .astype(object)
        .fillna("")
        .to_markdown(index=False, floatfmt=".2f")
        + f"\n\nDisk: {total['kept GB']:.1f} GB kept when the grid is done; peak "
        f"{total['peak GB']:.1f} GB while {in_flight} job(s) run at once, each with a last.pt "
        f"of up to {total['last.pt per job GB']:.2f} GB (--jobs: the jobs in flight; the SLURM "
        f"profile runs up to 100). checkpoints: {checkpoints}"
        + (
            " (every run keeps best.pt; `checkpoints: none` keeps only the ones another "
            "strategy starts from, e.g. LP's for LP-FT)"
            if checkpoints == "best"
            else " (best.pt deleted when a run ends, but where another strategy starts from it)"
        )
        + ". Shards: the prepared folder where it exists, else uint8 RGB at the stored size."
    )
