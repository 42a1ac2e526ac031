"""Disk before running (medft.disk, ``medft plan``) and ``checkpoints: none``."""

from pathlib import Path

import pytest
import yaml

from medft.cli import main
from medft.disk import disk_table, folder_bytes
from medft.errors import ConfigError
from medft.jobs import train_job
from medft.workflow import Grid, load_config


def _finished_demo():
    """The finished demo (`make demo`; CI runs this test after it) and its config."""
    if (Path("results/demo") / "report.html").exists():
        return "results/demo", ["config/demo.yaml"]
    pytest.skip("no finished demo: run `make demo` (CI runs this test after it)")


def test_planned_disk_is_within_ten_percent_of_the_finished_demo(capsys):
    folder, configs = _finished_demo()
    planned = disk_table(Grid(load_config(configs)), in_flight=1).iloc[-1]["kept GB"] * 1e9
    held = folder_bytes(folder)
    assert abs(planned - held) <= 0.10 * held, f"planned {planned:.3g} B, {folder} holds {held}"
    assert main(["plan", "--configfile", *configs]) == 0
    assert f"{planned / 1e9:.1f} GB kept when the grid is done" in capsys.readouterr().out


def test_the_paper_grid_prices_its_disk_and_none_keeps_only_what_lp_ft_reads(tmp_path, capsys):
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    best = disk_table(Grid(load_config([])), in_flight=100).iloc[-1]
    # VGG-19's best.pt (~558 MB) dominates: 576 of them are ~322 GB
    assert 300 < best["weights kept GB"] < 450 and f"{best['kept GB']:.1f} GB kept" in out
    none = tmp_path / "none.yaml"
    none.write_text("checkpoints: none\n")
    lean = disk_table(Grid(load_config([str(none)])), in_flight=100).iloc[-1]
    # of 8 strategies only LP keeps its weights (LP-FT starts from them)
    assert lean["weights kept GB"] == pytest.approx(best["weights kept GB"] / 8)
    assert lean["peak GB"] - lean["kept GB"] == pytest.approx(100 * best["last.pt per job GB"])


def test_checkpoints_none_refuses_post_hoc_that_reads_weights(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"checkpoints": "none", "post_hoc": ["probes", "wise"]}))
    with pytest.raises(ConfigError, match="post_hoc wise .*checkpoints: best"):
        load_config([str(config)])
    config.write_text(yaml.safe_dump({"checkpoints": "none", "post_hoc": ["probes"]}))
    assert load_config([str(config)])["checkpoints"] == "none"


def test_a_run_without_kept_weights_ends_with_its_results_and_no_best_pt(tiny_datasets, tmp_path):
    run = {
        "data": str(tiny_datasets["binary"]),
        "model": "test_resnet",
        "weights": "none",
        "strategy": "FT",
        "lr": 1e-3,
        "seed": 0,
        "out": str(tmp_path / "run"),
        "epochs": 1,
        "patience": 1,
        "batch_size": 16,
        "options": {},
    }
    train_job(run, keep_best=False)
    assert (tmp_path / "run" / "metrics.json").exists()
    assert (tmp_path / "run" / "predictions.parquet").exists()
    assert not (tmp_path / "run" / "best.pt").exists()
