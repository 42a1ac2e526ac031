"""Store a finished grid compactly, so that any search setting (and any peer) is replayed on it
exactly without training (bench/search_replay.py, bench/results_search.md).

Run: ``python bench/search/store_grid.py RESULTS_DIR DATA_DIR DATASET [MODEL]``; writes
``bench/search/grids/<dataset>/``: ``runs.parquet`` (one row per run: its cell, epochs and
every val_/test_ metric at its best epoch), ``epochs.parquet`` (every epoch's validation
metrics, ``may_stop``, seconds), ``predictions.parquet`` (every run's test-split
probabilities, what the statistics resample) and ``grid.json`` (training and total images).
Run keys are ``<strategy>/lr<lr>/seed<seed>``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from medft.report.collect import collect_runs
from medft.report.stats import test_predictions

OUT = Path(__file__).resolve().parent / "grids"


def store(results: Path, data: Path, dataset: str, model: str) -> Path:
    files = sorted((results / dataset / model).glob("*/lr*/seed*/metrics.json"))
    if not files:
        raise SystemExit(f"no finished runs under {results / dataset / model}")
    runs = collect_runs(files)
    keys = [Path(r).relative_to(results / dataset / model).as_posix() for r in runs["run_dir"]]
    runs = runs.assign(run=keys).drop(columns=["run_dir"])
    epochs = pd.concat(
        [
            pd.read_csv(f.parent / "epochs.csv").assign(run=k)
            for f, k in zip(files, keys, strict=True)
        ],
        ignore_index=True,
    )
    epochs = epochs[
        ["run", "epoch", *[c for c in epochs if c.startswith("val_")], "may_stop", "seconds"]
    ]
    predictions = pd.concat(
        [test_predictions(str(f.parent)).assign(run=k) for f, k in zip(files, keys, strict=True)],
        ignore_index=True,
    )
    probabilities = [c for c in predictions if c.startswith("prob_")]
    predictions[probabilities] = predictions[probabilities].astype("float32")
    meta = json.loads(next((data / dataset).glob("*/meta.json")).read_text())
    folder = OUT / dataset
    folder.mkdir(parents=True, exist_ok=True)
    runs.to_parquet(folder / "runs.parquet", index=False)
    epochs.to_parquet(folder / "epochs.parquet", index=False)
    predictions.drop(columns=["split"], errors="ignore").to_parquet(
        folder / "predictions.parquet", index=False
    )
    counts = meta["split_counts"]
    (folder / "grid.json").write_text(
        json.dumps(
            {
                "dataset": dataset,
                "model": model,
                "task": meta["task"],
                "n_train": counts["train"],
                "n_images": sum(counts.values()),
                "runs": len(runs),
            },
            indent=2,
        )
    )
    return folder


if __name__ == "__main__":
    results, data, dataset = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    model = sys.argv[4] if len(sys.argv) > 4 else "efficientnet_lite0"
    print(store(results, data, dataset, model))
