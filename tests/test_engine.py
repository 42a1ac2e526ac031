import json

import pandas as pd
import pytest
import torch

from medft import features
from medft.checkpoints import RunFiles
from medft.data import synthetic
from medft.data.preprocess import Preprocess
from medft.data.shards import read_meta
from medft.engine import Cell, TrainConfig, train
from medft.strategies import StrategyOptions


def config(data, out, **overrides) -> TrainConfig:
    settings = dict(
        model="test_resnet",
        weights="none",
        strategy="FT",
        lr=1e-3,
        seed=0,
        epochs=4,
        patience=10,
        batch_size=16,
    )
    return TrainConfig(data=str(data), out=str(out), **{**settings, **overrides})


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_result(tiny_datasets, tmp_path, monkeypatch):
    data = tiny_datasets["multilabel"]
    straight = train(config(data, tmp_path / "straight"))

    real_save = RunFiles.save_last

    def die_after_second_epoch(self, module, optimizer, state):
        real_save(self, module, optimizer, state)
        if state.epoch == 1:
            raise Killed

    monkeypatch.setattr(RunFiles, "save_last", die_after_second_epoch)
    with pytest.raises(Killed):
        train(config(data, tmp_path / "resumed"))
    assert len(pd.read_csv(tmp_path / "resumed" / "epochs.csv")) == 2
    monkeypatch.setattr(RunFiles, "save_last", real_save)
    resumed = train(config(data, tmp_path / "resumed"))

    for split in ("val", "test"):
        assert resumed["metrics"][split] == pytest.approx(straight["metrics"][split])
    log = pd.read_csv(tmp_path / "resumed" / "epochs.csv")
    assert log["epoch"].tolist() == [0, 1, 2, 3]
    reference = pd.read_csv(tmp_path / "straight" / "epochs.csv")
    pd.testing.assert_frame_equal(log.drop(columns="seconds"), reference.drop(columns="seconds"))


def test_epoch_log_and_outputs(tiny_datasets, tmp_path):
    summary = train(config(tiny_datasets["binary"], tmp_path, strategy="G-FL", epochs=2))
    log = pd.read_csv(tmp_path / "epochs.csv")
    metric_columns = [
        f"val_{m}" for m in ("map", "accuracy", "balanced_accuracy", "auroc", "kappa", "f1")
    ]
    assert list(log.columns[:3]) == ["epoch", "train_loss", "val_loss"]
    assert set(metric_columns) <= set(log.columns) and "seconds" in log.columns
    lr_columns = [c for c in log.columns if c.startswith("lr_")]
    assert len(lr_columns) == 6
    # G-FL: epoch 0 trains only the head block, epoch 1 adds the first block
    assert (log.loc[0, lr_columns] > 0).tolist() == [False] * 5 + [True]
    assert (log.loc[1, lr_columns] > 0).tolist() == [True] + [False] * 4 + [True]
    assert log.loc[0, "trainable_params"] < log.loc[1, "trainable_params"]
    assert set(summary["metrics"]) == {"val", "test"}
    assert summary["main_metric"] == "auroc"
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert set(predictions["split"]) == {"val", "test"}
    assert {"prob_no nodule", "prob_nodule", "target"} <= set(predictions.columns)
    assert (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()


def test_finished_run_is_not_trained_again(tiny_datasets, tmp_path, monkeypatch):
    cfg = config(tiny_datasets["binary"], tmp_path, epochs=1)
    first = train(cfg)
    monkeypatch.setattr(Cell, "build", lambda self: pytest.fail("trained again"))
    assert train(cfg) == first
    with pytest.raises(ValueError, match="different config .*lr"):
        train(config(tiny_datasets["binary"], tmp_path, epochs=1, lr=1e-2))


def test_early_stopping_keeps_the_best_epoch(tiny_datasets, tmp_path):
    summary = train(config(tiny_datasets["binary"], tmp_path, epochs=30, patience=1, lr=1e-1))
    log = pd.read_csv(tmp_path / "epochs.csv")
    assert summary["epochs_trained"] == len(log) < 30
    best = log["val_auroc"].idxmax()
    assert summary["best_epoch"] == log.loc[best, "epoch"]
    assert summary["metrics"]["val"]["auroc"] == pytest.approx(log.loc[best, "val_auroc"])


def test_lp_on_cached_features_matches_full_passes(tiny_datasets, tmp_path):
    data = tiny_datasets["multiclass"]
    cached = train(config(data, tmp_path / "cached", strategy="LP", epochs=3))
    full = train(
        config(
            data,
            tmp_path / "full",
            strategy="LP",
            epochs=3,
            options=StrategyOptions(lp_feature_cache=False),
        )
    )
    for split in ("val", "test"):
        assert cached["metrics"][split] == pytest.approx(full["metrics"][split], abs=1e-5)
    a = torch.load(tmp_path / "cached" / "best.pt")["model"]["fc.weight"]
    b = torch.load(tmp_path / "full" / "best.pt")["model"]["fc.weight"]
    assert torch.allclose(a, b, atol=1e-5)


def test_lp_cells_share_one_features_file(tiny_datasets, tmp_path, monkeypatch):
    """The workflow extracts once per (dataset, model); every LP cell reading the file gets
    exactly what extracting in the cell would have given, without running the backbone."""
    data = tiny_datasets["multiclass"]
    own = train(config(data, tmp_path / "own", strategy="LP", epochs=3))
    shared = features.extract(data, "test_resnet", "none", tmp_path / "features.pt")

    def backbone_run(*args, **kwargs):
        raise AssertionError("an LP cell with a features file ran the backbone")

    monkeypatch.setattr(features, "head_inputs", backbone_run)
    runs = {
        lr: train(
            config(data, tmp_path / f"lr{lr}", strategy="LP", lr=lr, epochs=3, features=shared)
        )
        for lr in (1e-3, 1e-4)
    }
    assert runs[1e-3]["metrics"] == own["metrics"]
    assert runs[1e-4]["metrics"] != own["metrics"]  # the lr still matters: only the head trains


def test_features_of_something_else_are_refused(tiny_datasets, tmp_path):
    data = tiny_datasets["binary"]
    shared = features.extract(data, "test_resnet", "none", tmp_path / "features.pt", seed=0)
    # A random backbone differs per seed, so seed 1's run cannot use seed 0's features.
    with pytest.raises(ValueError, match=r"backbone_seed.*0.*needs.*backbone_seed.*1.*--seed 1"):
        train(config(data, tmp_path / "seed1", strategy="LP", seed=1, features=shared))
    with pytest.raises(ValueError, match=r"'dataset': 'synth-findings'.*--data"):
        train(
            config(tiny_datasets["multilabel"], tmp_path / "other", strategy="LP", features=shared)
        )
    torch.save({"model": {}}, tmp_path / "best.pt")
    with pytest.raises(ValueError, match="best.pt is not a features file"):
        train(config(data, tmp_path / "ckpt", strategy="LP", features=tmp_path / "best.pt"))
    again = synthetic.prepare("synth-nodule", Preprocess(32, 32), tmp_path / "again", n_images=50)
    with pytest.raises(ValueError, match="train images are not those of.*prepared again"):
        train(config(again, tmp_path / "again-run", strategy="LP", features=shared))


def test_lp_ft_without_init_trains_its_lp_stage_first(tiny_datasets, tmp_path):
    summary = train(config(tiny_datasets["binary"], tmp_path, strategy="lp-ft", epochs=2))
    stage1 = json.loads((tmp_path / "stage1-LP" / "metrics.json").read_text())
    assert stage1["config"]["strategy"] == "LP"
    assert summary["config"]["strategy"] == "LP-FT"


def test_bad_config_values_are_rejected(tiny_datasets, tmp_path):
    with pytest.raises(ValueError, match="unknown strategy 'SGD'.*Auto-RGN"):
        config(tiny_datasets["binary"], tmp_path, strategy="SGD")
    with pytest.raises(ValueError, match="lr must be positive"):
        config(tiny_datasets["binary"], tmp_path, lr=-1e-3)
    with pytest.raises(FileNotFoundError, match="not a prepared medft dataset"):
        train(config(tmp_path / "nothing", tmp_path / "out"))


@pytest.mark.parametrize("strategy", ["L1-SP", "L2-SP"])
def test_sp_runs_log_their_penalty_beside_the_task_loss(strategy, tiny_datasets, tmp_path):
    train(config(tiny_datasets["binary"], tmp_path / strategy, strategy=strategy, epochs=2))
    log = pd.read_csv(tmp_path / strategy / "epochs.csv")
    assert (log["penalty"] > 0).all() and (log["train_loss"] > 0).all()
    train(config(tiny_datasets["binary"], tmp_path / "FT", epochs=1))
    assert "penalty" not in pd.read_csv(tmp_path / "FT" / "epochs.csv")


def test_early_stopping_on_the_evaluation_split_without_a_validation_split(tmp_path):
    """The paper-replication protocol: `val_fraction: 0`, early stopping on the test split."""
    import numpy as np
    from PIL import Image

    from medft.data.sources import prepare_dataset
    from medft.errors import DataError

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for k in range(15):
            folder = tmp_path / "root" / cls
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 255, (20, 20), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{k}.png")
    options = {"source": "imagefolder", "root": str(tmp_path / "root"), "val_fraction": 0}
    data = prepare_dataset("x", options, Preprocess(32, 32), tmp_path / "data")
    assert "val" not in read_meta(data).split_counts
    with pytest.raises(DataError, match="has no val split to early-stop on"):
        train(config(data, tmp_path / "val-run", epochs=1))
    summary = train(config(data, tmp_path / "run", epochs=2, early_stop_on="test"))
    assert summary["config"]["early_stop_on"] == "test" and set(summary["metrics"]) == {"test"}
    assert "test_auroc" in pd.read_csv(tmp_path / "run" / "epochs.csv")
