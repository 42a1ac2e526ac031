"""The label-fraction axis: datasets expanded per fraction, priced at their fraction, and the
summary's curves and crossover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medft.cli import main
from medft.report import inputs
from medft.workflow import Grid, load_config, on_axis, with_fractions


def test_each_dataset_runs_once_per_fraction_and_keeps_its_own():
    datasets = [
        {"name": "a", "source": "synthetic"},
        {"name": "b", "source": "x", "train_fraction": 0.5},
    ]
    expanded = with_fractions(datasets, [0.1, 1.0])
    assert [d["name"] for d in expanded] == ["a@0.1", "a@1", "b@0.1", "b@1"]
    assert [d["train_fraction"] for d in expanded] == [0.1, 1.0, 0.05, 0.5]
    assert with_fractions(expanded, [0.1, 1.0]) == expanded  # the workflow validates twice
    assert on_axis("a@0.1") == ("a", 0.1) and on_axis("a") is None


def test_the_plan_prices_each_fraction(tmp_path):
    config = tmp_path / "axis.yaml"
    config.write_text(
        "datasets: [{name: nodule, source: synthetic, n_images: 1000}]\n"
        "train_fractions: [0.1, 0.5]\nmodels: [efficientnet_lite0]\n"
        "weights: efficientnet-lite0-offline\nresults: " + str(tmp_path / "r") + "\n"
    )
    grid = Grid(load_config([config]))
    assert list(grid.datasets) == ["nodule@0.1", "nodule@0.5"]
    small, _ = grid.cost.counts("nodule@0.1", "efficientnet_lite0")
    large, _ = grid.cost.counts("nodule@0.5", "efficientnet_lite0")
    assert large["train"] == pytest.approx(5 * small["train"], rel=0.02)
    assert small["test"] == large["test"]  # the same evaluation split


def test_the_summary_shows_where_another_strategy_overtakes_ft(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    # LP-FT leads with a tenth of the labels, FT with all of them.
    for fraction, lead in ((0.1, 4.0), (1.0, -4.0)):
        for seed in range(3):
            noise = rng.normal(0, 0.3)
            for strategy, shift in (("FT", 0.0), ("LP-FT", lead)):
                for split in ("val", "test"):
                    value = (80 + shift + noise) / 100
                    rows.append(
                        (f"d@{fraction:g}", "m", strategy, 1e-3, seed, split, "auroc", value)
                    )
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=inputs.PER_SEED).to_csv(path, index=False)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    summary = tmp_path / "out" / "summary"
    curves = pd.read_csv(summary / "label_fractions.csv")
    lp_ft = curves[curves["strategy"] == "LP-FT"].set_index("fraction")
    assert (
        lp_ft.loc[0.1, "verdict vs FT"] == "better" and lp_ft.loc[1.0, "verdict vs FT"] == "worse"
    )
    assert (lp_ft["low"] < lp_ft["mean"]).all() and (lp_ft["mean"] < lp_ft["high"]).all()
    crossover = (summary / "label_fractions.md").read_text()
    assert "FT overtakes LP-FT" in crossover
    assert (summary / "label_fractions.png").stat().st_size > 1000
