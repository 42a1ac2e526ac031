"""Every table and figure of a report, registered once each (``ARTEFACTS``): per dataset and
across datasets. An entry carries the artefact's file stem and formats, its scope, when the
workflow expects it, when the evidence allows it, and its writer; the workflow's outputs,
their ``report()`` captions (``workflow/report/<stem>.rst``) and the written files all derive
from the entries. The workflow's report rules and ``medft report`` both call
``dataset_artefacts`` and ``summary_artefacts``.

Adding an artefact: a writer here, decorated with ``@artefact(...)``, and its caption file
``workflow/report/<stem>.rst`` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medft.registry import Registry
from medft.report import tables
from medft.report.evidence import DatasetReport, Evidence, SummaryReport, per_class_metrics
from medft.report.formats import latex_escape, to_latex, write_html, write_markdown, write_table
from medft.report.tables import METRIC_LABELS
from medft.strategies import REFERENCE, STRATEGIES
from medft.workflow import axis_point

PAPER_TABLE_CAPTION = (
    "{dataset}: {metrics} on the evaluation split in percent, mean (standard error) over "
    "{seeds}, {selection}. The top score of each metric and "
    "architecture is in bold, the top score of each metric across architectures underlined. "
    "{arrows}{protocol}"
)
ARROWS = (
    "↑ / ↓ after the main metric: significantly better / worse than FT on the same "
    "architecture; ≈: equivalent within the margin (seed-paired, with {confirmation}, "
    "Holm-corrected: statistics). "
)
DATASET, SUMMARY = "dataset", "summary"


def _always(_) -> bool:
    return True


@dataclass(frozen=True)
class Artefact:
    stem: str
    formats: tuple[str, ...]
    scope: str  # DATASET: one per dataset; SUMMARY: one across datasets
    # Writes ``<stem>.<format>`` for each of its formats: (DatasetReport | SummaryReport, stem).
    write: Callable
    # Whether the workflow expects it, given the (validated) config: its strategies (read as
    # traits), its axes.
    expected: Callable[[dict], bool] = _always
    # Whether the evidence at hand allows it (published means have no runs, logs or
    # predictions; one seed has no statistics).
    available: Callable[[Evidence], bool] = _always

    @property
    def files(self) -> list[str]:
        return [f"{self.stem}.{extension}" for extension in self.formats]


ARTEFACTS: Registry[Artefact] = Registry("report artefact")


def artefact(stem: str, formats: tuple[str, ...], scope: str = DATASET, **traits):
    """Register the decorated writer as the artefact ``stem``."""

    def register(write: Callable) -> Callable:
        ARTEFACTS.register(stem)(Artefact(stem, formats, scope, write, **traits))
        return write

    return register


def artefacts_of(scope: str) -> list[Artefact]:
    return [a for name in ARTEFACTS.names() if (a := ARTEFACTS.get(name)).scope == scope]


def adapts_block_lrs(strategy: str) -> bool:
    return strategy in STRATEGIES and STRATEGIES.get(strategy).adapts_block_lrs


# -- per dataset ---------------------------------------------------------------------------
@artefact("table", ("md", "csv", "html"))
def _table(report: DatasetReport, stem: Path) -> None:
    e = report.evidence
    main = e.main_metric
    e.summary.to_csv(stem.with_suffix(".csv"), index=False)
    write_table(
        stem,
        e.dataset,
        f"All metrics on the evaluation split in percent, mean (standard error) over "
        f"{e.seeds_text()}, {report.selection} (main metric: {METRIC_LABELS[main]}). Bold: "
        "the best value of each metric within a model; "
        f"'vs {REFERENCE}': the verdict on the main metric (statistics.md)."
        f"{report.diverged}{report.trainable}{report.caption_tail}",
        tables.dataset_table(
            e.summary,
            e.verdicts,
            [m for m in tables.METRICS if e.summary[f"{m}_mean"].notna().any()],
        ),
    )


@artefact("paper_table", ("md", "tex", "csv", "html"))
def _paper_table(report: DatasetReport, stem: Path) -> None:
    e = report.evidence
    reported = tables.report_metrics(e.summary, report.metrics)
    long = tables.paper_table(e.summary, reported, e.verdicts)
    long.to_csv(stem.with_suffix(".csv"), index=False)
    caption = PAPER_TABLE_CAPTION.format(
        dataset=e.dataset,
        metrics=" and ".join(METRIC_LABELS[m] for m in reported),
        seeds=e.seeds_text(),
        selection=report.selection,
        arrows=ARROWS.format(confirmation=e.confirmation) if e.verdicts is not None else "",
        protocol=report.protocol + report.selection_caveat + report.trainable,
    )
    markdown = tables.paper_table_wide(long, "md")
    markdown.columns = [f"{model} {metric}" for model, metric in markdown.columns]
    write_markdown(stem.with_suffix(".md"), e.dataset, caption, markdown.reset_index())
    stem.with_suffix(".tex").write_text(
        to_latex(tables.paper_table_wide(long, "latex"), caption, f"tab:{e.dataset}")
    )
    html = tables.paper_table_wide(long, "html")
    write_html(stem.with_suffix(".html"), e.dataset, caption, html, index=True)


@artefact("statistics", ("md", "csv", "html"), available=lambda e: e.verdicts is not None)
def _statistics(report: DatasetReport, stem: Path) -> None:
    from medft.report import stats

    e = report.evidence
    e.verdicts.to_csv(stem.with_suffix(".csv"), index=False)
    margin = e.verdicts["margin"].iloc[0] if "margin" in e.verdicts else stats.EQUIVALENCE_MARGIN
    write_table(
        stem,
        f"{e.dataset}: each strategy against FT",
        f"Differences of the main metric ({METRIC_LABELS[e.main_metric]}) from FT in "
        "percentage points, seed-paired at each side's chosen lr. One test counts both "
        "uncertainties: the seeds' spread of the paired differences and "
        + (
            f"the evaluation split's sampling (patient bootstrap, B = {stats.N_BOOT})"
            if e.has_predictions
            else "nothing of the evaluation split's sampling (no saved predictions)"
        )
        + "; its 95 % interval and p, Holm-corrected within the model (docs/protocol.md, "
        "Statistics; the rule was chosen by simulation, bench/results_stats.md). Verdict: "
        "better / worse when the corrected p < 0.05; otherwise equivalent when the "
        f"Bonferroni-adjusted interval lies within ±{margin:g} pp (equivalence_margin); "
        "otherwise inconclusive, with the seeds that would decide it if the observed "
        "difference and spread held. Inconclusive is not equivalent. Not tested with one "
        "seed." + report.selection_caveat,
        tables.statistics_table(e.verdicts),
    )


@artefact("relative_improvement", ("png", "pdf", "csv"))
def _relative_improvement(report: DatasetReport, stem: Path) -> None:
    from medft.report import figures

    e = report.evidence
    improvement = e.improvement()
    improvement.to_csv(stem.with_suffix(".csv"), index=False)
    figure = figures.relative_improvement(
        improvement, f"{e.dataset}: relative {METRIC_LABELS[e.main_metric]} over FT", e.verdicts
    )
    figures.save(figure, stem.with_suffix(".png"), stem.with_suffix(".pdf"))


@artefact("lr_sensitivity", ("png",), available=lambda e: e.runs is not None)
def _lr_sensitivity(report: DatasetReport, stem: Path) -> None:
    from medft.report import figures

    e = report.evidence
    figure = figures.lr_sensitivity(e.runs, e.main_metric, e.select_on)
    figures.save(figure, stem.with_suffix(".png"))


@artefact("learning_curves", ("png",), available=lambda e: e.epochs is not None)
def _learning_curves(report: DatasetReport, stem: Path) -> None:
    from medft.report import figures

    epochs, main = report.chosen_epochs(), report.evidence.main_metric
    split = "test" if f"test_{main}" in epochs and f"val_{main}" not in epochs else "val"
    figures.save(figures.learning_curves(epochs, main, split), stem.with_suffix(".png"))


@artefact("per_class", ("png", "csv"), available=lambda e: e.has_predictions)
def _per_class(report: DatasetReport, stem: Path) -> None:
    from medft.report import figures

    classes = per_class_metrics(report.evidence)
    classes.round(4).to_csv(stem.with_suffix(".csv"), index=False)
    figures.save(figures.per_class(classes), stem.with_suffix(".png"))


@artefact(
    "block_lrs",
    ("png",),
    expected=lambda config: any(map(adapts_block_lrs, config["strategies"])),
    available=lambda e: e.epochs is not None and e.epochs["strategy"].map(adapts_block_lrs).any(),
)
def _block_lrs(report: DatasetReport, stem: Path) -> None:
    from medft.report import figures

    epochs = report.chosen_epochs()
    adaptive = epochs[epochs["strategy"].map(adapts_block_lrs)]
    figures.save(figures.block_learning_rates(adaptive), stem.with_suffix(".png"))


@artefact("calibration", ("md", "csv", "png"), available=lambda e: e.has_predictions)
def _calibration(report: DatasetReport, stem: Path) -> None:
    import pandas as pd

    from medft.report import calibration, figures

    rows, bins = [], []
    for _, run in report.evidence.chosen.iterrows():
        predictions = pd.read_parquet(Path(run["run_dir"]) / "predictions.parquet")
        cell = {"model": run["model"], "strategy": run["strategy"], "seed": run["seed"]}
        rows.append({**cell, **calibration.run_calibration(predictions)})
        probs, targets, multilabel = calibration.split_arrays(
            predictions[predictions["split"] == "test"]
        )
        if multilabel:  # each label a binary problem
            probs = np.concatenate([np.stack([1 - p, p], 1) for p in probs.T])
            targets = targets.T.reshape(-1)
        bins.append(calibration.reliability(probs, targets).assign(**cell))
    per_seed = pd.DataFrame(rows)
    table = per_seed.groupby(["model", "strategy"], sort=False).mean(numeric_only=True)
    table = table.drop(columns="seed").reset_index().round(4)
    table.to_csv(stem.with_suffix(".csv"), index=False)
    write_markdown(
        stem.with_suffix(".md"),
        f"{report.evidence.dataset}: calibration",
        "Evaluation split, mean over seeds at the chosen lr: expected calibration error with "
        f"{calibration.N_BINS} equal-width bins (ece) and equal-mass bins (adaptive_ece), Brier "
        "score and negative log-likelihood, before and after temperature scaling fitted on the "
        "validation split (temperature: the fitted T; T > 1 means the model was "
        "over-confident). Lower is better for all four.",
        table,
    )
    pooled = pd.concat(bins)
    pooled = (
        pooled.assign(
            hits=pooled["accuracy"] * pooled["n"], weight=pooled["confidence"] * pooled["n"]
        )
        .groupby(["model", "strategy", "bin"], sort=False)[["hits", "weight", "n"]]
        .sum()
        .reset_index()
    )
    pooled["accuracy"], pooled["confidence"] = (
        pooled["hits"] / pooled["n"],
        pooled["weight"] / pooled["n"],
    )
    figures.save(figures.reliability_diagrams(pooled), stem.with_suffix(".png"))


@artefact("data_card", ("md", "html"), available=lambda e: e.data_folder is not None)
def _data_card(report: DatasetReport, stem: Path) -> None:
    from medft.data.card import data_card, write

    write(data_card(report.evidence.data_folder), stem)


# -- across datasets -----------------------------------------------------------------------
@artefact("best_combination", ("md", "tex", "csv", "html"), scope=SUMMARY)
def _best_combination(report: SummaryReport, stem: Path) -> None:
    verdicts = report.verdicts
    best = tables.best_combination(report.summary, verdicts)
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
    verdicts = report.verdicts
    counts = tables.effectiveness(report.summary, verdicts)
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
    from medft.report import stats

    across = stats.across_datasets(report.improvement).round(4)
    across.to_csv(stem.with_suffix(".csv"), index=False)
    write_table(
        stem,
        "Across datasets",
        "Per model and strategy: the median relative improvement over FT across datasets and "
        "the Wilcoxon signed-rank test of it (Holm-corrected over strategies; tested only with "
        f"{stats.MIN_DATASETS_WILCOXON} datasets or more). min_p_holm: the smallest corrected p "
        "the exact test can reach with this many datasets; where it is 0.05 or more, no data "
        "could make the row significant, and the verdict says so instead.",
        across,
    )


@artefact("critical_difference", ("png", "pdf", "csv"), scope=SUMMARY)
def _critical_difference(report: SummaryReport, stem: Path) -> None:
    from medft.report import across, figures

    test = across.rank_test(across.blocks(report.summary))
    test.table.assign(
        n_blocks=test.n_blocks, friedman_p=test.p_value, min_p=test.min_p, cd=test.cd
    ).to_csv(stem.with_suffix(".csv"), index=False, float_format="%.4g")
    figures.save(
        figures.critical_difference(test), stem.with_suffix(".png"), stem.with_suffix(".pdf")
    )


@artefact("bayesian", ("md", "csv", "html"), scope=SUMMARY)
def _bayesian(report: SummaryReport, stem: Path) -> None:
    from medft.report import across

    margin = report.margin
    table = across.bayesian(across.blocks(report.summary), margin)
    table.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.4g")
    shown = table.assign(
        median_difference=table["median_difference"].map("{:+.2f}".format),
        **{c: table[c].map("{:.3f}".format) for c in ("P(better)", "P(equivalent)", "P(worse)")},
    )
    write_table(
        stem,
        "Bayesian comparison with FT across blocks",
        f"Per strategy, over the (dataset, model) blocks where every strategy has a value: the "
        f"Bayesian signed-rank test (Benavoli et al., JMLR 2017; baycomp) of its main metric "
        f"against {REFERENCE}'s, with a region of practical equivalence of ±{margin:g} points "
        f"(equivalence_margin). P(better), P(equivalent), P(worse) are posterior "
        f"probabilities; the verdict is the one reaching {across.DECISIVE:g}, else "
        "inconclusive. Unlike a p-value, a high P(equivalent) is evidence of no practical "
        "difference.",
        shown,
    )


def _axis_writer(axis: str, title: str, intro: str) -> Callable:
    def write(report: SummaryReport, stem: Path) -> None:
        from medft.report import axes, figures

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
        figures.save(figures.along_axis(frame, axis), stem.with_suffix(".png"))

    return write


def _on(axis: str) -> Callable[[Evidence], bool]:
    return lambda e: (p := axis_point(e.dataset)) is not None and getattr(p, axis) is not None


artefact(
    "label_fractions",
    ("png", "csv", "md"),
    scope=SUMMARY,
    expected=lambda config: bool(config.get("train_fractions")),
    available=_on("fraction"),
)(
    _axis_writer(
        "fraction",
        "Label fractions: where another strategy overtakes FT",
        "Per dataset and model, against the fraction of the training split (the same "
        "evaluation split at every fraction).",
    )
)
artefact(
    "image_sizes",
    ("png", "csv", "md"),
    scope=SUMMARY,
    expected=lambda config: bool(config.get("image_sizes")),
    available=_on("size"),
)(
    _axis_writer(
        "size",
        "Input sizes: where another strategy overtakes FT",
        "Per dataset and model, against the input size (the same images, resized).",
    )
)


@artefact("heatmap", ("png", "pdf"), scope=SUMMARY)
def _heatmap(report: SummaryReport, stem: Path) -> None:
    from medft.report import figures

    figure = figures.improvement_heatmap(report.improvement, report.verdicts)
    figures.save(figure, stem.with_suffix(".png"), stem.with_suffix(".pdf"))


# -- writing -------------------------------------------------------------------------------
def _write(entries: list[Artefact], report, out: Path, allowed) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in entries:
        if allowed(entry):
            entry.write(report, out / entry.stem)
            written += [out / name for name in entry.files]
    return written


def dataset_artefacts(
    evidence: Evidence,
    out: str | Path,
    metrics: list[str] | None = None,
    protocol: str = "",
) -> list[Path]:
    """Write one dataset's tables and figures into ``out``; returns the paths written."""
    report = DatasetReport(evidence, metrics, protocol)
    entries = artefacts_of(DATASET)
    return _write(entries, report, Path(out), lambda entry: entry.available(evidence))


def summary_artefacts(evidence: list[Evidence], out: str | Path) -> list[Path]:
    """Table 11, Table 12, the across-dataset tests and the heatmap, into ``out``."""
    return _write(
        artefacts_of(SUMMARY),
        SummaryReport(evidence),
        Path(out),
        lambda entry: any(entry.available(e) for e in evidence),
    )
