"""Every table and figure of a report, written to files: per dataset (``dataset_artefacts``)
and across datasets (``summary_artefacts``). The workflow's report rules and ``medft report``
both call these.

What a report is built from (``Evidence``): per-seed runs give everything; published means
(no seeds, no predictions) give the tables, Table 11 and Table 12 without verdicts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from medft.report import figures, stats, tables
from medft.report.tables import METRIC_LABELS
from medft.strategies import REFERENCE

log = logging.getLogger(__name__)

PAPER_TABLE_CAPTION = (
    "{dataset}: {metrics} on the evaluation split in percent, mean (standard error) over "
    "{seeds}, {selection}. The top score of each metric and "
    "architecture is in bold, the top score of each metric across architectures underlined. "
    "{arrows}{protocol}"
)
ARROWS = (
    "↑ / ↓ after the main metric: significantly better / worse than FT on the same "
    "architecture (paired by seed, Holm-corrected, confirmed by {confirmation}). "
)
BY_BOOTSTRAP = "the patient bootstrap"
BY_T_INTERVAL = "the t-interval: there are no predictions to bootstrap"
DIVERGED_NOTE = (
    " †: at least one seed diverged; its metrics are from its best epoch before divergence "
    "(`diverged` in its metrics.json)."
)


@dataclass
class Evidence:
    """One dataset's results. ``runs``: every run (all lrs, per seed), or None for published
    means; ``summary``: the summary frame; ``chosen``: the runs at the chosen lr; ``epochs``:
    per-epoch logs where there are any; ``verdicts``: the statistics, where seeds allow."""

    summary: pd.DataFrame
    select_on: str = "val"
    runs: pd.DataFrame | None = None
    chosen: pd.DataFrame | None = None
    epochs: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None
    improvement_frame: pd.DataFrame | None = None
    # evaluation-split predictions by run_dir, read once for the bootstrap and per-class metrics
    predictions: dict[str, pd.DataFrame] | None = None

    @classmethod
    def load(cls, folder: str | Path) -> Evidence:
        """What ``dataset_artefacts`` wrote into ``folder``, for the summary across datasets."""
        folder = Path(folder)
        statistics = folder / "statistics.csv"
        return cls(
            summary=pd.read_csv(folder / "table.csv"),
            verdicts=pd.read_csv(statistics, keep_default_na=False, na_values=[""])
            if statistics.exists()
            else None,
            improvement_frame=pd.read_csv(folder / "relative_improvement.csv"),
        )

    @classmethod
    def from_runs(
        cls,
        runs: pd.DataFrame,
        select_on: str = "val",
        epochs: pd.DataFrame | None = None,
        n_boot: int = stats.N_BOOT,
    ) -> Evidence:
        chosen = tables.select_lr(runs, select_on)
        summary = tables.summarise_chosen(chosen)
        paired = stats.paired_tests(chosen)
        boot = predictions = None
        if "run_dir" in chosen and "task" in chosen:
            tasks = dict(zip(chosen["dataset"], chosen["task"], strict=True))
            predictions = {r: stats.test_predictions(r) for r in chosen["run_dir"]}
            boot = stats.bootstrap_intervals(chosen, tasks, n_boot=n_boot, predictions=predictions)
        return cls(
            summary,
            select_on,
            runs,
            chosen,
            epochs,
            stats.verdicts(paired, boot),
            predictions=predictions,
        )

    @property
    def dataset(self) -> str:
        return str(self.summary["dataset"].iloc[0])

    @property
    def main_metric(self) -> str:
        return str(self.summary["main_metric"].iloc[0])

    @property
    def has_predictions(self) -> bool:
        return self.predictions is not None

    @property
    def confirmation(self) -> str:
        return BY_BOOTSTRAP if self.has_predictions else BY_T_INTERVAL

    def improvement(self) -> pd.DataFrame:
        if self.improvement_frame is not None:
            return self.improvement_frame
        return tables.relative_improvement(self.summary, self.chosen)

    def seeds_text(self) -> str:
        n = self.summary["n_seeds"].max()
        return "the published runs" if pd.isna(n) else f"{int(n)} seed(s)"


def write_markdown(path: Path, title: str, caption: str, frame: pd.DataFrame) -> None:
    path.write_text(f"# {title}\n\n{caption}\n\n{frame.to_markdown(index=False)}\n")


HTML_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body {{ font-family: sans-serif; margin: 1em; }} p {{ max-width: 60em; color: #333; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
</style></head><body><h3>{title}</h3><p>{caption}</p>{table}</body></html>
"""


def write_html(path: Path, title: str, caption: str, frame: pd.DataFrame, index=False) -> None:
    """A standalone page (the Snakemake report embeds it); ``frame``'s cells may hold HTML.
    Markdown bold (``**``) becomes ``<b>``."""
    import html
    import re

    table = frame.to_html(index=index, border=0, escape=False, na_rep=tables.NO_VALUE)
    table = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", table)
    path.write_text(
        HTML_PAGE.format(title=html.escape(title), caption=html.escape(caption), table=table)
    )


def write_table(stem: Path, title: str, caption: str, frame: pd.DataFrame) -> list[Path]:
    """``stem``.md and ``stem``.html; returns both paths."""
    paths = [stem.with_suffix(".md"), stem.with_suffix(".html")]
    write_markdown(paths[0], title, caption, frame)
    write_html(paths[1], title, caption, frame)
    return paths


# Characters of captions and cells that LaTeX (pdflatex) cannot set as they are.
LATEX_SYMBOLS = {
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "▲": r"$\blacktriangle$",
    "▼": r"$\blacktriangledown$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "κ": r"$\kappa$",
    "×": r"$\times$",
    "±": r"$\pm$",
    "≥": r"$\geq$",
    "–": "--",
    "†": r"\dag{}",
}


def latex_escape(text: str) -> str:
    for char in "\\&%$#_{}":
        text = text.replace(char, "\\" + char)
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def to_latex(frame: pd.DataFrame, caption: str, label: str, index: bool = True) -> str:
    """A booktabs table (``\\toprule``, ``\\midrule``, ``\\bottomrule``) via pandas' Styler;
    the cells already hold their LaTeX markup."""
    styler = frame.style
    if not index:
        styler = styler.hide(axis="index")
    styler = styler.format_index(escape="latex", axis=1)
    if index:
        styler = styler.format_index(escape="latex", axis=0)
    return styler.to_latex(
        hrules=True,
        multicol_align="c",
        caption=latex_escape(caption),
        label=label,
        position_float="centering",
    )


def _interval(low: float, high: float) -> str:
    return tables.NO_VALUE if pd.isna(low) else f"[{low:.2f}, {high:.2f}]"


def _p(value: float) -> str:
    return tables.NO_VALUE if pd.isna(value) else f"{value:.4f}"


def statistics_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per model × strategy, for reading: the verdict first, then what it rests on."""
    return pd.DataFrame(
        {
            "model": verdicts["model"],
            "strategy": verdicts["strategy"],
            "verdict": verdicts["verdict"],
            "difference (pp)": verdicts["diff_mean"].map("{:+.2f}".format),
            "95 % t-interval": [
                _interval(lo, hi)
                for lo, hi in zip(verdicts["diff_low"], verdicts["diff_high"], strict=True)
            ],
            "p": verdicts["p_value"].map(_p),
            "p (Holm)": verdicts["p_holm"].map(_p),
            "95 % bootstrap": [
                _interval(lo, hi)
                for lo, hi in zip(verdicts["boot_low"], verdicts["boot_high"], strict=True)
            ],
            "seeds": verdicts["n_pairs"],
        }
    )


def per_class_metrics(evidence: Evidence) -> pd.DataFrame:
    """Per model, strategy and class: recall and F1 on the evaluation split at the chosen lr,
    mean over seeds (multi-label: per label at 0.5)."""
    rows = []
    for _, run in evidence.chosen.iterrows():
        frame = evidence.predictions[run["run_dir"]]
        probs = frame.filter(like="prob_")
        classes = [c.removeprefix("prob_") for c in probs.columns]
        if "target" in frame:
            truth, pred = frame["target"].to_numpy(), probs.to_numpy().argmax(axis=1)
        else:
            truth = frame.filter(like="target_").to_numpy()
            pred = (probs.to_numpy() >= 0.5).astype(int)
        labels = list(range(len(classes))) if "target" in frame else None
        _, recall, f1, support = precision_recall_fscore_support(
            truth, pred, labels=labels, average=None, zero_division=0
        )
        for name, r, f, n in zip(classes, recall, f1, support, strict=True):
            rows.append(
                {
                    "model": run["model"],
                    "strategy": run["strategy"],
                    "seed": run["seed"],
                    "class": name,
                    "support": n,
                    "recall": r,
                    "f1": f,
                }
            )
    frame = pd.DataFrame(rows)
    return (
        frame.groupby(["model", "strategy", "class"], sort=False)[["support", "recall", "f1"]]
        .mean()
        .reset_index()
    )


def dataset_artefacts(
    evidence: Evidence,
    out: str | Path,
    metrics: list[str] | None = None,
    protocol: str = "",
) -> list[Path]:
    """Write one dataset's tables and figures into ``out``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset, main = evidence.dataset, evidence.main_metric
    written: list[Path] = []

    def path(name: str) -> Path:
        written.append(out / name)
        return out / name

    protocol = f" {protocol}" if protocol else ""
    diverged = DIVERGED_NOTE if evidence.summary["n_diverged"].fillna(0).any() else ""
    verdicts = evidence.verdicts
    selection = (
        "as published"
        if evidence.select_on == "published"
        else f"at the lr chosen on the {evidence.select_on} split"
    )
    evidence.summary.to_csv(path("table.csv"), index=False)
    written += write_table(
        out / "table",
        dataset,
        f"All metrics on the evaluation split in percent, mean (standard error) over "
        f"{evidence.seeds_text()}, {selection} (main metric: {METRIC_LABELS[main]}). Bold: "
        "the best value of each metric within a model; "
        f"'vs {REFERENCE}': the verdict on the main metric (statistics.md).{diverged}{protocol}",
        tables.dataset_table(
            evidence.summary,
            verdicts,
            [m for m in tables.METRICS if evidence.summary[f"{m}_mean"].notna().any()],
        ),
    )

    reported = tables.report_metrics(evidence.summary, metrics)
    long = tables.paper_table(evidence.summary, reported, verdicts)
    long.to_csv(path("paper_table.csv"), index=False)
    caption = PAPER_TABLE_CAPTION.format(
        dataset=dataset,
        metrics=" and ".join(METRIC_LABELS[m] for m in reported),
        seeds=evidence.seeds_text(),
        selection=selection,
        arrows=ARROWS.format(confirmation=evidence.confirmation) if verdicts is not None else "",
        protocol=protocol.strip(),
    )
    markdown = tables.paper_table_wide(long, "md")
    markdown.columns = [f"{model} {metric}" for model, metric in markdown.columns]
    write_markdown(path("paper_table.md"), dataset, caption, markdown.reset_index())
    path("paper_table.tex").write_text(
        to_latex(tables.paper_table_wide(long, "latex"), caption, f"tab:{dataset}")
    )
    html = tables.paper_table_wide(long, "html")
    write_html(path("paper_table.html"), dataset, caption, html, index=True)

    improvement = evidence.improvement()
    improvement.to_csv(path("relative_improvement.csv"), index=False)
    figure = figures.relative_improvement(
        improvement, f"{dataset}: relative {METRIC_LABELS[main]} over FT", verdicts
    )
    figures.save(figure, path("relative_improvement.png"), path("relative_improvement.pdf"))

    if verdicts is not None:
        verdicts.to_csv(path("statistics.csv"), index=False)
        written += write_table(
            out / "statistics",
            f"{dataset}: each strategy against FT",
            f"Differences of the main metric ({METRIC_LABELS[main]}) from FT in percentage "
            "points, seed-paired at each side's chosen lr: mean, 95 % t-interval, paired "
            "t-test p, Holm-corrected within the model; "
            + (
                f"95 % patient-bootstrap interval on the evaluation split (B = {stats.N_BOOT})"
                if evidence.has_predictions
                else "no bootstrap (no saved predictions): the t-interval decides"
            )
            + ". Verdict: better / worse when the corrected p < 0.05 and the interval "
            "excludes 0 on that side; not tested with one seed.",
            statistics_table(verdicts),
        )
    if evidence.runs is not None and evidence.runs["lr"].nunique() > 0:
        figures.save(
            figures.lr_sensitivity(evidence.runs, main, evidence.select_on),
            path("lr_sensitivity.png"),
        )
    if evidence.epochs is not None:
        chosen_epochs = evidence.epochs.merge(
            evidence.chosen[["model", "strategy", "lr", "seed"]].drop_duplicates()
        )
        figures.save(
            figures.learning_curves(chosen_epochs, main, _stop_split(chosen_epochs, main)),
            path("learning_curves.png"),
        )
        adaptive = chosen_epochs[chosen_epochs["strategy"].map(_adapts_block_lrs)]
        if not adaptive.empty:
            figures.save(figures.block_learning_rates(adaptive), path("block_lrs.png"))
    if evidence.has_predictions:
        classes = per_class_metrics(evidence)
        classes.round(4).to_csv(path("per_class.csv"), index=False)
        figures.save(figures.per_class(classes), path("per_class.png"))
    return written


def _adapts_block_lrs(strategy: str) -> bool:
    from medft.strategies import STRATEGIES

    return strategy in STRATEGIES and STRATEGIES.get(strategy).adapts_block_lrs


def _stop_split(epochs: pd.DataFrame, main: str) -> str:
    return "test" if f"test_{main}" in epochs and f"val_{main}" not in epochs else "val"


def summary_artefacts(evidence: list[Evidence], out: str | Path) -> list[Path]:
    """Table 11, Table 12, the across-dataset tests and the heatmap, into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def path(name: str) -> Path:
        written.append(out / name)
        return out / name

    summary = pd.concat([e.summary for e in evidence], ignore_index=True)
    with_verdicts = [e.verdicts for e in evidence if e.verdicts is not None]
    verdicts = pd.concat(with_verdicts, ignore_index=True) if with_verdicts else None
    improvement = pd.concat([e.improvement() for e in evidence], ignore_index=True)

    best = tables.best_combination(summary, verdicts)
    best.to_csv(path("best_combination.csv"), index=False, float_format="%.2f")
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
    written += write_table(out / "best_combination", "Best combination per dataset", caption, shown)
    path("best_combination.tex").write_text(
        to_latex(shown.map(lambda v: latex_escape(str(v))), caption, "tab:best", index=False)
    )

    counts = tables.effectiveness(summary, verdicts)
    counts.to_csv(path("effectiveness.csv"), index=False)
    caption = (
        "Table 12: per strategy and model, the (dataset, model) cells whose main metric beats "
        f"{REFERENCE}'s by more than {tables.EFFECTIVE_OVER_FT} % (relative, the paper's rule); "
        "Effectiveness = their share of all comparisons"
        + (
            "; Better (verdict) counts only the cells judged significantly better than FT "
            "(paired by seed, Holm-corrected, patient bootstrap)."
            if verdicts is not None
            else "."
        )
    )
    shown = counts.astype(str)
    written += write_table(out / "effectiveness", "Effectiveness", caption, shown)
    path("effectiveness.tex").write_text(
        to_latex(shown.map(latex_escape), caption, "tab:effectiveness", index=False)
    )

    across = stats.across_datasets(improvement)
    across.round(4).to_csv(path("across_datasets.csv"), index=False)
    written += write_table(
        out / "across_datasets",
        "Across datasets",
        "Per model and strategy: the median relative improvement over FT across datasets and "
        "the Wilcoxon signed-rank test of it (Holm-corrected over strategies; tested only with "
        f"{stats.MIN_DATASETS_WILCOXON} datasets or more).",
        across.round(4),
    )
    figures.save(
        figures.improvement_heatmap(improvement, verdicts),
        path("heatmap.png"),
        path("heatmap.pdf"),
    )
    return written


def report_from_table(
    path: str | Path,
    out: str | Path,
    main_metrics: dict[str, str] | None = None,
    select_on: str = "val",
) -> list[Path]:
    """``medft report``: every artefact a results table allows (``medft.report.inputs``),
    per dataset under ``out/<dataset>/`` and across datasets under ``out/summary/``."""
    from medft.report import inputs

    frame = inputs.read_table(path)
    out = Path(out)
    evidence: list[tuple[Evidence, list[str] | None]] = []
    if inputs.schema_of(frame, path) == "published":
        summary, listed = inputs.published_summary(frame, path, main_metrics)
        for dataset, rows in summary.groupby("dataset", sort=False):
            evidence.append(
                (Evidence(rows.reset_index(drop=True), "published"), listed[dataset][:2])
            )
    else:
        runs = inputs.per_seed_runs(frame, path, main_metrics)
        for _, rows in runs.groupby("dataset", sort=False):
            evidence.append((Evidence.from_runs(rows.reset_index(drop=True), select_on), None))
    written = []
    for item, metrics in evidence:
        written += dataset_artefacts(item, out / _folder(item.dataset), metrics)
    written += summary_artefacts([item for item, _ in evidence], out / "summary")
    return written


def _folder(dataset: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in dataset)
