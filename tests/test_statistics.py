"""The report's statistics on constructed inputs with known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medft.metrics import METRICS, compute_metrics
from medft.report import across, verdicts
from medft.report import stats as st
from medft.report.resample import resampled_metric

TASKS = {
    "binary": ("a", "b"),
    "multiclass": ("a", "b", "c"),
    "multilabel": ("x", "y", "z"),
}


def _data(task, n, rng):
    k = len(TASKS[task])
    if task == "multilabel":
        y = (rng.random((n, k)) < 0.4).astype(int)
        y[0], y[1] = 1, 0  # every label has both values
        scores = np.clip(y * 0.3 + rng.random((n, k)) * 0.7, 0, 1)
    else:
        y = np.r_[np.arange(k), rng.integers(0, k, n - k)]
        logits = rng.normal(size=(n, k)) + np.eye(k)[y]
        scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores[3] = scores[2]  # a tie
    return y, np.round(scores, 2)  # rounding makes more ties


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("metric", METRICS)
def test_resampled_metric_equals_scikit_learn_on_repeated_images(task, metric):
    rng = np.random.default_rng(1)
    y, scores = _data(task, 40, rng)
    weights = rng.integers(0, 4, size=(5, 40)).astype(float)
    weights[:, :4] = 1  # keep every class present
    fast = resampled_metric(metric, task, y, scores, weights)
    for row, w in zip(fast, weights, strict=True):
        take = np.repeat(np.arange(40), w.astype(int))
        expected = compute_metrics(task, y[take], scores[take], TASKS[task])[metric]
        assert row == pytest.approx(expected, abs=1e-12)


def test_resampled_metric_is_nan_where_a_class_is_missing():
    y = np.array([0, 0, 1, 1])
    scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    weights = np.array([[1, 1, 1, 1], [1, 1, 0, 0.0]])
    auroc = resampled_metric("auroc", "binary", y, scores, weights)
    assert auroc[0] == 1.0 and np.isnan(auroc[1])


def _seed_rows(values: dict[str, list[float]]) -> pd.DataFrame:
    """Per-seed rows of one (dataset, model): strategy → the main metric (a fraction) per seed;
    NaN leaves that seed's run out."""
    rows = [
        {"dataset": "d", "model": "m", "strategy": strategy, "seed": seed, "test_auroc": value}
        for strategy, per_seed in values.items()
        for seed, value in enumerate(per_seed)
        if not np.isnan(value)
    ]
    return pd.DataFrame(rows).assign(main_metric="auroc")


def test_seed_interval_and_p_value_match_the_textbook():
    seeds = _seed_rows({"FT": [0.10, 0.10, 0.10], "LP": [0.11, 0.12, 0.13]})
    table = st.paired_tests(seeds).iloc[0]
    # differences 1, 2, 3 points: mean 2, sd 1, se 1/sqrt(3), t(0.975, 2) = 4.3027
    half = 4.302652729911275 / np.sqrt(3)
    assert (table["diff_low"], table["diff_high"]) == pytest.approx((2 - half, 2 + half))
    assert table["p_seed"] == pytest.approx(stats.ttest_rel([11, 12, 13], [10, 10, 10]).pvalue)
    assert table["p_seed"] == pytest.approx(0.07417990022744858)
    assert table["n_pairs"] == 3


@pytest.mark.parametrize(
    "lp", [[0.12, np.nan, np.nan], [0.12, 0.12, 0.12]], ids=["one pair", "zero spread"]
)
def test_one_pair_or_no_spread_has_no_interval_and_no_p_value(lp):
    table = st.paired_tests(_seed_rows({"FT": [0.10, 0.10, 0.10], "LP": lp})).iloc[0]
    assert table[["diff_low", "diff_high", "p_seed"]].isna().all()
    assert table["diff_mean"] == pytest.approx(2.0)


def test_holm_adjusts_by_rank_and_keeps_untested_out():
    adjusted = st.holm([0.01, 0.04, np.nan, 0.03])
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1, made monotone: 0.03, 0.06, 0.06
    assert adjusted[[0, 3, 1]] == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(adjusted[2])


def _runs(tmp_path, strategies, n_patients=30, images_per_patient=2, seeds=(0, 1, 2)):
    """Binary task; FT's test scores are noisy, ``strategies`` maps a name to a function of
    (FT's scores, truth) giving that strategy's scores."""
    rng = np.random.default_rng(0)
    n = n_patients * images_per_patient
    y = np.r_[[0, 1], rng.integers(0, 2, n - 2)]
    groups = np.repeat([f"p{i:03d}" for i in range(n_patients)], images_per_patient)
    rows = []
    for seed in seeds:
        ft = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.3, n), 0.01, 0.99)
        for strategy, make in {"FT": lambda s, t: s, **strategies}.items():
            p1 = make(ft, y)
            run_dir = tmp_path / strategy / f"seed{seed}"
            run_dir.mkdir(parents=True)
            pd.DataFrame(
                {
                    "id": [f"i{i:03d}" for i in range(n)],
                    "split": "test",
                    "group": groups,
                    "target": y,
                    "prob_a": 1 - p1,
                    "prob_b": p1,
                }
            ).to_parquet(run_dir / "predictions.parquet")
            rows.append(
                {
                    "dataset": "d",
                    "model": "m",
                    "strategy": strategy,
                    "lr": 1e-3,
                    "seed": seed,
                    "main_metric": "auroc",
                    "test_auroc": compute_metrics("binary", y, np.c_[1 - p1, p1], ("a", "b"))[
                        "auroc"
                    ],
                    "run_dir": str(run_dir),
                }
            )
    return pd.DataFrame(rows)


def test_bootstrap_interval_contains_zero_for_identical_predictions_and_excludes_it_for_better(
    tmp_path,
):
    perfect = {"Same": lambda s, t: s, "Better": lambda s, t: np.where(t == 1, 0.99, 0.01)}
    runs = _runs(tmp_path, perfect)
    boot = st.bootstrap_intervals(runs, {"d": "binary"}, n_boot=500).set_index("strategy")
    assert boot.loc["Same", "boot_low"] <= 0 <= boot.loc["Same", "boot_high"]
    assert boot.loc["Same", "boot_low"] == boot.loc["Same", "boot_high"] == 0
    assert boot.loc["Better", "boot_low"] > 0
    table = st.verdicts(st.paired_tests(runs), boot).set_index("strategy")
    assert table.loc["Better", "verdict"] == st.BETTER
    # Identical on every seed and patient: zero width, which is not evidence either way.
    assert boot.loc["Same", "resolution"] == pytest.approx(100 / min(np.bincount(_truth(runs))))
    assert table.loc["Same", "verdict"] == st.UNTESTED
    assert table.loc["Same", "reason"] == verdicts.ZERO_WIDTH


def test_the_bootstrap_refuses_runs_scored_on_different_images(tmp_path):
    runs = _runs(tmp_path, {"Other": lambda s, t: s})
    moved = runs[runs["strategy"] == "Other"]["run_dir"].iloc[0]
    predictions = pd.read_parquet(f"{moved}/predictions.parquet")
    predictions.iloc[5:].to_parquet(f"{moved}/predictions.parquet")
    with pytest.raises(ValueError, match=f"{moved}: not scored on the same images .*test split"):
        st.bootstrap_intervals(runs, {"d": "binary"}, n_boot=50)


def _truth(runs):
    return pd.read_parquet(runs["run_dir"].iloc[0] + "/predictions.parquet")["target"]


def _nearly(scale: float, seed: int = 1):
    """A strategy whose scores are FT's plus a little noise of its own."""
    rng = np.random.default_rng(seed)
    return lambda s, t: np.clip(s + rng.normal(0, scale, len(s)), 0.01, 0.99)


def test_a_near_copy_of_ft_is_equivalent_only_on_a_split_that_resolves_the_margin(tmp_path):
    large = _runs(tmp_path / "large", {"Near": _nearly(0.01)}, n_patients=400)
    boot = st.bootstrap_intervals(large, {"d": "binary"}, n_boot=200)
    assert boot["resolution"].iloc[0] < 1
    table = st.verdicts(st.paired_tests(large), boot).set_index("strategy")
    assert table.loc["Near", "verdict"] == st.EQUIVALENT
    # On 60 images one image moves AUROC by ~3.5 points: ±1 point is beyond the split.
    small = _runs(tmp_path / "small", {"Near": _nearly(0.01)})
    boot = st.bootstrap_intervals(small, {"d": "binary"}, n_boot=200)
    assert boot["resolution"].iloc[0] > 1
    table = st.verdicts(st.paired_tests(small), boot).set_index("strategy")
    assert table.loc["Near", "verdict"] == st.INCONCLUSIVE
    assert table.loc["Near", "reason"] == verdicts.UNRESOLVED
    assert np.isnan(table.loc["Near", "seeds_to_decide"])  # no number of seeds would show it


def test_the_bootstrap_adds_only_the_test_splits_shared_part(tmp_path):
    # A strategy with its own image-level noise: each seed's difference carries it, and the
    # seed spread counts it; the bootstrap's shared part must be smaller than the variance
    # of the seed mean, which holds it again.
    runs = _runs(tmp_path, {"Noisy": _nearly(0.2)}, n_patients=200)
    boot = st.bootstrap_intervals(runs, {"d": "binary"}, n_boot=400).set_index("strategy")
    assert 0 <= boot.loc["Noisy", "test_var"] < 0.8 * boot.loc["Noisy", "boot_var"]
    # The shared part's degrees of freedom are the patients', not the images' (400 here).
    assert boot.loc["Noisy", "test_groups"] == 200


@pytest.mark.parametrize(
    ("metric", "targets", "points"),
    [
        ("accuracy", [0, 0, 0, 1], 25.0),
        ("auroc", [0, 0, 0, 1, 1], 50.0),
        ("accuracy", [0, 1, 2, 2], 25.0),
        ("kappa", [0, 1, 1, 2, 2, 2], 100.0),
        ("map", [[1, 0], [1, 1], [0, 1], [0, 0], [0, 0]], 50.0),
        ("map", [[1, 0], [1, 1], [0, 1], [0, 1]], 100.0),  # label 2: one negative
    ],
)
def test_one_image_points_is_the_rarest_class_share(metric, targets, points):
    assert st.one_image_points(metric, np.array(targets)) == pytest.approx(points)


def test_bootstrap_resamples_patients_not_images():
    groups = np.array(["a", "a", "a", "b"])
    weights = st.group_weights(groups, 200, np.random.default_rng(0))
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 1] == weights[:, 2]).all()
    assert set(np.unique(weights[:, 3])) <= {0, 1, 2}
    assert (weights.sum(1) == 3 * weights[:, 0] + weights[:, 3]).all()


def test_wilcoxon_across_datasets_needs_five_and_is_holm_corrected():
    rows = []
    for d in range(8):
        rows += [
            {"dataset": f"d{d}", "model": "m", "strategy": "FT", "improvement": 0.0},
            {"dataset": f"d{d}", "model": "m", "strategy": "Up", "improvement": 1.0 + d},
            {
                "dataset": f"d{d}",
                "model": "m",
                "strategy": "Mixed",
                "improvement": (-1) ** d * (1.0 + d),
            },
        ]
    frame = across.across_datasets(pd.DataFrame(rows)).set_index("strategy")
    assert frame.loc["Up", "p_value"] == pytest.approx(stats.wilcoxon(np.arange(1, 9.0)).pvalue)
    assert frame.loc["Up", "p_holm"] == pytest.approx(2 * frame.loc["Up", "p_value"])
    assert frame.loc["Up", "verdict"] == st.BETTER
    assert frame.loc["Mixed", "verdict"] == st.INCONCLUSIVE
    few = across.across_datasets(pd.DataFrame(rows[:12])).set_index("strategy")
    assert few.loc["Up", "verdict"] == st.UNTESTED
    assert few["min_p_holm"].isna().all()  # untested: no floor to show, not 0


def _patient_level_predictions(blank: int = 0) -> tuple[pd.DataFrame, dict]:
    """30 patients x 20 images; the strategy beats FT on some patients and loses on others,
    so the spread of the difference lives between patients. ``blank`` ids are emptied."""
    rng = np.random.default_rng(1)
    patients = np.repeat(np.arange(30), 20)
    y = np.tile([0, 1], 300)
    effect = rng.normal(0, 0.25, 30)[patients]
    ft = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.1, 600), 0.01, 0.99)
    better = np.clip(ft + (y - 0.5) * effect, 0.01, 0.99)
    groups = np.array([f"p{p}" for p in patients], dtype=object)
    groups[:blank] = ""
    frames, rows = {}, []
    for strategy, p1 in (("FT", ft), ("New", better)):
        frames[strategy] = pd.DataFrame(
            {
                "id": [f"i{i:03d}" for i in range(600)],
                "group": groups,
                "target": y,
                "prob_a": 1 - p1,
                "prob_b": p1,
            }
        )
        rows.append(
            {
                "dataset": "d",
                "model": "m",
                "strategy": strategy,
                "seed": 0,
                "run_dir": strategy,
                "test_auroc": 0.5,
            }
        )
    chosen = pd.DataFrame(rows).assign(main_metric="auroc")
    return chosen, frames


@pytest.mark.parametrize("blank", [1, 600])
def test_a_blank_patient_id_is_a_patient_of_its_own(blank):
    """One missing id leaves the other 599 images resampled by patient (the interval keeps
    its patient-level width); only when no image has an id is the set resampled by image."""

    def width(chosen, frames):
        boot = st.bootstrap_intervals(chosen, {"d": "binary"}, n_boot=400, predictions=frames)
        return float(boot["boot_high"].iloc[0] - boot["boot_low"].iloc[0])

    grouped = width(*_patient_level_predictions())
    with_blank = width(*_patient_level_predictions(blank))
    if blank == 1:
        assert with_blank == pytest.approx(grouped, rel=0.15)
    else:
        assert with_blank < 0.6 * grouped  # image-level resampling: far too narrow here
    groups = st.resampling_groups(_patient_level_predictions(blank)[1]["FT"])
    assert len(set(groups)) == {1: 30 + 1, 600: 600}[blank]


def test_across_datasets_says_when_no_data_could_reach_significance():
    """8 datasets, 7 strategies: Holm's first step cannot go below 7 · 2/256 = 0.0547, so even
    a strategy better on every dataset gets no verdict it could never change."""
    rows = [
        {"dataset": f"d{d}", "model": "m", "strategy": s, "improvement": gain}
        for d in range(8)
        for s, gain in [("FT", 0.0), *((f"S{k}", 5.0 + d + k) for k in range(7))]
    ]
    frame = across.across_datasets(pd.DataFrame(rows)).set_index("strategy")
    assert frame["min_p_holm"].iloc[0] == pytest.approx(7 * 2 / 256)
    assert (frame["p_holm"] >= frame["min_p_holm"] - 1e-12).all()
    assert frame.loc["S0", "verdict"].startswith("cannot decide with 8 datasets")
    assert st.BETTER not in set(frame["verdict"])


def test_datasets_where_a_strategy_ties_ft_do_not_count_toward_what_is_reachable():
    """12 datasets, but the strategy equals FT on 7: the exact test ranks 5, whose smallest p
    (2/32, times 2 strategies) no data could bring below 0.05."""
    rows = [
        {"dataset": f"d{d}", "model": "m", "strategy": s, "improvement": gain}
        for d in range(12)
        for s, gain in [("FT", 0.0), ("Tied", 0.0 if d < 7 else 4.0), ("Up", 1.0 + d)]
    ]
    frame = across.across_datasets(pd.DataFrame(rows)).set_index("strategy")
    assert frame.loc["Tied", "n_ranked"] == 5
    assert frame.loc["Tied", "min_p_holm"] == pytest.approx(2 * 2 / 32)
    assert frame.loc["Tied", "verdict"] == (
        "cannot decide with 5 datasets unlike FT's (7 tie it) (smallest attainable Holm p 0.125)"
    )
    assert frame.loc["Up", "verdict"] == st.BETTER
