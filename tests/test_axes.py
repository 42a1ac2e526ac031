"""The label-fraction axis: datasets expanded per fraction, priced at their fraction, and the
summary's curves and crossover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medft.cli import main
from medft.grid_axes import AxisPoint, axis_point, with_axes
from medft.report import inputs
from medft.workflow import Grid, load_config


def test_each_dataset_runs_once_per_point_of_the_axes_and_keeps_its_own_fraction():
    datasets = [
        {"name": "a", "source": "synthetic"},
        {"name": "b", "source": "x", "train_fraction": 0.5},
    ]
    expanded = with_axes(datasets, [0.1, 1.0], None)
    assert [d["name"] for d in expanded] == ["a@0.1", "a@1", "b@0.1", "b@1"]
    assert [d["train_fraction"] for d in expanded] == [0.1, 1.0, 0.05, 0.5]
    assert with_axes(expanded, [0.1, 1.0], None) == expanded  # the workflow validates twice
    both = with_axes(datasets[:1], [0.1], [64, 128])
    assert [d["name"] for d in both] == ["a@0.1@64px", "a@0.1@128px"]
    assert axis_point("a@0.1@64px") == AxisPoint("a", 0.1, 64)
    assert axis_point("a@128px") == AxisPoint("a", None, 128) and axis_point("a") is None


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


def test_each_input_size_is_prepared_and_priced_at_its_size(tmp_path):
    config = tmp_path / "sizes.yaml"
    config.write_text(
        "datasets: [{name: nodule, source: synthetic, n_images: 1000}]\n"
        "image_sizes: [64, 128]\nimage_size: {resize: 73, crop: 64}\n"
        "models: [efficientnet_lite0]\nweights: efficientnet-lite0-offline\n"
        "results: " + str(tmp_path / "r") + "\n"
    )
    grid = Grid(load_config([config]))
    model = "efficientnet_lite0"
    assert grid.prepared("nodule@64px", model).endswith("nodule@64px/r73_c64/meta.json")
    assert grid.prepared("nodule@128px", model).endswith("nodule@128px/r146_c128/meta.json")
    small = grid.cost.epoch_seconds("nodule@64px", model, "FT")
    large = grid.cost.epoch_seconds("nodule@128px", model, "FT")
    assert large == pytest.approx(4 * small, rel=0.01)  # four times the pixels


def test_the_summary_shows_where_another_strategy_overtakes_ft(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    # LP-FT leads with a tenth of the labels, FT with all of them.
    for fraction, lead in ((0.1, 4.0), (1.0, -4.0)):
        for seed in range(3):
            noise = rng.normal(0, 0.3)
            # LP-FT with a spread of its own: a pair with none is not tested.
            for strategy, shift in (("FT", 0.0), ("LP-FT", lead + rng.normal(0, 0.2))):
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
    assert not (summary / "image_sizes.csv").exists()  # no dataset on that axis
    lp_ft = curves[curves["strategy"] == "LP-FT"].set_index("fraction")
    assert (
        lp_ft.loc[0.1, "verdict vs FT"] == "better" and lp_ft.loc[1.0, "verdict vs FT"] == "worse"
    )
    assert (lp_ft["low"] < lp_ft["mean"]).all() and (lp_ft["mean"] < lp_ft["high"]).all()
    crossover = (summary / "label_fractions.md").read_text()
    assert "FT overtakes LP-FT" in crossover
    assert (summary / "label_fractions.png").stat().st_size > 1000


def test_the_axes_multiply_the_jobs_and_keep_the_evaluation_images(tmp_path):
    from medft.data.preprocess import Preprocess
    from medft.data.sources import prepare_dataset

    base = tmp_path / "base.yaml"
    base.write_text(
        "datasets: [{name: synth-nodule, source: synthetic, n_images: 120}]\n"
        "models: [efficientnet_lite0]\nweights: efficientnet-lite0-offline\n"
        "image_size: {resize: 40, crop: 32}\nresults: " + str(tmp_path / "r") + "\n"
    )
    axes = tmp_path / "axes.yaml"
    axes.write_text("train_fractions: [0.1, 1.0]\nimage_sizes: [32, 40]\n")
    plain = Grid(load_config([base]))
    both = Grid(load_config([base, axes]))
    assert len(both.cells()) == 4 * len(plain.cells())
    test_ids = set()
    for name, entry in both.datasets.items():
        pre = both.preprocess("efficientnet_lite0", name)
        out = prepare_dataset(name, entry, Preprocess(pre.resize, pre.crop), tmp_path / name)
        manifest = pd.read_parquet(out / "manifest.parquet")
        test_ids.add(tuple(sorted(manifest.loc[manifest["split"] == "test", "id"])))
    assert len(test_ids) == 1  # the same evaluation images in all four variants
