"""The across-dataset artefacts' writers, each registered with ``@artefact``
(``medft.report.catalogue``); its docstring is its entry in docs/report.md."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medft.grid_axes import axis_point
from medft.report import tables
from medft.report.catalogue import SUMMARY, artefact
from medft.report.evidence import Evidence, SummaryReport
from medft.report.formats import latex_escape, to_latex, write_markdown, write_table
from medft.report.tables import METRIC_LABELS
from medft.strategies import REFERENCE, STRATEGIES


def _strategies_only(summary):
    """The paper's Tables 11 and 12 are about fine-tuning strategies: the post-hoc rows
    (probes, WiSE) stay in the per-dataset tables and statistics."""
    return summary[summary["strategy"].map(lambda s: s in STRATEGIES)]


@artefact("best_combination", ("md", "tex", "csv", "html"), scope=SUMMARY)
def _best_combination(report: SummaryReport, stem: Path) -> None:
    """Table 11: per dataset, the (model, strategy) with the best mean main metric and its relative
    improvement over FT on the same model (two decimals).
    """
    verdicts = report.verdicts
    best = tables.best_combination(_strategies_only(report.summary), verdicts)
    best.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.2f")
    caption = (
        "Table 11: per dataset, the model and strategy with the highest mean main metric, "
        "and its relative improvement over FT on the same model (%)"
        + ("; verdict against FT (statistics.md of the dataset)." if verdicts is not None else ".")
    )
    shown = best.assign(
        improvement=best["improvement"].map("{:.2f}".format),
        value=best["value"].map("{:.2f}".format),
        main_metric=best["main_metric"].map(METRIC_LABELS),
    )
    write_table(stem, "Best combination per dataset", caption, shown)
    stem.with_suffix(".tex").write_text(
        to_latex(shown.map(lambda v: latex_escape(str(v))), caption, "tab:best", index=False)
    )


@artefact("effectiveness", ("md", "tex", "csv", "html"), scope=SUMMARY)
def _effectiveness(report: SummaryReport, stem: Path) -> None:
    """Table 12: per strategy and model, the (dataset, model) cells whose main metric beats FT's by
    more than 0.1 % (relative); `Effectiveness (%)` is their share (one decimal); `Better
    (verdict)` / `Better (%)` count only cells judged *better*, `Equivalent (verdict)` /
    `Equivalent (%)` apart those shown *equivalent*. The last row totals the columns.
    """
    verdicts = report.verdicts
    counts = tables.effectiveness(_strategies_only(report.summary), verdicts)
    counts.to_csv(stem.with_suffix(".csv"), index=False)
    caption = (
        "Table 12: per strategy and model, the (dataset, model) cells whose main metric beats "
        f"{REFERENCE}'s by more than {tables.EFFECTIVE_OVER_FT} % (relative, the paper's rule); "
        "Effectiveness = their share of all comparisons"
        + (
            "; Better (verdict) counts only the cells judged significantly better than FT, "
            "Equivalent (verdict) apart the cells shown equivalent within the margin "
            "(statistics of each dataset)."
            if verdicts is not None
            else "."
        )
    )
    shown = counts.astype(str)
    write_table(stem, "Effectiveness", caption, shown)
    stem.with_suffix(".tex").write_text(
        to_latex(shown.map(latex_escape), caption, "tab:effectiveness", index=False)
    )


@artefact("across_datasets", ("md", "csv", "html"), scope=SUMMARY)
def _across_datasets(report: SummaryReport, stem: Path) -> None:
    """Per model and strategy: the median and the mean relative improvement across datasets
    and the Wilcoxon signed-rank test (only with ≥ 5 datasets), Holm-corrected over the
    strategies of a model; `min_p_holm` is the smallest corrected p the exact test can reach
    with the datasets where the strategy differs from FT (`n_ranked`), and a row that could
    never reach 0.05 says "cannot decide" instead of a verdict. The test speaks of the typical
    dataset, not of the mean: where the median and the mean differ in sign, the gains are
    skewed. Where the evaluation split chose any dataset's runs (their lr or epochs), no test
    is run, as none is within the datasets, and the verdict says why.
    """
    from medft.report import across

    tested = across.across_datasets(report.improvement, report.withheld).round(4)
    tested.to_csv(stem.with_suffix(".csv"), index=False)
    write_table(
        stem,
        "Across datasets",
        "Per model and strategy: the median and the mean relative improvement over FT across "
        "datasets, and the Wilcoxon signed-rank test (Holm-corrected over strategies; tested "
        f"only with {across.MIN_DATASETS_WILCOXON} datasets or more). The test speaks of the "
        "typical dataset, not of the mean: where median and mean differ in sign, the gains are "
        "skewed (large on a few datasets). min_p_holm: the smallest corrected p the exact test "
        "can reach with the datasets where the strategy differs from FT (n_ranked); where it is "
        "0.05 or more, no data could make the row significant, and the verdict says so instead.",
        tested,
    )


@artefact("critical_difference", ("png", "pdf", "csv"), scope=SUMMARY)
def _critical_difference(report: SummaryReport, stem: Path) -> None:
    """The Friedman test over the blocks — the datasets, each the mean over its models, by
    default; the (dataset, model) pairs with `across_blocks: dataset_model` — (each block ranks
    the strategies by mean main metric; only pairs where every strategy has a value) and the
    Nemenyi post-hoc test,
    drawn as a critical-difference diagram (Demšar 2006; `autorank`, nonparametric forced). The
    CSV: mean rank, rank difference from FT, verdict (better / worse when Friedman p < 0.05 and
    the rank difference exceeds the critical difference), Friedman p, its smallest attainable p
    with these blocks (`min_p`), CD, and the (dataset, model) pairs left out because a
    strategy has no value there (`left_out`, also under the diagram's title). With fewer than
    5 blocks or a `min_p` of 0.05 or more the figure shows the mean ranks and says why there is
    no test. With no true difference and the effect spreading 4–8 points across datasets, the
    test gave a false better or worse in at most 0.1 % of families over the datasets. In the
    (dataset, model) view a dataset's models share its effect, and Nemenyi's test alone
    (`nemenyi`) gave false ones in 13–18 %: there a verdict also needs the sign-flip test of
    the strategy's rank difference from FT over the datasets, each dataset's blocks together,
    Holm over the strategies (`p_datasets_holm`), which the figure and the CSV (`caveat`) then
    say; with it, at most 3.3 % (`bench/results_stats_rank.md`). The figure then draws no
    Nemenyi bars (they would join and part strategies as if each pair were independent) and
    shows each strategy's verdict beside its mean rank. Where the evaluation split chose any
    dataset's runs, no test is run (the mean ranks alone, and why).
    """
    from medft.report import across, figures, summary_figures

    values = across.values(report.summary)
    test = across.rank_test(across.blocks(values, report.blocks), withheld=report.withheld)
    left_out = [f"{d} × {m}" for d, m in values.index[values.isna().any(axis=1)]]
    caveat = view_caveat(report.blocks, "critical_difference")
    test.table.assign(
        n_blocks=test.n_blocks,
        friedman_p=test.p_value,
        min_p=test.min_p,
        cd=test.cd,
        left_out="; ".join(left_out),
        caveat=caveat.strip(),
    ).to_csv(stem.with_suffix(".csv"), index=False, float_format="%.4g")
    figures.save(
        summary_figures.critical_difference(
            test, across.BLOCKS[report.blocks], left_out, caveat.strip()
        ),
        stem.with_suffix(".png"),
        stem.with_suffix(".pdf"),
    )


# Where a view's blocks share a dataset, what counting them as independent did to a test's
# error, and what its verdicts need instead, as the benches measured them (no true
# difference, the effect spreading across datasets): view → artefact → ViewCaveat.
@dataclass(frozen=True)
class ViewCaveat:
    alone: str  # the test that counts a dataset's blocks as independent
    alone_error: str  # its false better/worse, and where that was measured
    twin: str  # the test over the datasets that a verdict also needs
    verdict_error: str  # the verdict's false better/worse, and where


VIEW_CAVEATS = {
    "dataset_model": {
        "bayesian": ViewCaveat(
            "the posterior with the signed-rank test over the blocks",
            "61 % of families with no true difference where the effect spreads 8 points "
            "across datasets (bench/results_stats_bayesian.md as of commit 4c4e9ab)",
            "the signed-rank test with each dataset's blocks flipping sign together "
            "(n_signed: the datasets it flips)",
            "0.0, 3.0 and 6.5 % of families over 8, 12 and 24 datasets, within 5 % and its "
            "simulation error (bench/results_stats_bayesian.md)",
        ),
        "critical_difference": ViewCaveat(
            "the Nemenyi test (nemenyi)",
            "13–18 % of families with no true difference where the effect spreads 4–8 points "
            "across datasets",
            "the sign-flip test of the strategy's rank difference from FT over the datasets, "
            "each dataset's blocks together, Holm over the strategies (p_datasets_holm)",
            "at most 3.3 % (bench/results_stats_rank.md)",
        ),
    }
}


def view_caveat(view: str, artefact: str) -> str:
    """The caption's note (a leading space, to follow a sentence) for a block view whose
    blocks share a dataset; "" else."""
    if artefact not in VIEW_CAVEATS.get(view, {}):
        return ""
    caveat = VIEW_CAVEATS[view][artefact]
    return (
        f" In this view a dataset's models are blocks that share its effect. Counted as "
        f"independent, {caveat.alone} gave a false better or worse in {caveat.alone_error}; "
        f"so a verdict here also needs {caveat.twin}: the datasets are what is independent, "
        f"and their number bounds what can be decided. The verdict: false in "
        f"{caveat.verdict_error}."
    )


def _shown(number_format: str) -> Callable[[float], str]:
    """A number as ``number_format`` writes it; a test not run shows the tables' dash, not
    "nan"."""
    return lambda value: tables.NO_VALUE if pd.isna(value) else number_format.format(value)


@artefact("bayesian", ("md", "csv", "html"), scope=SUMMARY)
def _bayesian(report: SummaryReport, stem: Path) -> None:
    """Per strategy against FT over the blocks where both have values (a cell another strategy
    lacks drops nothing here): the Bayesian signed-rank test (Benavoli et al., JMLR 2017;
    `baycomp`, 50,000 samples, seed 0) with a region of practical equivalence of
    ±`equivalence_margin` points: P(better), P(equivalent), P(worse), and the one reaching 0.95
    (`posterior`); the verdict where its frequentist twin agrees — the exact Wilcoxon
    signed-rank test of the same blocks, Holm-corrected over the strategies, at 0.05 (two
    one-sided tests against ±margin for *equivalent*; `p_holm`, `p_equivalence_holm`) — else
    inconclusive, or "cannot decide" with the smallest p the blocks allow. The posterior alone,
    with no true difference and the true effect spreading 4–16 points across 6–24 datasets,
    gave a false *better* or *worse* in 38–67 % of families of 7 comparisons; the verdict in
    at most 5.5 % (`bench/results_stats_bayesian.md`). In the (dataset, model) view a
    dataset's blocks share its effect, so the signed-rank test flips their signs together
    (`n_signed`: the datasets it flips): counted as independent blocks, the verdict was false
    in 61 % of such families (as of commit 4c4e9ab); so, in 0.0–6.5 % over 8–24 datasets,
    within 5 % and its simulation error.
    No test with fewer than 6 blocks, nor where the evaluation split chose any dataset's runs.
    The tests speak of the typical block (the pseudo-median
    of the differences), not the mean: `mean_difference` stands beside `median_difference`,
    and a strategy with large gains on a few datasets and small losses on most (mean gain 0)
    read *worse* in 19.5 % of simulated families over 12 datasets.
    """
    from medft.report import across

    margin = report.margin
    table = across.bayesian(
        across.values(report.summary), margin, report.blocks, withheld=report.withheld
    )
    table.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.4g")
    probabilities = ("P(better)", "P(equivalent)", "P(worse)")
    shown = table[
        ["strategy", "n_blocks", "n_signed", "median_difference", "mean_difference"]
        + [*probabilities, "posterior"]
        + ["p_holm", "p_equivalence_holm", "verdict"]
    ].assign(
        median_difference=table["median_difference"].map("{:+.2f}".format),
        mean_difference=table["mean_difference"].map("{:+.2f}".format),
        **{c: table[c].map(_shown("{:.3f}")) for c in probabilities},
        **{c: table[c].map(_shown("{:.3g}")) for c in ("p_holm", "p_equivalence_holm")},
    )
    write_table(
        stem,
        "Bayesian comparison with FT across blocks",
        f"Per strategy, over {across.BLOCKS[report.blocks]} (across_blocks; only (dataset, "
        f"model) pairs where the strategy and {REFERENCE} both have a value, n_blocks): the "
        f"Bayesian signed-rank test (Benavoli et al., JMLR 2017; baycomp) of its main metric "
        f"against {REFERENCE}'s, with a region of practical equivalence of ±{margin:g} points "
        f"(equivalence_margin). P(better), P(equivalent), P(worse) are posterior "
        f"probabilities, and posterior the one reaching {across.DECISIVE:g}. The verdict is the "
        "posterior's where the exact Wilcoxon signed-rank test of the same blocks, "
        "Holm-corrected over the strategies, agrees at 0.05 (p_holm; for equivalent, two "
        "one-sided tests against the margin, p_equivalence_holm): decided at 0.95 on its own, "
        "the posterior gave a false better or worse in 38–67 % of families of 7 strategies "
        "with no true difference where the effect spreads 4–16 points across datasets, the "
        "verdict in at most 5.5 % (bench/results_stats_bayesian.md). Else inconclusive, or "
        "cannot decide where no data on these blocks could reach 0.05; no test with fewer "
        f"than {across.MIN_BLOCKS_BAYESIAN} blocks. Both tests speak of the typical block (the "
        "differences' pseudo-median), not of the mean: where median_difference and "
        "mean_difference differ in sign, the gains are skewed (large on a few blocks), and a "
        "strategy whose mean gain is 0 can read worse (19.5 % of simulated families over 12 "
        f"datasets).{view_caveat(report.blocks, 'bayesian')}",
        shown,
    )


def _axis_writer(axis: str, title: str, intro: str, description: str) -> Callable:
    def write(report: SummaryReport, stem: Path) -> None:
        from medft.report import axes, figures, summary_figures

        frame = axes.curves(report.summary, report.verdicts, axis)
        frame.round(3).to_csv(stem.with_suffix(".csv"), index=False)
        write_markdown(
            stem.with_suffix(".md"),
            title,
            f"{intro} At each point: the leading strategy, the strategies whose mean main "
            "metric is above FT's with their verdict against FT there (statistics.md of that "
            "point's dataset), and where the lead changes.",
            axes.crossovers(frame, axis),
        )
        figures.save(summary_figures.along_axis(frame, axis), stem.with_suffix(".png"))

    write.__doc__ = description
    return write


def _on(axis: str) -> Callable[[Evidence], bool]:
    return lambda e: (p := axis_point(e.dataset)) is not None and getattr(p, axis) is not None


# The axes' artefacts: (stem, axis, config key, title, caption's opening, docs entry).
AXIS_ARTEFACTS = (
    (
        "label_fractions",
        "fraction",
        "train_fractions",
        "Label fractions: where another strategy overtakes FT",
        "Per dataset and model, against the fraction of the training split (the same "
        "evaluation split at every fraction).",
        """With `train_fractions: [...]` in the config (the label-fraction axis: every dataset
        once per fraction of its training split, whole patients, stratified, named
        `<dataset>@<fraction>`, the evaluation split the same at every fraction): per dataset and
        model, each strategy's main metric (mean and 95 % t-interval over seeds, at its chosen
        lr) against the fraction, log-scaled (`.png`, `.csv`), and per fraction the leading
        strategy, the strategies above FT with their difference and verdict at that fraction, and
        where the lead changes (`.md`). Each `<dataset>@<fraction>` also has its own paper-style
        tables and statistics. `medft plan` prices each fraction at its own size.""",
    ),
    (
        "image_sizes",
        "size",
        "image_sizes",
        "Input sizes: where another strategy overtakes FT",
        "Per dataset and model, against the input size (the same images, resized).",
        """The same along the resolution axis (`image_sizes: [...]`: every dataset once per
        input size, named `<dataset>@<size>px`, prepared at that crop and resized in the ratio of
        `image_size` or the model's own; the same images at every size). A ViT's fixed position
        embedding takes only its own size.""",
    ),
)
for stem, axis, key, title, intro, description in AXIS_ARTEFACTS:
    artefact(
        stem,
        ("png", "csv", "md"),
        scope=SUMMARY,
        expected=lambda config, key=key: bool(config.get(key)),
        available=_on(axis),
    )(_axis_writer(axis, title, intro, description))


@artefact("heatmap", ("png", "pdf"), scope=SUMMARY)
def _heatmap(report: SummaryReport, stem: Path) -> None:
    """Strategies × (dataset, model), coloured by relative improvement, annotated with the value
    and the verdict mark (▲ better, ▼ worse, ≈ equivalent).
    """
    from medft.report import figures, summary_figures

    figure = summary_figures.improvement_heatmap(report.improvement, report.verdicts)
    figures.save(figure, stem.with_suffix(".png"), stem.with_suffix(".pdf"))
