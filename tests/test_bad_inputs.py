"""No silent wrong benchmark: every input that once gave a plausible wrong result either works
right or stops with one message naming the file, row, key, label or split and the fix."""

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from imagefiles import marked_image
from medft.data.preprocess import Preprocess
from medft.data.shards import DatasetMeta, DatasetWriter, read_meta
from medft.data.sources import prepare_dataset
from medft.engine import Cell, TrainConfig, train
from medft.errors import ConfigError, DataError, DiskFullError, DivergedError
from medft.runtime import atomic_save

PRE = Preprocess(16, 16)


def save(path, mode="L", color=100, size=(20, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    marked_image(mode, size, color, str(path)).save(path)
    return path


def folder(tmp_path, layout: dict[str, int], **kinds) -> str:
    """``{"Training/glioma": 6, ...}`` → that many grey PNGs per folder under tmp_path/root."""
    root = tmp_path / "root"
    for sub, n in layout.items():
        for k in range(n):
            save(root / sub / f"{k}.png", **kinds.get(sub, {}))
    return str(root)


def prepare(tmp_path, source="imagefolder", **options):
    return prepare_dataset("mine", {"source": source, **options}, PRE, tmp_path / "out")


def manifest(out):
    return pd.read_parquet(out / "manifest.parquet")


def assert_nothing_written(tmp_path):
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


# -- layouts ----------------------------------------------------------------------------------
def test_kaggle_training_testing_layout_is_four_classes(tmp_path):
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    layout = {f"{split}/{c}": n for split, n in (("Training", 8), ("Testing", 3)) for c in classes}
    out = prepare(tmp_path, root=folder(tmp_path, layout))
    meta = read_meta(out)
    assert meta.classes == list(classes) and meta.task == "multiclass"
    assert meta.split_counts["test"] == 12 and sum(meta.split_counts.values()) == 44


def test_a_class_folder_of_image_folders_is_named(tmp_path):
    layout = {f"Part{p}/{c}": 6 for p in (1, 2) for c in ("a", "b")}
    with pytest.raises(DataError) as error:
        prepare(tmp_path, root=folder(tmp_path, layout))
    assert "'class' folders Part1/, Part2/ all hold the same folders (a, b)" in str(error.value)
    assert "set `root: " in str(error.value)
    assert_nothing_written(tmp_path)


def test_a_grey_first_image_does_not_turn_the_set_grey(tmp_path):
    root = tmp_path / "root"
    for k in range(6):
        save(root / "a" / f"{k}.png", "L", 100)  # grey, and first in sorted order
        save(root / "b" / f"{k}.png", "RGB", (200, 10, 10))
    save(root / "b" / "6.png", "I;16", 4000)  # 16-bit grey
    palette = Image.new("P", (20, 24), 1)
    palette.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    palette.save(root / "a" / "6.png")
    out = prepare(tmp_path, root=str(root))
    assert read_meta(out).channels == 3
    rows = manifest(out)
    shards = np.load(out / "shards" / "00000.npy")
    pixel = {Image.open(p).mode: shards[i, 8, 8] for i, p in enumerate(rows["id"])}
    assert pixel["RGB"].tolist() == [200, 10, 10]  # colour kept, not averaged to grey
    assert pixel["L"].tolist() == [100, 100, 100]  # grey replicated
    assert pixel["P"].tolist() == [10, 200, 10]  # palette resolved to its colour
    assert len(pixel) == 4


# -- labels and splits ------------------------------------------------------------------------
def table(tmp_path, labels, **columns):
    rows = []
    for i, label in enumerate(labels):
        save(tmp_path / "images" / f"{i}.png")
        rows.append({"path": f"{i}.png", "label": label, **{k: v[i] for k, v in columns.items()}})
    pd.DataFrame(rows).to_csv(tmp_path / "images" / "labels.csv", index=False)
    return str(tmp_path / "images" / "labels.csv")


def test_empty_label_names_the_row(tmp_path):
    labels = ["a", "b"] * 10
    labels[7] = ""
    with pytest.raises(DataError, match=r"labels.csv, row 9: the label \(label\) is empty"):
        prepare(tmp_path, "table", table=table(tmp_path, labels))
    assert_nothing_written(tmp_path)


def test_a_rare_spelling_is_named_with_its_rows_and_near_miss(tmp_path):
    labels = ["neutrophil", "lymphocyte"] * 10 + ["Neutrophil"]
    path = table(tmp_path, labels)
    with pytest.raises(DataError) as error:
        prepare(tmp_path, "table", table=path)
    message = str(error.value)
    assert "class 'Neutrophil' has only 1 image(s) (row 22)" in message
    assert "misspelling of ['neutrophil']" in message and "`classes:`" in message
    # Listing the classes accepts a rare one (and rejects a label outside them).
    out = prepare(tmp_path, "table", table=path, classes=["lymphocyte", "neutrophil", "Neutrophil"])
    assert read_meta(out).task == "multiclass"


def test_one_class_and_tiny_sets_are_refused(tmp_path):
    with pytest.raises(DataError, match="found only the class"):
        prepare(tmp_path, root=folder(tmp_path, {"only": 10}))
    with pytest.raises(DataError, match=r"split .* holds only class|split is empty"):
        prepare(tmp_path, "table", table=table(tmp_path, ["a", "b", "a"]), min_class_images=1)
    assert_nothing_written(tmp_path)


def test_a_single_class_validation_split_is_refused_before_training(tmp_path):
    labels = ["a", "b"] * 10
    split = ["train"] * 16 + ["val", "val", "test", "test"]
    labels[16], labels[17] = "a", "a"
    with pytest.raises(DataError, match=r"the val split \(2 image\(s\)\) holds only class \['a'\]"):
        prepare(tmp_path, "table", table=table(tmp_path, labels, s=split), split_column="s")


def test_multilabel_needs_every_label_positive_in_training(tmp_path):
    labels = [str(i % 2) for i in range(20)]
    never = ["0"] * 20
    val_only = ["0"] * 16 + ["1", "0", "0", "0"]
    split = ["train"] * 16 + ["val", "val", "test", "test"]
    path = table(tmp_path, labels, never=never, s=split)
    options = dict(table=path, label_columns=["label", "never"], split_column="s")
    with pytest.raises(DataError, match=r"class 'never' has no images"):
        prepare(tmp_path, "table", **options)
    path = table(tmp_path, labels, rare=val_only, s=split)
    with pytest.raises(DataError, match=r"\['rare'\] are never positive in the train"):
        prepare(tmp_path, "table", **{**options, "table": path, "label_columns": ["label", "rare"]})


def test_a_class_missing_from_evaluation_is_warned_about(tmp_path, caplog):
    labels = ["a", "b", "c"] * 6 + ["a", "b", "a", "b"]
    split = ["train"] * 18 + ["val", "val", "test", "test"]
    prepare(tmp_path, "table", table=table(tmp_path, labels, s=split), split_column="s")
    assert "class(es) ['c'] never present in the val split" in caplog.text
    assert "class(es) ['c'] never present in the test split" in caplog.text


# -- config -----------------------------------------------------------------------------------
def test_dataset_keys_are_checked_against_the_source(tmp_path):
    from medft.data.sources import parse_options

    with pytest.raises(
        ConfigError, match=r"unknown key `group_colum`; did you mean `group_column`"
    ):
        parse_options({"name": "x", "source": "table", "table": "t.csv", "group_colum": "p"})
    with pytest.raises(ConfigError, match="missing key\\(s\\) `root`"):
        parse_options({"name": "x", "source": "imagefolder"})
    with pytest.raises(ConfigError, match="`val_fraction` must be float"):
        parse_options({"name": "x", "source": "imagefolder", "root": "r", "val_fraction": "a"})
    with pytest.raises(ConfigError, match="unknown dataset source 'tabel'"):
        parse_options({"name": "x", "source": "tabel"})


def test_duplicate_names_unknown_models_and_weights_fail_the_check(tmp_path):
    from medft.workflow import Grid, check_grid

    entry = {"name": "n", "source": "synthetic", "task": "synth-nodule"}
    base = {"datasets": [entry], "models": ["test_resnet"], "weights": "none"}
    with pytest.raises(ConfigError, match="the name 'n' is used by 2 entries"):
        check_grid(Grid({**base, "datasets": [entry, entry]}))
    with pytest.raises(ConfigError, match="unknown model 'resnet5O' \\(did you mean resnet50"):
        check_grid(Grid({**base, "models": ["resnet5O"]}))
    with pytest.raises(ConfigError, match="weights 'imagenett' is neither a file nor a known"):
        check_grid(Grid({**base, "weights": "imagenett"}))
    with pytest.raises(ConfigError, match="timm has no tag 'nope' for 'test_resnet'"):
        check_grid(Grid({**base, "weights": "timm:nope"}))
    check_grid(Grid(base))


# -- diverging and undefined runs -------------------------------------------------------------
def cell(data, out, **overrides):
    settings = dict(model="test_resnet", weights="none", strategy="FT", lr=1e-3, seed=0)
    settings |= dict(epochs=4, patience=10, batch_size=16, workers=0)
    return TrainConfig(data=str(data), out=str(out), **{**settings, **overrides})


def test_divergence_keeps_the_best_finite_epoch_and_is_recorded(
    tiny_datasets, tmp_path, monkeypatch
):
    real = Cell.train_one_epoch
    monkeypatch.setattr(
        Cell, "train_one_epoch", lambda self, e: real(self, e) if e < 2 else (float("nan"), None)
    )
    summary = train(cell(tiny_datasets["binary"], tmp_path))
    assert summary["diverged"] == {"epoch": 2, "reason": "train loss nan"}
    assert summary["best_epoch"] in (0, 1) and summary["epochs_trained"] == 3
    assert np.isfinite(summary["metrics"]["test"]["auroc"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["diverged"]["epoch"] == 2
    log = pd.read_csv(tmp_path / "epochs.csv")
    assert log["epoch"].tolist() == [0, 1, 2] and np.isnan(log["train_loss"].iloc[2])


def test_a_huge_lr_fails_naming_the_cell_and_a_lower_lr(tiny_datasets, tmp_path):
    with pytest.raises(DivergedError) as error:
        train(cell(tiny_datasets["multiclass"], tmp_path, lr=1e4))
    message = str(error.value)
    assert "FT lr=10000 seed=0 diverged at epoch 0" in message
    assert "try a lower lr than 10000" in message
    assert not (tmp_path / "metrics.json").exists()


def test_an_undefined_validation_metric_never_counts_and_fails_by_name(tmp_path, caplog):
    data = tmp_path / "data"
    meta = DatasetMeta(name="d", task="binary", classes=["no", "yes"], image_size=16, channels=1)
    rng = np.random.default_rng(0)
    with DatasetWriter(data, meta) as writer:
        for i, split in enumerate(["train"] * 20 + ["val"] * 4 + ["test"] * 4):
            label = 0 if split == "val" else i % 2  # the val split holds one class only
            image = rng.integers(0, 255, (16, 16, 1), dtype=np.uint8)
            writer.add(image, id=str(i), split=split, label=label)
    with pytest.raises(DataError) as error:
        train(cell(data, tmp_path / "run", patience=2, main_metric="auroc"))
    assert "the val auroc was undefined in every epoch" in str(error.value)
    assert "label 'yes'" in str(error.value)
    assert "does not count as an improvement" in caplog.text


def test_tables_mark_diverged_cells_and_drop_undefined_ones(caplog):
    from medft.report import tables as report

    runs = pd.DataFrame(
        [
            {
                "dataset": "d",
                "model": "m",
                "strategy": s,
                "lr": 1e-3,
                "seed": seed,
                "main_metric": "auroc",
                "val_auroc": v,
                "diverged_epoch": d,
                **{f"test_{k}": 0.7 for k in report.METRICS},
            }
            for s, v, d in (("FT", 0.8, None), ("LP", 0.7, 3), ("L2-SP", float("nan"), None))
            for seed in (0, 1)
        ]
    )
    summary = report.summarise(runs)
    assert set(summary["strategy"]) == {"FT", "LP"}
    assert "dropped d m L2-SP lr=0.001 seed=0: its val auroc is undefined" in caplog.text
    table = report.dataset_table(summary)
    assert table["strategy"].tolist() == ["FT", "LP" + report.DIVERGED_MARK]


# -- safety -----------------------------------------------------------------------------------
class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_planted_pickle_in_last_pt_is_not_executed(tiny_datasets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    with open(out / "last.pt", "wb") as f:
        pickle.dump({"model": Payload()}, f)
    torch.save({"state": Payload()}, out / "best.pt")
    with pytest.raises(DataError, match=r"last.pt is not a medft checkpoint"):
        train(cell(tiny_datasets["binary"], out))
    assert not (tmp_path / "PWNED").exists()


def test_a_full_disk_leaves_no_temporary_file(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to simulate a full disk")
    (tmp_path / "best.pt.tmp").symlink_to("/dev/full")
    with pytest.raises(DiskFullError, match=f"no space left writing {tmp_path / 'best.pt'}"):
        atomic_save({"w": torch.zeros(1000)}, tmp_path / "best.pt")
    assert not os.path.lexists(tmp_path / "best.pt.tmp")
    assert not (tmp_path / "best.pt").exists()


# -- files and tables -------------------------------------------------------------------------
def test_a_non_utf8_file_name_is_prepared(tmp_path):
    root = folder(tmp_path, {"a": 6, "b": 6})
    odd = os.path.join(os.fsencode(root), b"a", b"caf\xe9.png")  # Latin-1 bytes
    with open(odd, "wb") as f:
        Image.new("L", (20, 24), 50).save(f, format="PNG")
    out = prepare(tmp_path, root=root)
    assert manifest(out)["id"].str.contains("caf\\xe9.png", regex=False).any()


def test_an_empty_csv_is_named(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv: the table is empty"):
        prepare(tmp_path, "table", table=str(tmp_path / "empty.csv"))


# -- conveniences -----------------------------------------------------------------------------
def test_subsampling_keeps_the_evaluation_split_and_whole_patients(tmp_path):
    labels = ["a", "b"] * 40
    groups = [f"P{i // 4}" for i in range(80)]
    path = table(tmp_path, labels, patient=groups)
    full = manifest(prepare(tmp_path, "table", table=path, group_column="patient"))
    half = prepare_dataset(
        "half",
        {"source": "table", "table": path, "group_column": "patient", "train_fraction": 0.5},
        PRE,
        tmp_path / "half",
    )
    half = manifest(half)
    # The evaluation split does not depend on the fraction; training keeps whole patients.
    assert set(half.loc[half["split"] == "test", "id"]) == set(
        full.loc[full["split"] == "test", "id"]
    )
    train, full_train = (m[m["split"] == "train"] for m in (half, full))
    assert len(train) == pytest.approx(len(full_train) / 2, abs=4)
    kept_patients = set(train["group"])
    assert (full_train["group"].isin(kept_patients).sum()) == len(train)
    capped = prepare_dataset(
        "capped",
        {"source": "table", "table": path, "max_images_per_class": 3},
        PRE,
        tmp_path / "capped",
    )
    counts = manifest(capped).groupby(["split", "label"]).size()
    assert counts.max() == 3 and counts.loc["train"].tolist() == [3, 3]


def test_medmnist_and_synthetic_subsample_too(tmp_path, breastmnist):
    from medft.data import synthetic

    out = prepare_dataset(
        "breastmnist",
        {
            "source": "medmnist",
            "npz": str(breastmnist),
            "max_images_per_class": 10,
            "duplicates": "keep",
        },
        PRE,
        tmp_path / "bm",
    )
    counts = manifest(out).groupby(["split", "label"]).size()
    assert counts.tolist() == [10] * 6
    # A kept test image equals a training image the cap left out (test-76 = train-115 in
    # BreastMNIST's official split): still found, since the whole training split is hashed.
    assert read_meta(out).duplicates["across_splits"] >= 1
    small = synthetic.SYNTHETIC.get("synth-nodule")
    out = prepare_dataset(
        "synth-nodule",
        {"source": "synthetic", "n_images": 60, "train_fraction": 0.5},
        PRE,
        tmp_path / "synth",
    )
    assert small.task == "binary" and read_meta(out).split_counts["train"] < 0.6 * 0.6 * 60 + 4


def test_path_template_builds_paths_from_an_id_column(tmp_path):
    rows = []
    for i in range(20):
        part = 1 + i % 2
        save(tmp_path / f"HAM10000_images_part_{part}" / f"ISIC_{i:07d}.jpg", "RGB", (i, 0, 0))
        rows.append({"image_id": f"ISIC_{i:07d}", "dx": ["nv", "mel"][i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "HAM10000_metadata.csv", index=False)
    options = dict(
        table=str(tmp_path / "HAM10000_metadata.csv"),
        path_template="HAM10000_images_part_*/{image_id}.jpg",
        label_column="dx",
    )
    out = prepare(tmp_path, "table", **options)
    assert read_meta(out).classes == ["mel", "nv"] and len(manifest(out)) == 20
    save(tmp_path / "HAM10000_images_part_2" / "ISIC_0000000.jpg", "RGB")  # now in both parts
    with pytest.raises(DataError, match=r"row 2: `path_template` gives .* matches 2 files"):
        prepare(tmp_path, "table", **options)


def test_cli_route_prepare_imagefolder_then_train(tmp_path, capsys):
    from medft.cli import main

    root = folder(tmp_path, {"normal": 10, "pneumonia": 10})
    data = tmp_path / "xrays"
    assert main(["prepare", "imagefolder", "--root", root, "--size", "16", "--out", str(data)]) == 0
    assert read_meta(data).classes == ["normal", "pneumonia"]
    common = ["train", "--data", str(data), "--model", "test_resnet", "--weights", "none"]
    common += ["--strategy", "FT", "--seed", "0", "--epochs", "2", "--workers", "0"]
    assert main([*common, "--lr", "1e-3", "--out", str(tmp_path / "ok")]) == 0
    assert "best epoch" in capsys.readouterr().out
    # A diverging lr: one line naming the cell and the fix, no traceback, nothing kept.
    assert main([*common, "--lr", "1e4", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("medft train: error: xrays test_resnet FT lr=10000 seed=0 diverged")
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "bad" / "metrics.json").exists()
    # A data error: one line naming the file.
    (tmp_path / "empty.csv").write_text("")
    code = main(
        ["prepare", "table", "--table", str(tmp_path / "empty.csv"), "--size", "16"]
        + ["--out", str(tmp_path / "t")]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"medft prepare: error: {tmp_path / 'empty.csv'}: the table is empty (no header row)"
    )


def test_a_job_ends_a_data_error_with_one_line_in_its_log(tmp_path):
    from medft.jobs import log_to

    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as exit_:
        with log_to(log):
            raise DataError("labels.csv, row 9: the label (label) is empty")
    assert str(exit_.value) == f"medft: labels.csv, row 9: the label (label) is empty (log: {log})"
    assert log.read_text() == "error: labels.csv, row 9: the label (label) is empty\n"


def test_progress_in_a_log_file_is_plain_lines(tmp_path, monkeypatch, caplog):
    from medft import runtime

    monkeypatch.setattr(runtime, "LOG_PROGRESS_EVERY_S", 0.0)
    with open(tmp_path / "log", "w") as log:
        monkeypatch.setattr("sys.stderr", log)
        with caplog.at_level("INFO"):
            assert list(runtime.progress(range(3), 3, "prepare x", unit="images")) == [0, 1, 2]
    assert "\r" not in (tmp_path / "log").read_text()
    assert "prepare x: 1/3 images (33%" in caplog.text


def test_an_unreachable_weights_host_lists_the_offline_choices(monkeypatch):
    import urllib.error

    from torchvision.models import _api

    from medft.models import create_model

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(_api, "load_state_dict_from_url", offline)
    with pytest.raises(DataError) as error:
        create_model("resnet50", 2, weights="imagenet")
    message = str(error.value)
    assert "cannot download the 'imagenet' weights of resnet50 (URLError" in message
    assert "`weights: PATH/TO/state_dict.pth`" in message and "`weights: none`" in message


def test_the_own_data_template_is_a_valid_config():
    from pathlib import Path

    from medft.data.options import TableOptions
    from medft.workflow import Grid, load_config

    repo = Path(__file__).resolve().parents[1]
    config = load_config([repo / "config" / "my-data.yaml"], workdir=repo)
    (options,) = Grid(config).dataset_options.values()
    assert isinstance(options, TableOptions)
    assert (options.label_column, options.group_column) == ("diagnosis", "patient_id")
    assert config["results"] == "results/my-data" and config["epochs"] == 50
