"""`medft report` on results tables from outside the workflow: the paper's published numbers
and per-seed rows."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medft.cli import main
from medft.report import inputs, verdicts

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "paper_tables_3_10.csv"
# The paper's Table 11, as printed (improvement rounded to one decimal there).
TABLE_11 = [
    ("CheXpert", "ResNet-50", "LP-FT", 1.9),
    ("MURA-Shoulder", "VGG-19", "Auto-RGN", 4.7),
    ("MURA-Wrist", "VGG-19", "L1-SP", 2.2),
    ("MURA-Humerus", "DenseNet-121", "LP-FT", 1.5),
    ("T1w-MRI", "VGG-19", "FT", 0.0),
    ("BACH", "DenseNet-121", "Auto-RGN", 11.1),
    ("ISIC-2020", "DenseNet-121", "LP", 20.8),
    ("CholecT50-Instrument", "ResNet-50", "L1-SP", 1.6),
]


def test_the_published_tables_regenerate_the_papers_table_11(tmp_path, capsys):
    assert main(["report", str(REFERENCE), "--out", str(tmp_path)]) == 0
    best = pd.read_csv(tmp_path / "summary" / "best_combination.csv")
    assert list(best.columns[:4]) == ["dataset", "model", "strategy", "improvement"]
    assert [tuple(r) for r in best[["dataset", "model", "strategy"]].values] == [
        published[:3] for published in TABLE_11
    ]
    assert best["improvement"].round(1).tolist() == [published[3] for published in TABLE_11]
    text = (tmp_path / "summary" / "best_combination.csv").read_text()
    assert "CheXpert,ResNet-50,LP-FT,1.90," in text  # two decimals, as written
    for name in ("paper_table.tex", "paper_table.md", "relative_improvement.pdf"):
        assert (tmp_path / "CheXpert" / name).exists()
    assert "wrote" in capsys.readouterr().out
    # Across the 8 datasets (each the mean over its 3 models): Friedman + Nemenyi, and the
    # Bayesian comparison. On 8 blocks LP's mean rank (7.0 of 8, FT 3.4) is not beyond the
    # critical difference, which counting each model as a block (24) made it.
    ranks = pd.read_csv(tmp_path / "summary" / "critical_difference.csv").set_index("strategy")
    assert (ranks["n_blocks"] == 8).all()
    assert ranks["friedman_p"].iloc[0] == pytest.approx(0.0149, abs=1e-4)
    assert ranks["cd"].iloc[0] == pytest.approx(3.712, abs=1e-3)
    assert ranks.loc["LP", "verdict"] == "inconclusive"
    assert (tmp_path / "summary" / "critical_difference.pdf").stat().st_size > 0
    bayes = pd.read_csv(tmp_path / "summary" / "bayesian.csv").set_index("strategy")
    assert len(bayes) == 7 and (bayes["n_blocks"] == 8).all()
    total = bayes[["P(better)", "P(equivalent)", "P(worse)"]].sum(axis=1)
    assert total.to_numpy() == pytest.approx(1.0, abs=1e-3)  # written to 4 digits
    # The posterior alone says LP worse (P 0.991), L1-SP and L2-SP equivalent; its frequentist
    # twin over 8 blocks and 7 strategies cannot reach 0.05 for worse (Holm floor 0.055), nor
    # for equivalent here (L2-SP: one dataset near the margin, Holm p 0.0547).
    assert bayes.loc["LP", "posterior"] == "worse"
    assert bayes.loc["LP", "verdict"] == (
        "cannot decide with 8 datasets (smallest attainable Holm p 0.055)"
    )
    assert bayes.loc["L2-SP", "posterior"] == "equivalent"
    assert bayes.loc["L2-SP", "p_equivalence_holm"] == pytest.approx(0.0547, abs=1e-4)
    assert (bayes.drop(index="LP")["verdict"] == "inconclusive").all()
    assert bayes.loc["G-FL", "posterior"] == "inconclusive"  # P(worse) 0.924
    assert "61 %" not in (tmp_path / "summary" / "bayesian.md").read_text()
    assert ranks["caveat"].isna().all()  # the default view: no warning
    assert (
        "the datasets (each the mean over its models)"
        in (tmp_path / "summary" / "bayesian.md").read_text()
    )
    # Everything on one page, figures embedded.
    page = (tmp_path / "report.html").read_text()
    assert "Bayesian comparison with FT" in page and "data:image/png;base64," in page
    assert page.count("<h2>") == 1 + 8  # the summary and the 8 datasets


def _published():
    rows = []
    for dataset, first, second in (("A", "AUROC", "Accuracy"), ("B", "mAP", "AUROC")):
        for model in ("m1", "m2"):
            for strategy, shift in (("FT", 0.0), ("LP", -2.0), ("LP-FT", 1.0)):
                for metric, base in ((first, 80.0), (second, 70.0)):
                    bump = 2.0 if (model, dataset) == ("m2", "B") else 0.0
                    rows.append((dataset, model, strategy, metric, base + shift + bump, 0.5))
    return pd.DataFrame(rows, columns=inputs.PUBLISHED)


def test_the_dataset_model_view_counts_24_blocks_and_lets_the_8_datasets_decide(tmp_path):
    assert (
        main(["report", str(REFERENCE), "--out", str(tmp_path), "--across-blocks", "dataset_model"])
        == 0
    )
    ranks = pd.read_csv(tmp_path / "summary" / "critical_difference.csv").set_index("strategy")
    assert (ranks["n_blocks"] == 24).all() and ranks["friedman_p"].iloc[0] < 0.001
    # Nemenyi over 24 blocks finds LP worse; its 8 datasets, flipped together, cannot reach
    # 0.05 after Holm over 7 (7 · 2/2⁸).
    assert ranks.loc["LP", "nemenyi"] == "worse"
    assert ranks.loc["LP", "verdict"] == (
        "cannot decide with 8 datasets (smallest attainable Holm p 0.055)"
    )
    assert ranks["caveat"].str.contains("13–18 %").all()
    caption = (tmp_path / "summary" / "bayesian.md").read_text()
    assert "the datasets decide the verdicts" in caption and "61 %" in caption
    bayes = pd.read_csv(tmp_path / "summary" / "bayesian.csv").set_index("strategy")
    assert (bayes["n_signed"] == 8).all()
    assert bayes.loc["LP", "posterior"] == "worse"
    assert bayes.loc["LP", "verdict"] == (
        "cannot decide with 8 datasets (smallest attainable Holm p 0.055)"
    )
    assert bayes.loc["L2-SP", "posterior"] == "equivalent"
    assert bayes.loc["L2-SP", "verdict"] == "inconclusive"


def test_the_bayesian_comparison_refuses_fewer_blocks_than_its_minimum(tmp_path):
    published = pd.read_csv(REFERENCE)
    few = published[published["dataset"].isin(published["dataset"].unique()[:5])]
    few.to_csv(tmp_path / "five.csv", index=False)
    assert main(["report", str(tmp_path / "five.csv"), "--out", str(tmp_path / "out")]) == 0
    bayes = pd.read_csv(tmp_path / "out" / "summary" / "bayesian.csv")
    assert (bayes["n_blocks"] == 5).all() and bayes["P(worse)"].isna().all()
    assert (bayes["verdict"] == "no test with 5 blocks (needs 6)").all()


def test_a_failed_cell_changes_only_its_own_strategys_bayesian_comparison(tmp_path):
    """One cell missing (Auto-RGN on CheXpert with ResNet-50, as a failed job leaves it): the
    rank test ranks CheXpert on its two complete models, but every other strategy's comparison
    with FT keeps all of its data, and Auto-RGN's keeps CheXpert's other two models."""
    published = pd.read_csv(REFERENCE)
    failed = (
        (published["dataset"] == "CheXpert")
        & (published["model"] == "ResNet-50")
        & (published["strategy"] == "Auto-RGN")
    )
    published[~failed].to_csv(tmp_path / "failed.csv", index=False)
    for name, table in (("full", REFERENCE), ("failed", tmp_path / "failed.csv")):
        assert main(["report", str(table), "--out", str(tmp_path / name)]) == 0
    full, failed = (
        pd.read_csv(tmp_path / name / "summary" / "bayesian.csv").set_index("strategy")
        for name in ("full", "failed")
    )
    others = [s for s in full.index if s != "Auto-RGN"]
    pd.testing.assert_frame_equal(full.loc[others], failed.loc[others])
    assert failed.loc["Auto-RGN", "n_blocks"] == 8
    assert failed.loc["Auto-RGN", "median_difference"] != full.loc["Auto-RGN", "median_difference"]
    ranks = pd.read_csv(tmp_path / "failed" / "summary" / "critical_difference.csv")
    assert (ranks["n_blocks"] == 8).all() and (ranks["left_out"] == "CheXpert × ResNet-50").all()
    assert (
        pd.read_csv(tmp_path / "full" / "summary" / "critical_difference.csv")["left_out"]
        .isna()
        .all()
    )


def test_the_diagram_says_what_its_blocks_are_and_which_pairs_it_left_out():
    from medft.report import across, summary_figures

    values = pd.DataFrame(
        [[80.0 + b, 70.0 + b, 81.0 + b] for b in range(6)],
        columns=["FT", "LP", "LP-FT"],
        index=pd.MultiIndex.from_product([list("ABCDEF"), ["m"]], names=["dataset", "model"]),
    )
    for view, wide in (("dataset", values), ("dataset_model", values.iloc[:3])):
        figure = summary_figures.critical_difference(
            across.rank_test(across.blocks(wide, view)), across.BLOCKS[view], ["G × m", "H × m"]
        )
        title = figure.axes[0].get_title()
        assert across.BLOCKS[view] in title and "G × m, H × m" in title


def test_published_means_give_tables_without_verdicts(tmp_path):
    path = tmp_path / "published.csv"
    _published().to_csv(path, index=False)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    best = pd.read_csv(tmp_path / "out" / "summary" / "best_combination.csv")
    assert best[["dataset", "model", "strategy"]].values.tolist() == [
        ["A", "m1", "LP-FT"],
        ["B", "m2", "LP-FT"],
    ]
    assert best["improvement"].tolist() == [round(100 / 80, 2), round(100 / 82, 2)]
    assert "verdict" not in best.columns
    table = (tmp_path / "out" / "A" / "paper_table.md").read_text()
    assert "| strategy   | m1 AUROC" in table  # the main metric first
    assert "as published" in table


def _per_seed(tmp_path, better_by=3.0, blank=None, seeds=3):
    """FT, LP-FT ``better_by`` above it with a seed spread of its own, LP exactly FT's value
    on every seed, G-LF FT's ± 0.3, over ``seeds`` seeds; ``blank``: (strategy, seed) whose
    test value is empty."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        noise = rng.normal(0, 0.5)
        own = {"FT": 0.0, "LP-FT": better_by + rng.normal(0, 0.3), "LP": 0.0}
        own["G-LF"] = rng.normal(0, 0.3)
        for strategy, shift in own.items():
            for lr in (1e-3, 1e-4):
                for split in ("val", "test"):
                    value = (80 + shift + noise + (0 if lr == 1e-3 else -5)) / 100
                    if (strategy, seed) == blank and split == "test":
                        value = np.nan
                    rows.append(("d", "m", strategy, lr, seed, split, "auroc", value))
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=inputs.PER_SEED).to_csv(path, index=False)
    return path


def _statistics(tmp_path, *options, change=None, **per_seed):
    """The statistics ``medft report`` writes for ``_per_seed``'s table, ``change`` (frame →
    frame) made to it first."""
    path = _per_seed(tmp_path, **per_seed)
    if change is not None:
        change(pd.read_csv(path)).to_csv(path, index=False)
    assert main(["report", str(path), "--out", str(tmp_path / "out"), *options]) == 0
    return pd.read_csv(
        tmp_path / "out" / "d" / "statistics.csv", keep_default_na=False, na_values=[""]
    ).set_index("strategy")


def test_per_seed_rows_give_verdicts_from_the_paired_test(tmp_path):
    statistics = _statistics(tmp_path)
    assert statistics.loc["LP-FT", "diff_mean"] == pytest.approx(3.0, abs=0.5)
    assert statistics.loc["LP-FT", "verdict"] == "better"
    # No predictions: the split's resolution is unknown, so nothing is equivalent.
    assert statistics.loc["G-LF", "verdict"] == "inconclusive"
    assert statistics.loc["G-LF", "reason"] == verdicts.NO_RESOLUTION
    summary = pd.read_csv(tmp_path / "out" / "d" / "table.csv").set_index("strategy")
    assert (summary["lr"] == 1e-3).all()


def test_zero_spread_through_the_report_is_not_tested_and_says_why(tmp_path):
    statistics = _statistics(tmp_path)
    # LP: FT's value on every seed; the former rule called it equivalent on [0, 0].
    assert statistics.loc["LP", "verdict"] == "not tested"
    assert statistics.loc["LP", "reason"] == verdicts.ZERO_SPREAD
    assert np.isnan(statistics.loc["LP", "p_value"])
    assert verdicts.ZERO_SPREAD in (tmp_path / "out" / "d" / "statistics.md").read_text()


def test_a_noisy_reference_through_the_report_decides_nothing_three_seeds_cannot_carry(tmp_path):
    # FT scatters by 9 points over three seeds; LP and G-LF, on frozen features, do not move
    # and sit 25 points above FT's mean. On FT's own 2 degrees of freedom that is t ≈ 4.8:
    # not established over a family of two (Holm's first step asks t(0.9875, 2) = 6.2), and
    # the table says how many seeds would decide it.
    rows = [
        ("d", "m", strategy, 1e-3, seed, split, "auroc", value / 100)
        for seed, ft in enumerate((63.0, 72.0, 81.0))
        for strategy, value in (("FT", ft), ("LP", 97.0), ("G-LF", 97.0))
        for split in ("val", "test")
    ]
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=inputs.PER_SEED).to_csv(path, index=False)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    statistics = pd.read_csv(tmp_path / "out" / "d" / "statistics.csv").set_index("strategy")
    assert statistics.loc["LP", "diff_mean"] == pytest.approx(25.0)
    assert statistics["verdict"].tolist() == ["inconclusive", "inconclusive"]
    seeds = int(statistics.loc["LP", "seeds_to_decide"])
    assert 3 < seeds <= 10
    assert f"~{seeds} seeds would decide" in (tmp_path / "out" / "d" / "statistics.md").read_text()


def test_a_missing_seed_through_the_report_drops_that_pair_only(tmp_path):
    statistics = _statistics(tmp_path, blank=("LP-FT", 0))
    assert statistics.loc["LP-FT", "n_pairs"] == 2
    assert statistics.loc["LP-FT", "verdict"] != "not tested"
    assert statistics.loc["G-LF", "n_pairs"] == 3
    assert re.search(r"\| +2 \|\n", (tmp_path / "out" / "d" / "statistics.md").read_text())
    # The run left out is named, so a verdict on fewer seeds than were run is not read as all.
    assert statistics.loc["LP-FT", "reason"].endswith("paired on 2 seeds; no partner for FT's 0")
    assert statistics.loc["G-LF", "reason"] == verdicts.NO_RESOLUTION


def test_runs_of_different_seeds_are_not_tested_and_the_reason_says_how_to_pair_them(tmp_path):
    """A table whose strategies ran different seed numbers has no pairs: the reason names each
    side's seeds and the fix, and no difference is printed as "+nan"."""
    statistics = _statistics(
        tmp_path, change=lambda f: f.assign(seed=f["seed"] + 10 * (f["strategy"] == "LP-FT"))
    )
    assert statistics.loc["LP-FT", "verdict"] == "not tested"
    reason = statistics.loc["LP-FT", "reason"]
    assert reason.startswith(verdicts.FEWER_THAN_TWO)
    assert "FT ran seeds 0, 1, 2, LP-FT 10, 11, 12" in reason
    assert "labelling them with shared seeds pairs them validly" in reason
    assert statistics.loc["G-LF", "verdict"] != "not tested"
    text = (tmp_path / "out" / "d" / "statistics.md").read_text()
    assert "nan" not in text
    assert "FT ran seeds 0, 1, 2, LP-FT 10, 11, 12" in text


def test_margin_zero_through_the_report_shows_no_equivalence_and_says_why(tmp_path):
    statistics = _statistics(tmp_path, "--margin", "0")
    assert statistics.loc["G-LF", "verdict"] == "inconclusive"
    assert statistics.loc["G-LF", "reason"] == verdicts.NO_MARGIN
    assert statistics.loc["LP-FT", "verdict"] == "better"


def test_a_table_early_stopped_on_the_evaluation_split_is_not_tested(tmp_path, capsys):
    """Runs chosen on the split that tests them are flattered there by each strategy's own
    amount (16 % false verdicts at 10 seeds, bench/results_stats_preset.md): LP-FT's *better*
    on the same rows is withheld, with the reason, and no p or interval is shown for it."""
    plain = tmp_path / "plain"
    plain.mkdir()
    assert _statistics(plain).loc["LP-FT", "verdict"] == "better"
    statistics = _statistics(tmp_path, "--early-stop-on", "test")
    assert (statistics["verdict"] == "not tested").all()
    withheld = verdicts.CHOSEN_ON_EVALUATION.format(chosen="each run's epoch")
    assert (statistics["reason"] == withheld).all()
    assert statistics[["p_value", "p_holm", "low", "high"]].isna().all().all()
    assert statistics.loc["LP-FT", "diff_mean"] == pytest.approx(3.0, abs=0.5)
    text = (tmp_path / "out" / "d" / "statistics.md").read_text()
    assert "each run's epoch was chosen on this evaluation split" in text
    assert f"not tested ({withheld})" in text
    assert "better" not in (tmp_path / "out" / "d" / "table.md").read_text()
    # A results folder's runs record where they stopped: the flag is refused there.
    assert main(["report", str(tmp_path), "--early-stop-on", "test"]) == 2
    assert "--early-stop-on is for a table" in capsys.readouterr().err


def test_medfts_strategy_names_are_read_in_any_case(tmp_path):
    """A table that writes "ft" and "lp-ft " (a spreadsheet's lower case, a stray space) has its
    reference and strategies as medft's; it was refused as having no FT rows."""
    statistics = _statistics(
        tmp_path, change=lambda f: f.assign(strategy=f["strategy"].str.lower() + " ")
    )
    assert statistics.loc["LP-FT", "verdict"] == "better"
    assert sorted(statistics.index) == ["G-LF", "LP", "LP-FT"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.rename(columns={"value": "score"}),
            "the nearest schema of `medft report`, per-seed rows .* needs column.s. value",
        ),
        (
            lambda f: f.drop(columns=["lr", "split"]),
            r"needs column\(s\) lr, split; lr: each run's learning rate .*; split: test",
        ),
        (lambda f: f.assign(lr=np.nan), "line 2: lr is blank; lr: each run's learning rate"),
        (
            lambda f: f[f["split"] == "test"],
            "has no val auroc, yet m FT has 2 lrs to choose from; give its val rows",
        ),
        (
            lambda f: f.assign(value=f["value"] * 100),
            r"line 2: value 80\.06\d* is not a number in "
            r"\[0, 1\]; per-seed values are fractions",
        ),
        (lambda f: f.assign(metric="recall"), "line 2: unknown metric 'recall'"),
        (lambda f: f.assign(split="train"), "line 2: split 'train' must be val or test"),
        (lambda f: pd.concat([f, f.iloc[:1]]).reset_index(drop=True), "lines 2 and 50: the same"),
        (
            lambda f: f[f["strategy"] != "FT"],
            r"model 'm' has no FT rows \(its strategies: LP-FT, LP, G-LF\); FT is the reference",
        ),
        (
            lambda f: f.assign(model=f["model"].where(f["strategy"] != "FT", "M")),
            r"model 'm' has no FT rows \(its strategies: LP-FT, LP, G-LF\); the dataset's FT "
            "rows name the model 'M'",
        ),
    ],
)
def test_a_bad_results_table_is_refused_naming_the_line_and_the_fix(
    tmp_path, change, message, capsys
):
    path = _per_seed(tmp_path)
    change(pd.read_csv(path)).to_csv(path, index=False)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert str(path) in error
    assert re.search(message, error), error
    assert not (tmp_path / "out" / "summary").exists()


def test_runs_chosen_on_the_evaluation_split_get_no_test_across_datasets_either(tmp_path):
    """Twelve datasets where LP-FT leads FT by 3 points and LP trails by 8: the rank test, the
    Bayesian comparison and the per-model signed-rank test decide on runs early-stopped on
    validation; on the same rows early-stopped on the evaluation split none of them tests,
    each saying why (their means are flattered as the comparisons within a dataset are)."""
    rng = np.random.default_rng(1)
    rows = []
    for d in range(12):
        for seed in range(3):
            own = {"FT": 0.0, "LP-FT": 3.0, "LP": -8.0, "G-LF": rng.normal(0, 0.5)}
            for strategy, shift in own.items():
                for split in ("val", "test"):
                    value = (75 + d + shift + rng.normal(0, 0.3)) / 100
                    rows.append((f"d{d}", "m", strategy, 1e-3, seed, split, "auroc", value))
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=inputs.PER_SEED).to_csv(path, index=False)
    summaries = {}
    for stop_on in ("val", "test"):
        out = tmp_path / stop_on
        assert main(["report", str(path), "--out", str(out), "--early-stop-on", stop_on]) == 0
        summaries[stop_on] = {
            name: pd.read_csv(out / "summary" / f"{name}.csv").set_index("strategy")["verdict"]
            for name in ("critical_difference", "bayesian", "across_datasets")
        }
    decided = summaries["val"]
    assert decided["critical_difference"]["LP"] == "worse"
    assert decided["bayesian"]["LP"] == "worse"
    assert decided["across_datasets"]["LP"] == "worse"
    reason = "no test: each run's epoch chosen on the evaluation split that would test it"
    for verdicts_of in summaries["test"].values():
        assert (verdicts_of.drop("FT", errors="ignore") == reason).all()


def test_a_results_table_saved_with_semicolons_names_the_fix(tmp_path, capsys):
    path = _per_seed(tmp_path)
    pd.read_csv(path).to_csv(path, index=False, sep=";")
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "separated by semicolons" in capsys.readouterr().err


def test_a_table_of_test_scores_at_one_lr_needs_no_selection_split(tmp_path):
    """Results of one's own runs often hold the evaluation split only: with one lr per
    strategy there is nothing to choose, and the report says so instead of refusing."""
    path = _per_seed(tmp_path)
    frame = pd.read_csv(path)
    frame[(frame["split"] == "test") & (frame["lr"] == 1e-3)].to_csv(path, index=False)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    statistics = pd.read_csv(tmp_path / "out" / "d" / "statistics.csv").set_index("strategy")
    assert statistics.loc["LP-FT", "verdict"] == "better"
    assert "at each strategy's one lr" in (tmp_path / "out" / "d" / "table.md").read_text()
    assert not (tmp_path / "out" / "d" / "lr_sensitivity.png").exists()


def test_a_report_that_fails_part_way_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    """The second report fails at its figures (as one running out of memory would), after
    some of its tables: the folder still holds the first report, every file as it was, and
    the next report replaces it."""
    from medft.report import figures

    out = tmp_path / "out"
    assert main(["report", str(_per_seed(tmp_path)), "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert (out / "d" / "statistics.csv") in before

    def out_of_memory(*args, **kwargs):
        raise MemoryError("a figure")

    monkeypatch.setattr(figures, "save", out_of_memory)  # after some of the tables
    with pytest.raises(MemoryError):
        main(["report", str(_per_seed(tmp_path, better_by=9.0)), "--out", str(out)])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    monkeypatch.undo()
    assert main(["report", str(_per_seed(tmp_path, better_by=9.0)), "--out", str(out)]) == 0
    assert (out / "d" / "statistics.csv").read_bytes() != before[out / "d" / "statistics.csv"]
    assert not list(tmp_path.glob(".out.writing"))


def _texts(figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


def _lp_last_everywhere(datasets: str, models: list[str]) -> pd.DataFrame:
    blocks = pd.MultiIndex.from_product([list(datasets), models], names=["dataset", "model"])
    return pd.DataFrame(
        [[80.0 + b, 70.0 + b, 81.0 + b] for b in range(len(blocks))],
        columns=["FT", "LP", "LP-FT"],
        index=blocks,
    )


def test_where_the_datasets_decide_the_diagram_shows_their_verdicts_not_nemenyis_bars():
    from medft.report import across, summary_figures

    # LP last in all 12 (dataset, model) blocks: Nemenyi alone calls it worse, but 4 datasets
    # cannot decide (Holm's floor 2 · 2/2⁴).
    view = "dataset_model"
    test = across.rank_test(across.blocks(_lp_last_everywhere("ABCD", ["m1", "m2", "m3"]), view))
    assert test.table.set_index("strategy").loc["LP", "nemenyi"] == "worse"
    texts = _texts(summary_figures.critical_difference(test, across.BLOCKS[view]))
    assert "CD" not in texts
    assert any(t.startswith("cannot decide with 4 datasets") for t in texts)

    view = "dataset"
    test = across.rank_test(across.blocks(_lp_last_everywhere("ABCDEFGH", ["m"]), view))
    assert "CD" in _texts(summary_figures.critical_difference(test, across.BLOCKS[view]))
