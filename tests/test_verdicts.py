"""The four verdicts on constructed families with a known answer (medft.report.verdicts)."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from medft.report import verdicts as v


def _family(differences, reference=(80.0, 81.0, 82.0)):
    """Row 0 the reference's seeds, the others reference + the given paired differences."""
    reference = np.asarray(reference)
    return np.vstack([reference, *[reference + np.asarray(d) for d in differences]])


def test_holm_equals_statsmodels_and_keeps_untested_out():
    rng = np.random.default_rng(0)
    for _ in range(8):  # statsmodels runs gc.collect() on every call: a few cases suffice
        p = rng.uniform(0, 0.2, 7)
        p[rng.integers(0, 7)] = np.nan
        tested = ~np.isnan(p)
        adjusted = v.holm(p)
        assert adjusted[tested] == pytest.approx(multipletests(p[tested], method="holm")[1])
        assert np.isnan(adjusted[~tested]).all()


def test_better_worse_equivalent_and_inconclusive_each_where_the_data_says_so():
    # Every pair spreads ±0.4 pp over the seeds, each tested on its own spread and 2 df.
    spread = np.array([-0.4, 0.0, 0.4])
    values = _family(
        [
            5.0 + spread,  # clearly better
            -5.0 - spread,  # clearly worse
            0.1 + spread,  # inside ±2 pp with room to spare
            0.8 - spread,  # neither established nor excluded
        ]
    )
    decision = v.decide(v.paired(values), margin=2.0, resolution=0.5)
    assert decision.verdict == [v.BETTER, v.WORSE, v.EQUIVALENT, v.INCONCLUSIVE]
    assert decision.seeds_to_decide[:3] == [None, None, None]
    assert 3 < decision.seeds_to_decide[3] <= v.MAX_SEEDS
    # A narrower margin cannot be shown with these seeds.
    assert v.decide(v.paired(values), margin=0.5, resolution=0.5).verdict[2] == v.INCONCLUSIVE
    # The benches count verdicts only and skip the advice: the same verdicts, no seed counts.
    quiet = v.decide(v.paired(values), margin=2.0, resolution=0.5, advise_seeds=False)
    assert quiet.verdict == decision.verdict and quiet.seeds_to_decide == [None] * 4


def test_each_comparison_stands_on_its_own_spread_and_degrees_of_freedom():
    # Six strategies move with the reference; one scatters by ±6 pp. Each is tested on the
    # spread of its own differences and its n − 1 df, whatever the others do: a family's
    # pool would lend the noisy one 14 df on a spread it understates, and the quiet ones a
    # spread they do not have.
    quiet = [(0.05, -0.05, 0.0)] * 6
    values = _family([*quiet, (6.0, -6.0, 3.0)])
    estimate = v.paired(values)
    assert estimate.seed_var[-1] == pytest.approx(np.var([6.0, -6.0, 3.0], ddof=1))
    assert estimate.seed_var[0] == pytest.approx(np.var([0.05, -0.05, 0.0], ddof=1))
    assert estimate.df.tolist() == [2] * 7


def test_a_noisy_reference_over_three_seeds_decides_nothing_its_seeds_cannot_carry():
    # The demo's synth-histology shape: FT scatters by 9 pp over three seeds, the probes on
    # frozen features do not move. +25 pp over FT's three values is t = 4.8 on the 2 df that
    # FT's spread has; Holm's first step over 7 asks 11.8. More seeds would decide it.
    ft = (63.0, 72.0, 81.0)
    values = np.vstack([ft, *[np.full(3, 97.0)] * 2, *[np.array(ft) + d for d in range(5)]])
    decision = v.decide(v.paired(values), margin=1.0, resolution=0.4)
    assert decision.verdict[:2] == [v.INCONCLUSIVE] * 2
    assert decision.p[0] == pytest.approx(2 * stats.t.sf(25 / (9 / np.sqrt(3)), 2))
    assert 3 < decision.seeds_to_decide[0] <= 10


def test_the_family_wise_error_holds_when_the_reference_alone_is_noisy():
    # FT four times the spread of five strategies that do not move with it, two moving with
    # it, nothing truly different. The former rule (the family's pooled spread as a floor, on
    # its 14 df) gave a false better / worse in 8.0 % of these families, above the 6.8 % this
    # allows; each pair on its own n − 1 df keeps Holm's 5 % (2.2 %).
    rng = np.random.default_rng(7)
    families, false = 600, 0
    for _ in range(families):
        ft = rng.normal(0, 4.0, 3)
        apart = rng.normal(0, 1.0, (5, 3))
        along = ft + rng.normal(0, 0.3, (2, 3))
        decision = v.decide(v.paired(80 + np.vstack([ft, apart, along])), 1.0, advise_seeds=False)
        false += any(verdict in (v.BETTER, v.WORSE) for verdict in decision.verdict)
    assert false / families <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / families)


def test_equivalence_needs_the_whole_adjusted_interval_inside_the_margin():
    values = _family([(0.05, -0.05, 0.0), (0.6, 0.7, 0.65)])
    decision = v.decide(v.paired(values), margin=1.0, resolution=0.5)
    assert decision.verdict == [v.EQUIVALENT, v.BETTER]
    # A margin smaller than what the interval allows leaves it inconclusive.
    assert v.decide(v.paired(values), margin=0.05, resolution=0.01).verdict[0] == v.INCONCLUSIVE
    # The interval shown is the one the verdict rests on: Bonferroni over the two
    # comparisons, two one-sided tests, on the pair's own spread and its 2 df.
    own = np.var([0.05, -0.05, 0.0], ddof=1) / 3
    half = stats.t.ppf(1 - 0.05 / 2, 2) * np.sqrt(own)
    assert decision.equivalence_high[0] == pytest.approx(values[1].mean() - values[0].mean() + half)


def test_without_predictions_nothing_is_called_equivalent_and_the_reason_says_why():
    values = _family([(0.05, -0.05, 0.0), (5.0, 5.4, 4.6)])
    decision = v.decide(v.paired(values), margin=1.0)
    assert decision.verdict == [v.INCONCLUSIVE, v.BETTER]
    assert decision.reasons[0] == v.NO_RESOLUTION
    assert decision.seeds_to_decide[0] is None  # no count of seeds shows equivalence here


def test_zero_spread_is_named_not_decided():
    # Every seed moves by the same amount: the former rule gave p = 0 and *better* at
    # +0.01 pp, and *equivalent* on [0, 0].
    values = _family([(0.01, 0.01, 0.01), (0.0, 0.0, 0.0)])
    decision = v.decide(v.paired(values), margin=1.0, resolution=0.5)
    assert decision.verdict == [v.UNTESTED, v.UNTESTED]
    assert decision.reasons == [v.ZERO_SPREAD, v.ZERO_SPREAD]
    assert np.isnan(decision.p).all() and np.isnan(decision.equivalence_low).all()


def test_a_zero_width_bootstrap_is_named_not_decided():
    # Both perfect on every seed and every resample.
    values = _family([(0.0, 0.0, 0.0)], reference=(100.0, 100.0, 100.0))
    boot = np.full((2, 3, 200), 100.0)
    decision = v.decide(v.paired(values, boot), margin=1.0, resolution=0.9)
    assert decision.verdict == [v.UNTESTED] and decision.reasons == [v.ZERO_WIDTH]


def test_margin_zero_allows_no_equivalence_and_says_so():
    values = _family([(0.05, -0.05, 0.0)])
    decision = v.decide(v.paired(values), margin=0.0, resolution=0.1)
    assert decision.verdict == [v.INCONCLUSIVE] and decision.reasons == [v.NO_MARGIN]
    assert decision.seeds_to_decide == [None]  # only significance could decide, and won't


def test_a_missing_seed_drops_its_pair_only():
    values = _family([(2.0, 2.2, 1.9), (1.0, 1.2, 0.9)])
    values[1, 0] = np.nan
    assert [list(c) for c in v.complete_pairs(values)] == [[1, 2], [0, 1, 2]]
    diff, _, seeds = v.seed_summary(values)
    assert seeds.tolist() == [2, 3] and diff[0] == pytest.approx(2.05)
    assert v.decide(v.paired(values), margin=1.0).verdict[0] != v.UNTESTED


def test_the_shared_test_variance_counts_each_runs_image_noise_once():
    # Per seed: a common draw of the split (shared by all seeds) plus the run pair's own
    # image noise; the seed spread already holds the latter.
    rng = np.random.default_rng(0)
    common = rng.normal(0, 1.0, 20000)
    differences = common + rng.normal(0, 2.0, (5, 20000))
    assert v.shared_test_variance(differences) == pytest.approx(1.0, rel=0.05)


def test_the_evaluation_splits_uncertainty_can_turn_a_seed_significant_difference_inconclusive():
    values = _family([(2.0, 2.2, 1.9), (0.0, 0.1, -0.1)])
    assert v.decide(v.paired(values), 1.0).verdict[0] == v.BETTER
    # The same seeds on a tiny test set: the split's draw moves the difference by ~3 pp,
    # alike for every seed, so a 2 pp difference is not established.
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 3.0, (3, 1, 2000))
    boot = values[:, :, None] + shared
    decision = v.decide(v.paired(values, boot), 1.0, resolution=0.5)
    assert decision.verdict[0] == v.INCONCLUSIVE
    assert decision.seeds_to_decide[0] is None  # more seeds cannot shrink the test set's part
    assert decision.high[0] - decision.low[0] > 8


def test_seeds_to_decide_is_the_first_seed_count_that_decides():
    values = _family([(1.5, -0.5, 2.5)])  # one comparison: Holm is the plain test
    estimate = v.paired(values)
    decision = v.decide(estimate, 1.0, resolution=0.5)
    assert decision.verdict == [v.INCONCLUSIVE]
    n = decision.seeds_to_decide[0]
    assert 3 < n <= v.MAX_SEEDS

    def at(seeds: int) -> str:
        # The same mean difference and spread, observed over ``seeds`` pairs.
        grown = v.estimate_from_parts(estimate.diff, estimate.seed_var, [seeds], [np.nan])
        return v.decide(grown, 1.0, resolution=0.5).verdict[0]

    assert at(n) in (v.BETTER, v.EQUIVALENT)
    assert at(n - 1) == v.INCONCLUSIVE


def test_one_seed_is_not_tested():
    decision = v.decide(v.paired(np.array([[80.0], [82.0]])), 1.0)
    assert decision.verdict == [v.UNTESTED] and decision.seeds_to_decide == [None]
    assert decision.reasons == [v.FEWER_THAN_TWO]


def test_the_rank_test_refuses_blocks_that_could_never_reach_significance():
    import pandas as pd

    from medft.report import across

    # Six blocks ranking three strategies alike is the best Friedman can do ...
    wide = pd.DataFrame(
        [[80.0 + b, 70.0 + b, 81.0 + b] for b in range(6)], columns=["FT", "LP", "LP-FT"]
    )
    assert across.rank_test(wide).p_value == pytest.approx(across.friedman_floor(6, 3))
    # ... and two blocks are too few to test at all.
    few = across.rank_test(wide.iloc[:2])
    assert few.result is None and np.isnan(few.p_value)
    assert few.table.set_index("strategy").loc["LP", "verdict"] == (
        "no rank test with 2 blocks (autorank needs 5)"
    )


def test_the_bayesian_comparison_points_the_right_way():
    import pandas as pd

    from medft.report import across

    rng = np.random.default_rng(0)
    ft = 80 + rng.normal(0, 3, 12)
    wide = pd.DataFrame(
        {"FT": ft, "Up": ft + 4 + rng.normal(0, 0.3, 12), "Same": ft + rng.normal(0, 0.1, 12)},
        index=pd.MultiIndex.from_product([range(12), ["m"]], names=["dataset", "model"]),
    )
    table = across.bayesian(wide, margin=1.0).set_index("strategy")
    assert table.loc["Up", "P(better)"] > 0.95 and table.loc["Up", "verdict"] == v.BETTER
    assert table.loc["Same", "P(equivalent)"] > 0.95
    assert table.loc["Same", "verdict"] == v.EQUIVALENT


def test_a_posterior_of_equivalence_needs_its_signed_rank_twin():
    # Three of 12 datasets half a point beyond the margin: the posterior says equivalent
    # (P 0.98), the two one-sided signed-rank tests do not (p 0.073).
    import pandas as pd

    from medft.report import across

    differences = np.array([0.5] * 9 + [1.5] * 3)
    wide = pd.DataFrame(
        {"FT": np.full(12, 80.0), "Near": 80.0 + differences},
        index=pd.MultiIndex.from_product([range(12), ["m"]], names=["dataset", "model"]),
    )
    row = across.bayesian(wide, margin=1.0).iloc[0]
    assert row["P(equivalent)"] > 0.95 and row["posterior"] == v.EQUIVALENT
    assert row["p_equivalence_holm"] == pytest.approx(0.073, abs=1e-3)
    assert row["verdict"] == v.INCONCLUSIVE
    # Within the margin everywhere, both agree.
    wide["Near"] = 80.0 + np.minimum(differences, 0.8)
    assert across.bayesian(wide, margin=1.0).iloc[0]["verdict"] == v.EQUIVALENT


def test_blocks_that_tie_ft_count_out_of_what_the_signed_rank_test_can_reach():
    # 8 blocks, 3 of them equal to FT's: the exact test ranks 5 (its smallest p 2/32 = 0.0625),
    # so the posterior's better (P 0.96) is one no data on these blocks could confirm.
    import pandas as pd

    from medft.report import across

    wide = pd.DataFrame(
        {"FT": np.full(8, 80.0), "Up": 80.0 + np.array([0.0] * 3 + [3.0] * 5)},
        index=pd.MultiIndex.from_product([range(8), ["m"]], names=["dataset", "model"]),
    )
    row = across.bayesian(wide, margin=1.0).iloc[0]
    assert row["posterior"] == v.BETTER and row["n_ranked"] == 5
    assert row["verdict"] == (
        "cannot decide with 5 datasets unlike FT's (3 tie it) (smallest attainable Holm p 0.062)"
    )


def test_skewed_gains_show_a_median_and_a_mean_of_different_signs():
    # Large gains on 2 of 12 datasets, small losses on 10: the mean gain is +0.5, the typical
    # dataset loses 1 point. The signed-rank tests speak of the latter; the table shows both.
    import pandas as pd

    from medft.report import across

    differences = np.array([8.0, 8.0] + [-1.0] * 10)
    wide = pd.DataFrame(
        {"FT": np.full(12, 80.0), "Skewed": 80.0 + differences},
        index=pd.MultiIndex.from_product([range(12), ["m"]], names=["dataset", "model"]),
    )
    row = across.bayesian(wide, margin=0.5).iloc[0]
    assert row["mean_difference"] == pytest.approx(0.5)
    assert row["median_difference"] == pytest.approx(-1.0)
    assert row["P(worse)"] > row["P(better)"]


def test_a_comparison_of_a_larger_family_carries_its_multiplicity():
    # The search tests its pick against FT alone, but claims no more than the grid, which
    # tests 7 strategies against FT: the pick's p counts as the first of 7.
    assert v.holm([0.01], family=7) == pytest.approx([0.07])
    assert v.holm([0.01, 0.04], family=7) == pytest.approx([0.07, 0.24])
    assert v.holm([0.01, np.nan]) == pytest.approx([0.01, np.nan], nan_ok=True)


def test_each_part_of_the_variance_keeps_its_own_degrees_of_freedom():
    # Three seeds agree (−30 ± 1 pp); the split's sampling carries most of the uncertainty.
    # On t(2) for the whole, as the rule before, p was 0.08: the split's part, measured on
    # its patients, was read as if it too came from 2 degrees of freedom. Each part at its own
    # quantile (the seeds' t(2), the patients' t(99)), the split decides: p ≈ its own test's.
    values = _family([(-29.0, -30.0, -31.0)])
    rng = np.random.default_rng(1)
    common = rng.normal(0, 9.0, 400)
    boot = np.stack([np.tile(values[0][:, None], 400), values[1][:, None] + common[None]])
    estimate = v.paired(values, boot, groups=100)
    assert estimate.df.tolist() == [2] and estimate.test_df.tolist() == [99]
    assert estimate.se[0] == pytest.approx(np.sqrt(1 / 3 + estimate.test_var[0]))
    decision = v.decide(estimate, margin=1.0, resolution=3.0)
    split_alone = 2 * stats.t.sf(30 / np.sqrt(estimate.test_var[0]), 99)
    assert split_alone < decision.p[0] < 2 * stats.t.sf(30 / estimate.se[0], 2) / 10
    # the p-value and the interval are one test: at level p the interval just touches 0
    assert v.half_width(estimate, decision.p[0] / 2)[0] == pytest.approx(30.0, rel=1e-9)


def test_without_the_splits_part_the_test_is_the_seeds_paired_t_test():
    values = _family([(1.5, 2.5, 2.0, 3.0)], reference=(80.0, 81.0, 82.0, 79.0))
    decision = v.decide(v.paired(values), margin=1.0)
    differences = values[1] - values[0]
    assert decision.p[0] == pytest.approx(stats.ttest_1samp(differences, 0).pvalue, rel=1e-12)
    half = stats.t.ppf(0.975, 3) * stats.sem(differences)
    assert decision.high[0] - differences.mean() == pytest.approx(half, rel=1e-12)


@pytest.mark.parametrize("seed_share", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_the_two_part_test_keeps_its_level_whatever_the_parts_sizes(seed_share):
    """The seeds' part estimated from 2 degrees of freedom, the split's known: at Holm's first
    step over 7 (α = 0.05 / 7) the rejection rate stays at or below α wherever the truth
    lies between all seed noise and all split noise (the tail is convex in the share, so
    it is at most the two ends', each exactly α)."""
    rng = np.random.default_rng(int(seed_share * 10))
    draws, seeds, alpha = 400_000, 3, 0.05 / 7
    seed_part, test_var = seed_share, 1 - seed_share  # variances of the seed mean's parts
    diff = rng.normal(0, 1, draws)  # total variance 1
    seed_var = seed_part * seeds * rng.chisquare(seeds - 1, draws) / (seeds - 1)
    estimate = v.estimate_from_parts(diff, seed_var, seeds, np.full(draws, test_var))
    rate = (v.p_values(estimate) < alpha).mean()
    assert rate < alpha + 3 * np.sqrt(alpha / draws)
    if 0 < seed_share < 1:  # strictly inside: below α, but not the whole-t(2) rule's waste
        whole = (np.abs(diff) / estimate.se > stats.t.isf(alpha / 2, seeds - 1)).mean()
        assert rate > 2 * whole


@pytest.mark.parametrize("seeds", [3, 5, 10])
def test_the_detectable_difference_is_found_four_times_in_five(seeds):
    """What `medft plan` promises: one strategy that far from FT (in seed spreads), six
    others not at all, is called *better* by the product's rule in 80 % of families."""
    shift = v.detectable_difference(seeds, comparisons=7)
    rng = np.random.default_rng(seeds)
    families, found = 1500, 0
    for _ in range(families):
        values = np.zeros((8, seeds))
        values[0] = rng.normal(80, 2, seeds)
        values[1:] = values[0] + rng.normal(0, 1, (7, seeds))
        values[1] += shift
        decision = v.decide(v.paired(values), margin=1.0, advise_seeds=False)
        found += decision.verdict[0] == v.BETTER
    # ±2.5 standard errors of a rate near 80 % over 1,500 families
    assert abs(found / families - 0.8) < 2.5 * np.sqrt(0.8 * 0.2 / families)
    assert v.detectable_difference(3, 7) > v.detectable_difference(3, 1)


def test_the_datasets_sign_flip_test_is_wilcoxons_where_each_dataset_is_one_block():
    from medft.report import across

    rng = np.random.default_rng(3)
    for _ in range(30):
        differences = np.round(rng.normal(0.5, 1.0, 10), 1)  # ties among them
        differences[:2] = 0.0  # no sign: dropped, as scipy drops them
        for alternative in ("two-sided", "greater", "less"):
            p, flipped = across.sign_flip_p(
                across.signed_ranks(differences), np.arange(10), alternative
            )
            expected = stats.wilcoxon(differences, alternative=alternative).pvalue
            assert p == pytest.approx(expected, abs=1e-12)
            assert flipped == np.count_nonzero(differences)


def _models_share_their_datasets_effect(effects: list[float]):
    """len(effects) datasets × 3 models: S is its dataset's effect from FT in each of the
    dataset's models (and a little noise of the model's own); T sits 1 point below FT, U 5
    above."""
    import pandas as pd

    rng = np.random.default_rng(0)
    index = pd.MultiIndex.from_product(
        [[f"d{d}" for d in range(len(effects))], ["m1", "m2", "m3"]], names=["dataset", "model"]
    )
    level = 80.0 + rng.normal(0.0, 3.0, len(index))
    effect = np.repeat(effects, 3) + rng.normal(0.0, 0.1, len(index))
    return pd.DataFrame(
        {"FT": level, "S": level + effect, "T": level - 1.0, "U": level + 5.0}, index=index
    )


def test_in_the_dataset_model_view_the_datasets_decide_the_bayesian_verdict():
    # S 2 points below FT on 10 of 12 datasets, 2 above on 2. Counted as 36 independent
    # blocks the signed-rank test gives p 0.003 and the posterior worse (P 0.99): worse. Its
    # datasets, 10 against 2, give Holm p 0.065.
    from medft.report import across

    wide = _models_share_their_datasets_effect([-2.0] * 10 + [2.0] * 2)
    bayes = across.bayesian(wide, margin=0.5, by="dataset_model").set_index("strategy")
    assert bayes.loc["S", "posterior"] == v.WORSE and bayes.loc["S", "n_blocks"] == 36
    assert bayes.loc["S", "n_signed"] == 12
    assert bayes.loc["S", "p_holm"] == pytest.approx(0.0649, abs=1e-4)
    assert bayes.loc["S", "verdict"] == v.INCONCLUSIVE
    # What every dataset agrees on, the datasets decide in this view too.
    assert bayes.loc["U", "verdict"] == v.BETTER and bayes.loc["T", "verdict"] == v.WORSE


def test_in_the_dataset_model_view_the_datasets_decide_the_rank_verdict():
    # S last on 9 of 12 datasets (FT second) and first on 3 (FT third): counted as 36
    # independent blocks, its mean rank is 1.0 behind FT's against a Nemenyi CD of 0.78;
    # its datasets are 9 against 3 (Holm p 0.146).
    from medft.report import across

    wide = _models_share_their_datasets_effect([-2.0] * 9 + [6.0] * 3)
    ranks = across.rank_test(across.blocks(wide, "dataset_model"))
    table = ranks.table.set_index("strategy")
    assert table.loc["S", "rank_vs_FT"] == pytest.approx(1.0) and ranks.cd < 1.0
    assert table.loc["S", "p_datasets_holm"] == pytest.approx(0.146, abs=1e-3)
    assert table.loc["S", "verdict"] == v.INCONCLUSIVE
    assert table.loc["U", "verdict"] == v.BETTER
    # Each dataset one block: nothing flips together, and Nemenyi's verdicts stand alone.
    default = across.rank_test(across.blocks(wide, "dataset")).table
    assert default["p_datasets_holm"].isna().all()
