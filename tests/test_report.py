import itertools
import json

import numpy as np
import pandas as pd
import pytest

from medft import report


def make_runs() -> pd.DataFrame:
    """Two models × three strategies × two lrs × three seeds; lr 1e-3 wins on val everywhere
    except LP, whose val prefers 1e-4."""
    rows = []
    for model, strategy, lr, seed in itertools.product(
        ["resnet50", "vgg19"], ["FT", "LP", "Auto-RGN"], [1e-3, 1e-4], [0, 1, 2]
    ):
        base = {"FT": 0.80, "LP": 0.70, "Auto-RGN": 0.82}[strategy]
        base += 0.05 if model == "vgg19" else 0.0
        good_lr = 1e-4 if strategy == "LP" else 1e-3
        val = base + (0.02 if lr == good_lr else -0.02)
        test = base + (0.0 if lr == good_lr else -0.1) + 0.01 * seed
        rows.append(
            {
                "dataset": "toy",
                "model": model,
                "strategy": strategy,
                "lr": lr,
                "seed": seed,
                "main_metric": "auroc",
                "val_auroc": val,
                "test_auroc": test,
                **{
                    f"test_{m}": test
                    for m in ("map", "accuracy", "balanced_accuracy", "kappa", "f1")
                },
            }
        )
    return pd.DataFrame(rows)


def test_summary_selects_lr_on_val_and_reports_mean_and_se_in_percent():
    summary = report.summarise(make_runs()).set_index(["model", "strategy"])
    assert summary.loc[("resnet50", "LP"), "lr"] == 1e-4
    assert summary.loc[("resnet50", "FT"), "lr"] == 1e-3
    # seeds add 0, 0.01, 0.02: mean +0.01, SE = std(ddof=1)/sqrt(3) = 0.01/sqrt(3)
    assert summary.loc[("resnet50", "FT"), "auroc_mean"] == pytest.approx(81.0)
    assert summary.loc[("resnet50", "FT"), "auroc_se"] == pytest.approx(1 / np.sqrt(3))
    assert summary.loc[("vgg19", "Auto-RGN"), "n_seeds"] == 3


def test_selecting_on_test_can_pick_another_lr():
    runs = make_runs()
    runs.loc[(runs["strategy"] == "FT") & (runs["lr"] == 1e-4), "test_auroc"] = 0.99
    summary = report.summarise(runs, select_on="test").set_index(["model", "strategy"])
    assert summary.loc[("resnet50", "FT"), "lr"] == 1e-4


def test_relative_improvement_and_effectiveness():
    summary = report.summarise(make_runs())
    improvement = report.relative_improvement(summary).set_index(["model", "strategy"])
    assert improvement.loc[("resnet50", "Auto-RGN"), "improvement"] == pytest.approx(
        (83 / 81 - 1) * 100
    )
    assert improvement.loc[("resnet50", "FT"), "improvement"] == pytest.approx(0)
    counts = report.effectiveness(summary).set_index("strategy")
    assert counts.loc["Auto-RGN", ["resnet50", "vgg19", "Total"]].tolist() == [1, 1, 2]
    assert counts.loc["LP", "Total"] == 0
    assert counts.loc["Auto-RGN", "Effectiveness (%)"] == 100.0
    assert "FT" not in counts.index


def test_effectiveness_needs_more_than_a_tenth_of_a_percent():
    summary = pd.DataFrame(
        {
            "dataset": "d",
            "model": "m",
            "strategy": ["FT", "LP", "Auto-RGN"],
            "lr": 1e-3,
            "main_metric": "auroc",
            "auroc_mean": [80.0, 80.08, 80.09],
        }
    )
    summary.loc[2, "auroc_mean"] = 80.0 * 1.0011
    counts = report.effectiveness(summary).set_index("strategy")
    assert counts.loc["LP", "Total"] == 0 and counts.loc["Auto-RGN", "Total"] == 1


def test_dataset_table_marks_the_best_strategy_per_model():
    table = report.dataset_table(report.summarise(make_runs()), metrics=["auroc"])
    bold = table[table["AUROC"].str.startswith("**")]
    assert bold[["model", "strategy"]].values.tolist() == [
        ["resnet50", "Auto-RGN"],
        ["vgg19", "Auto-RGN"],
    ]
    assert table.loc[0, "AUROC"] == "81.00 ± 0.58"


def test_best_combination_per_dataset():
    best = report.best_combination(report.summarise(make_runs()))
    assert best[["dataset", "model", "strategy"]].values.tolist() == [["toy", "vgg19", "Auto-RGN"]]
    assert best.loc[0, "improvement"] == pytest.approx((88 / 86 - 1) * 100)


def test_relative_improvement_figure_is_labelled():
    summary = report.summarise(make_runs())
    figure = report.plot_relative_improvement(report.relative_improvement(summary), "toy")
    ax = figure.axes[0]
    assert "improvement over FT" in ax.get_ylabel() and "AUROC" in ax.get_ylabel()
    assert ax.get_xlabel() == "Fine-tuning strategy"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["resnet50", "vgg19"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["LP", "Auto-RGN"]


def test_collect_runs_reads_metrics_files(tmp_path):
    summary = {
        "config": {"model": "m", "strategy": "FT", "lr": 1e-3, "seed": 1},
        "dataset": "d",
        "main_metric": "auroc",
        "best_epoch": 2,
        "epochs_trained": 5,
        "metrics": {"val": {"auroc": 0.7}, "test": {"auroc": 0.6}},
    }
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(summary))
    runs = report.collect_runs([path])
    assert runs.loc[0, ["dataset", "model", "lr", "val_auroc", "test_auroc"]].tolist() == [
        "d",
        "m",
        1e-3,
        0.7,
        0.6,
    ]
