import itertools
import json

import numpy as np
import pandas as pd
import pytest

from medft.errors import DataError
from medft.report import figures, tables
from medft.report import tables as report
from medft.report.collect import collect_runs


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
        # LP a zero-mean spread of its own about FT's seeds: a pair with none has zero spread,
        # which is not tested (Auto-RGN's pairs here).
        jitter = 0.003 * (1, -1, 0)[seed] if strategy == "LP" else 0.0
        test = base + (0.0 if lr == good_lr else -0.1) + 0.01 * seed + jitter
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
    assert table.loc[0, "AUROC"] == "81.00 (0.58)"


def test_best_combination_per_dataset():
    best = report.best_combination(report.summarise(make_runs()))
    assert best[["dataset", "model", "strategy"]].values.tolist() == [["toy", "vgg19", "Auto-RGN"]]
    assert best.loc[0, "improvement"] == round((88 / 86 - 1) * 100, 2) == 2.33


def test_relative_improvement_figure_is_labelled_with_error_bars():
    runs = make_runs()
    chosen = tables.select_lr(runs)
    summary = tables.summarise_chosen(chosen)
    improvement = tables.relative_improvement(summary, chosen)
    figure = figures.relative_improvement(improvement, "toy")
    ax = figure.axes[0]
    assert "improvement over FT" in ax.get_ylabel() and "AUROC" in ax.get_ylabel()
    assert ax.get_xlabel() == "Fine-tuning strategy"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["resnet50", "vgg19"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["LP", "Auto-RGN"]
    # seeds add 0, 1, 2 points to both FT and the strategy: the per-seed ratios differ
    ratios = [(82 + s) / (80 + s) * 100 - 100 for s in (0, 1, 2)]
    se = np.std(ratios, ddof=1) / np.sqrt(3)
    row = improvement.set_index(["model", "strategy"]).loc[("resnet50", "Auto-RGN")]
    assert row["improvement_se"] == pytest.approx(se)
    assert len(ax.lines) + len(ax.collections) > 0  # the error bars are drawn


def test_collect_runs_reads_metrics_files(tmp_path):
    summary = {
        "config": {"model": "m", "strategy": "FT", "lr": 1e-3, "seed": 1},
        "dataset": "d",
        "task": "binary",
        "main_metric": "auroc",
        "best_epoch": 2,
        "epochs_trained": 5,
        "metrics": {"val": {"auroc": 0.7}, "test": {"auroc": 0.6}},
    }
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(summary))
    runs = collect_runs([path])
    assert runs.loc[0, ["dataset", "model", "lr", "val_auroc", "test_auroc"]].tolist() == [
        "d",
        "m",
        1e-3,
        0.7,
        0.6,
    ]

    # Cut short (a copy interrupted): the workflow's report stops naming the file and the fix,
    # not with a JSONDecodeError.
    path.write_text(json.dumps(summary)[:40])
    with pytest.raises(DataError, match=r"metrics\.json does not read .*delete it and rerun"):
        collect_runs([path])


def test_one_seed_shows_a_dash_not_a_zero_standard_error():
    runs = make_runs()
    one = tables.summarise(runs[runs["seed"] == 0])
    assert one["auroc_se"].isna().all()
    table = tables.dataset_table(one, metrics=["auroc"])
    assert table.loc[0, "AUROC"] == "80.00 (–)"
    long = tables.paper_table(one, ["auroc", "map"])
    wide = tables.paper_table_wide(long, "md")
    assert "(–)" in wide.iloc[0, 0] and "0.00)" not in " ".join(wide.to_numpy().ravel())


def test_paper_table_bolds_the_best_per_model_and_underlines_the_best_overall():
    summary = tables.summarise(make_runs())
    long = tables.paper_table(summary, ["auroc", "map"])
    bold = long[long["best_in_model"] & (long["metric"] == "auroc")]
    assert bold[["model", "strategy"]].values.tolist() == [
        ["resnet50", "Auto-RGN"],
        ["vgg19", "Auto-RGN"],
    ]
    underlined = long[long["best_overall"] & (long["metric"] == "auroc")]
    assert underlined[["model", "strategy"]].values.tolist() == [["vgg19", "Auto-RGN"]]
    md = tables.paper_table_wide(long, "md")
    assert md.loc["Auto-RGN", ("vgg19", "AUROC")] == "<u>**88.00 (0.58)**</u>"
    assert md.loc["Auto-RGN", ("resnet50", "AUROC")] == "**83.00 (0.58)**"
    assert md.loc["FT", ("resnet50", "AUROC")] == "81.00 (0.58)"
    latex = tables.paper_table_wide(long, "latex")
    assert latex.loc["Auto-RGN", ("vgg19", "AUROC")] == r"\underline{\textbf{88.00 (0.58)}}"


def test_paper_table_marks_verdicts_on_the_main_metric_only():
    summary = tables.summarise(make_runs())
    verdicts = pd.DataFrame(
        [
            {"dataset": "toy", "model": "resnet50", "strategy": "LP", "verdict": "worse"},
            {"dataset": "toy", "model": "resnet50", "strategy": "Auto-RGN", "verdict": "better"},
        ]
    )
    md = tables.paper_table_wide(tables.paper_table(summary, ["auroc", "map"], verdicts), "md")
    assert md.loc["LP", ("resnet50", "AUROC")].endswith(" ↓")
    assert md.loc["Auto-RGN", ("resnet50", "AUROC")].endswith(" ↑")
    assert not md.loc["LP", ("resnet50", "mAP")].endswith("↓")


def test_effectiveness_rounds_to_one_decimal_and_totals():
    rows = []
    for dataset, gain in (("a", 1.0), ("b", 1.0), ("c", -1.0)):
        for strategy, value in (("FT", 80.0), ("LP", 80.0 + gain)):
            rows.append(
                {
                    "dataset": dataset,
                    "model": "m",
                    "strategy": strategy,
                    "lr": 1e-3,
                    "main_metric": "auroc",
                    "auroc_mean": value,
                }
            )
    counts = tables.effectiveness(pd.DataFrame(rows)).set_index("strategy")
    assert counts.loc["LP", "Effectiveness (%)"] == 66.7
    assert counts.loc["Total", ["m", "Total"]].tolist() == [2, 2]
    verdicts = pd.DataFrame(
        [
            {"dataset": d, "model": "m", "strategy": "LP", "verdict": v}
            for d, v in (("a", "better"), ("b", "no significant difference"), ("c", "worse"))
        ]
    )
    both = tables.effectiveness(pd.DataFrame(rows), verdicts).set_index("strategy")
    assert both.loc["LP", ["Total", "Better (verdict)"]].tolist() == [2, 1]
    assert both.loc["LP", "Better (%)"] == 33.3


def test_effectiveness_counts_zero_where_a_strategy_has_no_comparison_on_a_model():
    """LP ran on resnet50 only: its vgg19 cell is 0, not a crash on a missing value."""
    summary = pd.DataFrame(
        {
            "dataset": "d",
            "model": ["resnet50", "resnet50", "vgg19", "vgg19"],
            "strategy": ["FT", "LP", "FT", "Auto-RGN"],
            "lr": 1e-3,
            "main_metric": "auroc",
            "auroc_mean": [80.0, 82.0, 80.0, 81.0],
        }
    )
    counts = report.effectiveness(summary).set_index("strategy")
    assert counts.loc["LP", "resnet50"] == 1 and counts.loc["LP", "vgg19"] == 0
    assert counts.loc["Auto-RGN", "vgg19"] == 1 and counts.loc["Total", "Total"] == 2


def test_runs_chosen_on_the_evaluation_split_get_the_caution_and_no_verdicts(tmp_path):
    from medft.report.artefacts import dataset_artefacts, summary_artefacts
    from medft.report.evidence import Evidence, SummaryReport

    # The lr chosen on the evaluation split, or each run's epoch kept by early stopping on it
    # (the lr still chosen on validation), or both: each selects the runs the verdicts would test.
    chosen_by = {
        ("val", "val"): None,
        ("test", "val"): "the lr was",
        ("val", "test"): "each run's epoch was",
        ("test", "test"): "the lr and each run's epoch were",
    }
    for (select_on, early_stop_on), chosen in chosen_by.items():
        out = tmp_path / f"{select_on}-{early_stop_on}"
        runs = make_runs().assign(early_stop_on=early_stop_on)
        evidence = Evidence.from_runs(runs, select_on, margin=2.0)
        dataset_artefacts(evidence, out)
        selected = chosen is not None
        caveat = f"{chosen} chosen on this evaluation split" if selected else "Caution"
        assert (caveat in (out / "statistics.md").read_text()) == selected
        assert (caveat in (out / "paper_table.md").read_text()) == selected
        assert (caveat in (out / "table.md").read_text()) == selected
        # ... and no comparison is tested from them, nor counted as "0 better" in Table 12.
        statistics = pd.read_csv(out / "statistics.csv")
        assert statistics["verdict"].eq("not tested").all() == selected
        summary_artefacts([evidence], out / "summary")
        table_12 = pd.read_csv(out / "summary" / "effectiveness.csv")
        assert ("Better (verdict)" in table_12) != selected
        # The margin the statistics were run with still reaches the summary's tests.
        assert SummaryReport([evidence]).margin == 2.0


def test_a_claim_the_report_does_not_hold_is_named(tmp_path):
    from medft.report.claims import main

    (tmp_path / "report" / "synth-nodule").mkdir(parents=True)
    pd.DataFrame({"strategy": ["LP", "Auto-RGN"], "verdict": ["inconclusive", "worse"]}).to_csv(
        tmp_path / "report" / "synth-nodule" / "statistics.csv", index=False
    )
    claims = tmp_path / "claims.yaml"
    claims.write_text(
        "- {dataset: synth-nodule, strategy: Auto-RGN, verdict: worse}\n"
        "- {dataset: synth-nodule, strategy: LP, verdict: better}\n"
        "- {dataset: synth-nodule, strategy: LP, verdict: worse, table: robustness}\n"
    )
    assert main([str(tmp_path / "report"), str(claims)]) == 1
    claims.write_text("- {dataset: synth-nodule, strategy: Auto-RGN, verdict: worse}\n")
    assert main([str(tmp_path / "report"), str(claims)]) == 0


def test_html_tables_set_markdown_code_and_bold_as_html(tmp_path):
    """Captions and cells name options in backticks (`checkpoints: none`): the page shows
    them as code, as the Markdown beside it does, not as stray backticks."""
    from medft.report.formats import write_table

    frame = pd.DataFrame({"`near_duplicates: warn`": ["**kept**"], "x": ["a < b"]})
    write_table(tmp_path / "t", "T", "set `checkpoints: none` & see", frame)
    page = (tmp_path / "t.html").read_text()
    assert "<p>set <code>checkpoints: none</code> &amp; see</p>" in page
    assert "<th><code>near_duplicates: warn</code></th>" in page and "<b>kept</b>" in page
    assert "`" not in page


def test_runs_that_recorded_no_model_provenance_get_a_card_that_says_so(tmp_path):
    """Results of a medft from before the model card (no weights' provenance in
    metrics.json) still make every artefact the workflow declares, the card saying what is
    missing; a model whose runs recorded it shows it."""
    from medft.report.artefacts import dataset_artefacts
    from medft.report.dataset_writers import NOT_RECORDED
    from medft.report.evidence import Evidence

    dataset_artefacts(Evidence.from_runs(make_runs()), tmp_path / "old")
    card = pd.read_csv(tmp_path / "old" / "model_card.csv").fillna("")
    assert list(card["model"]) == ["resnet50", "vgg19"]
    assert (card["preprocessing"] == NOT_RECORDED).all()
    runs = make_runs()
    runs["preprocessing"] = np.where(runs["model"] == "vgg19", "224 px (shorter side 256)", "")
    dataset_artefacts(Evidence.from_runs(runs), tmp_path / "new")
    card = pd.read_csv(tmp_path / "new" / "model_card.csv").set_index("model")
    assert card.loc["vgg19", "preprocessing"] == "224 px (shorter side 256)"
    assert card.loc["resnet50", "preprocessing"] == NOT_RECORDED


def test_the_heatmap_marks_decided_verdicts_only():
    import matplotlib.pyplot

    from medft.report.summary_figures import improvement_heatmap

    improvement = pd.DataFrame(
        {"dataset": "d", "model": "m", "strategy": ["FT", "LP", "L2-SP"], "improvement": [0, -5, 1]}
    )
    verdicts = pd.DataFrame(
        {
            "dataset": "d",
            "model": "m",
            "strategy": ["LP", "L2-SP"],
            "verdict": ["worse", "inconclusive"],
        }
    )
    figure = improvement_heatmap(improvement.astype({"improvement": float}), verdicts)
    axes = figure.axes[0]
    assert {text.get_text() for text in axes.texts} == {"-5.0▼", "+1.0"}
    matplotlib.pyplot.close(figure)
