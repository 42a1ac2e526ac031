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
    # Every pair spreads alike (±0.4 pp over the seeds), as the pooled rule assumes.
    spread = np.array([-0.4, 0.0, 0.4])
    values = _family(
        [
            5.0 + spread,  # clearly better
            -5.0 - spread,  # clearly worse
            0.1 + spread,  # inside ±1.5 pp with room to spare
            0.8 - spread,  # neither established nor excluded
        ]
    )
    decision = v.decide(v.pooled(values), margin=1.5)
    assert decision.verdict == [v.BETTER, v.WORSE, v.EQUIVALENT, v.INCONCLUSIVE]
    assert decision.seeds_to_decide == [None, None, None, 5]
    # A narrower margin cannot be shown with these seeds.
    assert v.decide(v.pooled(values), margin=0.5).verdict[2] == v.INCONCLUSIVE


def test_equivalence_needs_the_whole_adjusted_interval_inside_the_margin():
    # Each pair's own spread (the ``combined`` rule; the default pools it over the family).
    values = _family([(0.05, -0.05, 0.0), (0.6, 0.7, 0.65)])
    assert v.decide(v.combined(values), margin=1.0).verdict[0] == v.EQUIVALENT
    # A small consistent 0.65 pp difference is significant, not merely "equivalent" ...
    assert v.decide(v.combined(values), margin=1.0).verdict[1] == v.BETTER
    # ... and with a 0.5 pp margin the near-zero one is still equivalent.
    assert v.decide(v.combined(values), margin=0.5).verdict[0] == v.EQUIVALENT
    # A margin smaller than what the interval allows leaves it inconclusive.
    assert v.decide(v.combined(values), margin=0.05).verdict[0] == v.INCONCLUSIVE


def test_the_reported_equivalence_interval_is_the_one_the_verdict_rests_on():
    # A pair that tracks the reference seed by seed inside a family whose other member
    # scatters: the family's 95 % interval is wide, the pair's own TOST interval narrow.
    values = _family([(0.05, -0.05, 0.0), (6.0, -6.0, 0.5)])
    decision = v.decide(v.pooled(values), margin=1.0, own=v.combined(values))
    assert decision.verdict[0] == v.EQUIVALENT
    assert decision.high[0] - decision.low[0] > 2.0  # the family's would not show it
    low, high = decision.equivalence_low[0], decision.equivalence_high[0]
    assert -1.0 <= low < 0.0 < high <= 1.0
    # Bonferroni over the two comparisons, two one-sided tests: t(1 − 0.05 / 2, 2 df).
    se = np.sqrt(np.var([0.05, -0.05, 0.0], ddof=1) / 3)
    assert high == pytest.approx(stats.t.ppf(1 - 0.05 / 2, 2) * se)
    assert decision.verdict[1] == v.INCONCLUSIVE
    assert not -1.0 <= decision.equivalence_low[1] <= decision.equivalence_high[1] <= 1.0


def test_the_evaluation_splits_uncertainty_can_turn_a_seed_significant_difference_inconclusive():
    values = _family([(2.0, 2.2, 1.9), (0.0, 0.1, -0.1)])
    assert v.decide(v.combined(values), 1.0).verdict[0] == v.BETTER
    # The same seeds on a tiny test set: each strategy's seed mean moves by ~3 pp between
    # patient resamples, so a 2 pp difference is not established.
    rng = np.random.default_rng(0)
    boot = values.mean(axis=1)[:, None] + rng.normal(0, 3.0, (3, 2000))
    decision = v.decide(v.combined(values, boot), 1.0)
    assert decision.verdict[0] == v.INCONCLUSIVE
    assert decision.seeds_to_decide[0] is None  # more seeds cannot shrink the test set's part
    assert v.decide(v.pooled(values, boot), 1.0).verdict[0] == v.INCONCLUSIVE
    assert decision.high[0] - decision.low[0] > 8


def test_seeds_to_decide_is_the_first_seed_count_that_decides():
    values = _family([(1.5, -0.5, 2.5)])  # one comparison: Holm is the plain test
    estimate = v.pooled(values)
    decision = v.decide(estimate, 1.0)
    assert decision.verdict == [v.INCONCLUSIVE]
    n = decision.seeds_to_decide[0]
    assert 3 < n <= v.MAX_SEEDS

    def at(seeds: int) -> str:
        # The same mean difference and spread, observed over ``seeds`` pairs.
        grown = v.estimate_from_parts(
            estimate.diff, estimate.seed_var, [seeds], estimate.test_var, [seeds - 1]
        )
        return v.decide(grown, 1.0).verdict[0]

    assert at(n) in (v.BETTER, v.EQUIVALENT)
    assert at(n - 1) == v.INCONCLUSIVE


def test_one_seed_is_not_tested():
    decision = v.decide(v.combined(np.array([[80.0], [82.0]])), 1.0)
    assert decision.verdict == [v.UNTESTED] and decision.seeds_to_decide == [None]


def test_pooled_uses_the_family_residual_and_more_degrees_of_freedom():
    rng = np.random.default_rng(3)
    values = 80 + rng.normal(0, 1, (8, 3))
    own, pooled = v.combined(values), v.pooled(values)
    assert (pooled.df == 14).all() and (own.df == 2).all()
    # The residual variance of the two-way layout, as an OLS fit of strategy + seed gives it.
    import pandas as pd
    import statsmodels.formula.api as smf

    long = pd.DataFrame(
        [(f"s{i}", f"seed{j}", values[i, j]) for i in range(8) for j in range(3)],
        columns=["strategy", "seed", "value"],
    )
    fit = smf.ols("value ~ C(strategy) + C(seed)", long).fit()
    assert fit.df_resid == 14
    assert pooled.seed_var[0] == pytest.approx(2 * fit.scale)


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
        {"FT": ft, "Up": ft + 4 + rng.normal(0, 0.3, 12), "Same": ft + rng.normal(0, 0.1, 12)}
    )
    table = across.bayesian(wide, margin=1.0).set_index("strategy")
    assert table.loc["Up", "P(better)"] > 0.95 and table.loc["Up", "verdict"] == v.BETTER
    assert table.loc["Same", "P(equivalent)"] > 0.95
    assert table.loc["Same", "verdict"] == v.EQUIVALENT


def test_a_comparison_of_a_larger_family_carries_its_multiplicity():
    # The search tests its pick against FT alone, but claims no more than the grid, which
    # tests 7 strategies against FT: the pick's p counts as the first of 7.
    assert v.holm([0.01], family=7) == pytest.approx([0.07])
    assert v.holm([0.01, 0.04], family=7) == pytest.approx([0.07, 0.24])
    assert v.holm([0.01, np.nan]) == pytest.approx([0.01, np.nan], nan_ok=True)
