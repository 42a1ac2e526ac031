"""``medft report RESULTS_DIR``: a report from what finished, the missing cells listed and
named in captions, statistics on the seeds present (medft.report.results_folder)."""

import json

import numpy as np
import pandas as pd

from medft.cli import main
from medft.metrics import compute_metrics
from medft.report.results_folder import record_grid
from medft.workflow import Grid, load_config

STRATEGIES = ["FT", "LP", "L2-SP"]
SHIFT = {"FT": 0.0, "LP": -1.2, "L2-SP": 0.1}  # LP clearly worse on every seed


def _finished_run(run, cell, rng):
    """The files a finished cell leaves: predictions, the epoch log, metrics.json last. A
    seed's images are equally hard for every strategy (shared noise), as in real paired runs."""
    dataset, model, strategy, lr, seed = cell
    shared = np.random.default_rng(seed)
    run.mkdir(parents=True, exist_ok=True)
    frames, metrics = [], {}
    for split in ("val", "test"):
        target = np.tile([0, 1], 60)
        separation = 1.5 + SHIFT[strategy]
        score = separation * (2 * target - 1) + shared.normal(0, 1, 120)
        score = 1 / (1 + np.exp(-(score + rng.normal(0, 0.3, 120))))
        scores = np.stack([1 - score, score], axis=1)
        metrics[split] = compute_metrics("binary", target, scores, ["no", "yes"])
        frames.append(
            pd.DataFrame(
                {
                    "id": [f"{split}{i:03d}" for i in range(120)],
                    "split": split,
                    "group": [f"p{i}" for i in range(120)],
                    "target": target,
                    "prob_no": scores[:, 0],
                    "prob_yes": scores[:, 1],
                }
            )
        )
    pd.concat(frames).to_parquet(run / "predictions.parquet", index=False)
    pd.DataFrame(
        {
            "epoch": [0, 1],
            "train_loss": [0.7, 0.5],
            "val_loss": [0.7, 0.6],
            "val_auroc": [0.7, metrics["val"]["auroc"]],
            "may_stop": True,
            "seconds": [1.0, 1.0],
        }
    ).to_csv(run / "epochs.csv", index=False)
    summary = {
        "config": {"model": model, "strategy": strategy, "lr": float(lr), "seed": seed},
        "dataset": dataset,
        "task": "binary",
        "main_metric": "auroc",
        "best_epoch": 1,
        "epochs_trained": 2,
        "metrics": metrics,
    }
    (run / "metrics.json").write_text(json.dumps(summary))


def test_a_report_from_what_finished_lists_the_missing_cells(tmp_path, capsys):
    results = tmp_path / "results"
    extra = tmp_path / "grid.yaml"
    extra.write_text(
        f"results: {results}\nname: partial\nstrategies: [{', '.join(STRATEGIES)}]\n"
        "lrs: [1.0e-3]\nseeds: [0, 1, 2, 3]\n"
    )
    config = load_config(["config/demo.yaml", str(extra)])
    config["datasets"] = [  # at this grid's one lr (the demo's synth-histology sets its own)
        {k: v for k, v in d.items() if k != "lrs"}
        for d in config["datasets"]
        if d["name"] in ("synth-nodule", "synth-histology")
    ]
    record_grid(config)
    grid = Grid(config)
    cells = grid.cells()
    rng = np.random.default_rng(0)
    missing = {
        ("synth-nodule", "efficientnet_lite0", "L2-SP", "0.001", 2),
        ("synth-nodule", "efficientnet_lite0", "LP", "0.001", 0),
        ("synth-histology", "efficientnet_lite0", "FT", "0.001", 3),
        ("synth-histology", "efficientnet_lite0", "LP", "0.001", 3),
        ("synth-histology", "efficientnet_lite0", "L2-SP", "0.001", 1),
    }
    for cell in cells:
        if cell not in missing:
            _finished_run(tmp_path / grid.run_dir(*cell), cell, rng)
    # A metrics.json cut short (a copy from the cluster interrupted) is a failed cell, listed
    # with the file and the fix, not a traceback that stops the whole report.
    cut_cell = ("synth-histology", "efficientnet_lite0", "L2-SP", "0.001", 1)
    cut = tmp_path / grid.run_dir(*cut_cell)
    _finished_run(cut, cut_cell, rng)
    text = (cut / "metrics.json").read_text()
    (cut / "metrics.json").write_text(text[: len(text) // 2])
    failed_log = results / "logs/train/synth-nodule/efficientnet_lite0/LP_lr0.001_seed0.log"
    failed_log.parent.mkdir(parents=True)
    failed_log.write_text("epoch 0\ntorch.OutOfMemoryError: CUDA out of memory.\n")

    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "incomplete: 5 cell(s) without results" in printed

    listed = pd.concat(
        pd.read_csv(out / d / "missing_cells.csv") for d in ("synth-nodule", "synth-histology")
    )
    assert {
        (r.dataset, r.model, r.strategy, f"{r.lr:g}", r.seed) for r in listed.itertuples()
    } == missing
    lp = listed[(listed["strategy"] == "LP") & (listed["dataset"] == "synth-nodule")].iloc[0]
    assert lp["state"] == "failed" and "CUDA out of memory" in lp["message"]
    l2 = listed[(listed["strategy"] == "L2-SP") & (listed["dataset"] == "synth-histology")]
    assert l2.iloc[0]["state"] == "failed"
    assert "metrics.json does not read" in l2.iloc[0]["message"]
    assert "delete it and rerun the workflow" in l2.iloc[0]["message"]

    statistics = pd.read_csv(out / "synth-nodule" / "statistics.csv").set_index("strategy")
    # one seed missing: tested on the three pairs present, not dropped, not imputed
    assert statistics.loc["L2-SP", "n_pairs"] == 3 and statistics.loc["LP", "n_pairs"] == 3
    assert statistics.loc["LP", "verdict"] == "worse"
    table = pd.read_csv(out / "synth-nodule" / "table.csv").set_index("strategy")
    assert table.loc["FT", "n_seeds"] == 4 and table.loc["L2-SP", "n_seeds"] == 3
    caption = (out / "synth-nodule" / "paper_table.md").read_text()
    assert "Incomplete: 2 cell(s)" in caption and "LP lr0.001 seed0" in caption
    assert "Incomplete" in (out / "synth-nodule" / "statistics.md").read_text()
    page = (out / "report.html").read_text()
    assert "incomplete, 19 of 24 cells" in page and "cells without results" in page

    # The same command once the missing cells have finished, into the same folder: no table
    # of the earlier report stays behind to say cells are missing; a user's own file stays.
    (out / "notes.txt").write_text("mine")
    for cell in missing:
        _finished_run(tmp_path / grid.run_dir(*cell), cell, rng)
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert "incomplete" not in capsys.readouterr().out
    assert not list(out.glob("*/missing_cells.*"))
    page = (out / "report.html").read_text()
    assert "incomplete" not in page and "cells without results" not in page
    assert "Incomplete" not in (out / "synth-nodule" / "statistics.md").read_text()
    assert (out / "notes.txt").read_text() == "mine"
