"""The per-dataset artefacts' writers, each registered with ``@artefact``
(``medft.report.catalogue``); its docstring is its entry in docs/report.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medft.report import tables, verdict_table
from medft.report.catalogue import artefact
from medft.report.evidence import DatasetReport, per_class_metrics
from medft.report.formats import to_latex, write_html, write_markdown, write_table
from medft.report.tables import METRIC_LABELS
from medft.strategies import REFERENCE, STRATEGIES

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


def adapts_block_lrs(strategy: str) -> bool:
    return strategy in STRATEGIES and STRATEGIES.get(strategy).adapts_block_lrs


@artefact("table", ("md", "csv", "html"))
def _table(report: DatasetReport, stem: Path) -> None:
    """Every metric; bold is the best value of each metric within a model; the last column is the
    verdict against FT.
    """
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
        f"{report.selection_caveat}{report.diverged}{report.trainable}{report.preprocessing}"
        f"{report.caption_tail}",
        tables.dataset_table(
            e.summary,
            e.verdicts,
            [m for m in tables.METRICS if e.summary[f"{m}_mean"].notna().any()],
        ),
    )


@artefact("paper_table", ("md", "tex", "csv", "html"))
def _paper_table(report: DatasetReport, stem: Path) -> None:
    r"""The paper's Tables 3–10 for one dataset: rows are strategies, columns (model, metric) for
    the dataset's two reported metrics (`report_metrics:` on the dataset entry; default: the
    main metric and the one the paper pairs with it: mAP → AUROC, accuracy → κ, AUROC →
    accuracy). Cells are "mean (SE)" over seeds in percent; "–" as SE with one seed. As in the
    paper, the top score of each metric within an architecture is bold and the top score of each
    metric across architectures underlined. After the main metric, ↑ / ↓ mark a strategy
    significantly better / worse than FT on that architecture, ≈ one shown equivalent within the
    margin. Markdown (underline as `<u>`), LaTeX (booktabs: `\usepackage{booktabs}`), CSV (one
    row per strategy, model and metric, with `best_in_model`, `best_overall`, `verdict`) and
    HTML.
    """
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
    """Per model and strategy ≠ FT: `n_pairs` (seeds present for both), `diff_mean` (percentage
    points of the main metric), `seed_var` (variance of the paired differences),
    `diff_low`/`diff_high` (their 95 % t-interval), `p_seed` (the seed-only paired t-test, for
    reference), `boot_low`/`boot_high`/`boot_var` (patient bootstrap of the seed-mean
    difference), `resolution` (points of the main metric one evaluation image can move; no
    equivalence above the margin), `test_var` (the part of the split's sampling the seeds
    share) and `test_groups` (the patients it was resampled from), then the verdict's test:
    `p_value`, `p_holm`, `low`/`high` (its 95 % interval), `eq_low`/`eq_high` (the interval
    equivalence is judged on), `verdict`, `reason` (why not tested, or why it cannot be
    equivalent; and `pairing`: which runs had no partner of the same seed), `seeds_to_decide`
    (inconclusive only), `margin`.
    """
    from medft.report import stats

    e = report.evidence
    e.verdicts.to_csv(stem.with_suffix(".csv"), index=False)
    margin = e.verdicts["margin"].iloc[0] if "margin" in e.verdicts else stats.EQUIVALENCE_MARGIN
    write_table(
        stem,
        f"{e.dataset}: each strategy against FT",
        f"Differences of the main metric ({METRIC_LABELS[e.main_metric]}) from FT in "
        "percentage points, seed-paired at each side's chosen lr, over the seeds both have "
        "(`seeds`: a missing run drops its pair only). One test per comparison counts each "
        "uncertainty once: the seeds' spread of the pair's differences (its own, on its n − 1 "
        "degrees of freedom, whatever the other strategies' spreads) and "
        + (
            "the part of the evaluation split's sampling the seeds share (patient bootstrap, "
            f"B = {stats.N_BOOT}, on the patients' degrees of freedom; each part at its own t "
            "quantile)"
            if e.has_predictions
            else "nothing of the evaluation split's sampling (no saved predictions: better / "
            "worse are about this evaluation split, and nothing is called equivalent)"
        )
        + "; its 95 % interval and p, Holm-corrected within the model (docs/protocol.md, "
        "Statistics; the rule's error rate is simulated in bench/results_stats.md). Verdict: "
        "better / worse when the corrected p < 0.05; otherwise equivalent when the "
        "equivalence interval (Bonferroni-adjusted over the family, two one-sided tests) lies "
        f"within ±{margin:g} pp (equivalence_margin); otherwise inconclusive, with the seeds "
        "that would decide it if the observed difference and spread held. Inconclusive is "
        "not equivalent. Not tested, with the reason, where the data cannot carry a test "
        "(fewer than two seed pairs; zero spread, which is not certainty)."
        + _unresolved_margin(e.verdicts, margin)
        + report.selection_caveat
        + report.caption_tail,
        verdict_table.statistics_table(e.verdicts),
    )


def _unresolved_margin(verdicts, margin: float) -> str:
    points = verdicts["resolution"].max() if "resolution" in verdicts else float("nan")
    if not points > margin:
        return ""
    return (
        f" One image of this evaluation split moves the main metric by up to {points:.1f} "
        f"points, more than the ±{margin:g}-point margin: no comparison can be shown "
        "equivalent on it, whatever its bootstrap says (a larger evaluation split can)."
    )


@artefact("relative_improvement", ("png", "pdf", "csv"))
def _relative_improvement(report: DatasetReport, stem: Path) -> None:
    """Figures 6–11: (strategy / FT − 1) · 100 of the main metric per model; error bars are the
    standard error over seeds of the same ratio taken seed by seed; ▲ / ▼ the verdicts.
    """
    from medft.report import figures

    e = report.evidence
    improvement = e.improvement()
    improvement.to_csv(stem.with_suffix(".csv"), index=False)
    figure = figures.relative_improvement(
        improvement, f"{e.dataset}: relative {METRIC_LABELS[e.main_metric]} over FT", e.verdicts
    )
    figures.save(figure, stem.with_suffix(".png"), stem.with_suffix(".pdf"))


@artefact(
    "lr_sensitivity",
    ("png",),
    available=lambda e: e.runs is not None and e.select_on is not None,
)
def _lr_sensitivity(report: DatasetReport, stem: Path) -> None:
    """The main metric at each lr, on the selection split (which picks the lr) and on the
    evaluation split, mean ± SE over seeds.
    """
    from medft.report import figures

    e = report.evidence
    figure = figures.lr_sensitivity(e.runs, e.main_metric, e.select_on)
    figures.save(figure, stem.with_suffix(".png"))


@artefact("learning_curves", ("png",), available=lambda e: e.epochs is not None)
def _learning_curves(report: DatasetReport, stem: Path) -> None:
    """At each strategy's chosen lr, per epoch: training loss and selection-split loss, and the
    selection-split main metric; one colour per seed.
    """
    from medft.report import figures

    epochs, main = report.chosen_epochs(), report.evidence.main_metric
    split = "test" if f"test_{main}" in epochs and f"val_{main}" not in epochs else "val"
    figures.save(figures.learning_curves(epochs, main, split), stem.with_suffix(".png"))


@artefact("per_class", ("png", "csv"), available=lambda e: e.has_predictions)
def _per_class(report: DatasetReport, stem: Path) -> None:
    """Recall and F1 per class on the evaluation split (multi-label: per label at 0.5), mean over
    seeds.
    """
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
    """Auto-RGN's per-block learning rate per epoch, from the `lr_<block>` columns of its
    `epochs.csv`.
    """
    from medft.report import figures

    epochs = report.chosen_epochs()
    adaptive = epochs[epochs["strategy"].map(adapts_block_lrs)]
    figures.save(figures.block_learning_rates(adaptive), stem.with_suffix(".png"))


@artefact("calibration", ("md", "csv", "png"), available=lambda e: e.has_predictions)
def _calibration(report: DatasetReport, stem: Path) -> None:
    """Is a 0.9 right 90 % of the time? Per model and strategy at its chosen lr, mean over seeds,
    on the evaluation split: expected calibration error with 15 equal-width bins (`ece`, by
    torchmetrics) and 15 equal-mass bins (`adaptive_ece`), Brier score and negative
    log-likelihood, each before and after temperature scaling (Guo et al. 2017; one temperature
    per run — per label for multi-label tasks, each label scored as a binary problem — fitted by
    NLL on the validation split; `temperature` > 1: the model was over-confident), and a
    reliability diagram per strategy (seeds pooled, before scaling).
    `src/medft/report/calibration.py`; checked against a hand computation and on a model made
    over-confident on purpose (`tests/test_calibration.py`). Costs only the stored predictions.
    """
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
    """What went in (the dataset as prepared for the grid's first model): source and the options
    set, task and classes, preprocessing, images per split and class (multi-label: positives per
    label), groups (patients) per split, the most common sizes and modes before preprocessing,
    and the duplicates check (`duplicates` policy, evaluation images equal to an earlier
    split's, repeats within a split, each image dropped). Written by the workflow; `medft
    report` on a results table has no prepared data and skips it.
    """
    from medft.data.card import data_card, write

    write(data_card(report.evidence.data_folder), stem)


NOT_RECORDED = "not recorded (runs from before medft recorded it)"


@artefact("model_card", ("md", "csv", "html"), available=lambda e: e.runs is not None)
def _model_card(report: DatasetReport, stem: Path) -> None:
    """Per model: where its weights came from (hub id, folder or weights option), its source
    library, the weights' licence (foundation backbones; check a timm or torchvision model's
    card yourself), and the preprocessing its weights expect — input size, mean and std, from
    the model's own config — as its runs recorded it in `metrics.json`; a model none of whose
    runs recorded it (results of an older medft) says so, rather than the workflow failing.
    """
    runs = report.evidence.runs
    columns = ["model", "weights_from", "source", "licence", "preprocessing"]
    card = runs.reindex(columns=columns).fillna("")
    recorded = card["preprocessing"] != ""
    card = pd.concat([card[recorded], card[~recorded]]).drop_duplicates("model")
    card.loc[card["preprocessing"] == "", "preprocessing"] = NOT_RECORDED
    card.to_csv(stem.with_suffix(".csv"), index=False)
    write_table(
        stem,
        f"{report.evidence.dataset}: models",
        "Each model's weights, their licence, and the normalisation and input size the "
        "weights were trained with (the model's own config: image processor, open_clip "
        "preprocess_cfg, timm pretrained_cfg). The images are normalised so; their size is "
        "the grid's (`image_size:`, else this one).",
        card,
    )


@artefact(
    "missing_cells",
    ("md", "csv", "html"),
    expected=lambda config: False,
    available=lambda e: e.missing is not None and not e.missing.empty,
)
def _missing_cells(report: DatasetReport, stem: Path) -> None:
    """`medft report RESULTS_DIR` only, where cells have no results: each missing cell (model,
    strategy, lr, seed), its state (failed, running, stalled, not started; `medft status`) and
    its log's last error. The workflow's own report needs every cell and never writes it.
    """
    e = report.evidence
    e.missing.to_csv(stem.with_suffix(".csv"), index=False)
    shown = e.missing[["model", "strategy", "lr", "seed", "state", "epoch", "message"]]
    write_table(
        stem,
        f"{e.dataset}: cells without results",
        f"{len(shown)} cell(s) of the grid have no metrics.json: their runs are absent from "
        "every table and figure of this dataset (nothing imputed); the statistics pair the "
        "seeds present. `epoch`: epochs logged; `message`: the log's last error.",
        shown,
    )
