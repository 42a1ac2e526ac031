"""The post-hoc evaluations' artefacts (``medft.post_hoc``), each registered with
``@artefact`` (``medft.report.catalogue``); its docstring is its entry in docs/report.md."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medft.report.catalogue import artefact
from medft.report.evidence import DatasetReport
from medft.report.formats import write_markdown, write_table
from medft.report.post_hoc import tables
from medft.report.tables import METRIC_LABELS

ROBUSTNESS = ("robustness", "robustness.parquet")
ROBUSTNESS_SCORES = ("robustness", "robustness_scores.parquet")
WISE = ("wise", "curve.parquet")


def _enabled(name: str):
    return lambda config: name in config.get("post_hoc", [])


def _read(report: DatasetReport, where: tuple[str, str]) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(path) for path in tables(report.evidence.runs, *where))


def _margin(report: DatasetReport) -> float:
    from medft.report import stats

    verdicts = report.evidence.verdicts
    if verdicts is not None and "margin" in verdicts:
        return float(verdicts["margin"].iloc[0])
    return stats.EQUIVALENCE_MARGIN


@artefact(
    "robustness",
    ("md", "csv", "html", "png"),
    expected=_enabled("robustness"),
    available=lambda e: bool(tables(e.runs, *ROBUSTNESS)),
)
def _robustness(report: DatasetReport, stem: Path) -> None:
    """With `post_hoc: [robustness]`: every strategy's checkpoints at its chosen lr, every
    seed, evaluated on corrupted copies of the evaluation split — Gaussian noise, Gaussian
    blur, lowered contrast and JPEG compression at severities 1–5 (`medft/post_hoc/corruptions.py`;
    the noise drawn by the run's seed, so every strategy sees the same images), or the
    severities `robustness_severities` keeps, on all of the split or the `robustness_images`
    evenly spaced images of it (the clean score on the same images). Per model and strategy:
    the main metric clean and averaged over the corrupted copies (percent, mean over seeds),
    its relative drop (%) overall and per corruption, and the verdict against FT on the
    corrupted mean by the statistics' test — the seeds' spread and the patient bootstrap of
    those images, each counted once, Holm within the model (from each pass's per-image scores,
    `robustness_scores.parquet`; a table written before they were kept is tested on the seeds
    only, and its caption says so), and the seed pairs it stands on — sorted by the drop;
    the figure plots the main metric
    against severity per corruption. Trains nothing: 1 + 4 × severities passes over those
    images per checkpoint (21 with all five).
    """
    from medft.report import figures, post_hoc, post_hoc_figures

    e = report.evidence
    frame = _read(report, ROBUSTNESS)
    # Every model's table needs its scores for the bootstrap; tables from before have none.
    resampleable = len(tables(e.runs, *ROBUSTNESS_SCORES)) == len(tables(e.runs, *ROBUSTNESS))
    scores = _read(report, ROBUSTNESS_SCORES) if resampleable else None
    task = e.runs["task"].iloc[0]
    table = post_hoc.robustness(
        frame, _margin(report), scores, task, chosen_on_evaluation=e.chosen_on_evaluation
    )
    tested = (
        "seed-paired with the patient bootstrap of these images, each uncertainty counted once"
        if scores is not None
        else "seed-paired on the seeds only: this table has no per-image scores to resample"
    )
    table.round(3).to_csv(stem.with_suffix(".csv"), index=False)
    shown = table.round(2).astype(object).where(table.notna(), "–")
    severities = sorted(int(s) for s in frame["severity"].unique() if s > 0)
    # Tables written before robustness_images existed used the whole split.
    images = f"{int(frame['images'].max())} images of " if "images" in frame else ""
    write_table(
        stem,
        f"{e.dataset}: robustness to corrupted images",
        f"{METRIC_LABELS[e.main_metric]} on {images}the evaluation split clean and averaged "
        f"over four corruptions at severities {', '.join(map(str, severities))} of 1–5 "
        "(percent, mean over seeds, each strategy at its chosen lr), its relative drop (%), "
        "and the difference from FT on the corrupted images with "
        f"its 95 % interval, verdict ({tested}; Holm within the model) and seed pairs. "
        "Sorted by the drop: the most robust first." + report.selection_caveat,
        shown,
    )
    curves = post_hoc.severity_curves(frame)
    figures.save(post_hoc_figures.severity_curves(curves, e.main_metric), stem.with_suffix(".png"))


@artefact(
    "wise",
    ("md", "csv", "png"),
    expected=_enabled("wise"),
    available=lambda e: bool(tables(e.runs, *WISE)),
)
def _wise(report: DatasetReport, stem: Path) -> None:
    """With `post_hoc: [wise]`: WiSE-FT (Wortsman et al. 2022) from the grid's own ends — for
    each lr and seed, the LP solution (pretrained backbone, trained head) and the FT solution
    (and LP-FT's, which starts from it) interpolated weight by weight at α = 0, 0.1, …, 1, α
    chosen per seed on the selection split among 0.1–0.9 (the ends are rows of their own, and
    were selected on that split). The chosen points are the rows `WiSE(LP, FT)` and
    `WiSE(LP, LP-FT)` of the tables and statistics, with their verdicts against FT; this
    artefact is the curve at each row's chosen lr: the main metric against α on both splits,
    per seed and their mean (α = 0 reproduces LP's metrics and α = 1 the other end's exactly:
    `tests/test_post_hoc.py`). Trains nothing: 11 evaluations per (lr, seed).
    """
    from medft.report import figures, post_hoc_figures

    e = report.evidence
    curve = _read(report, WISE)
    chosen = e.chosen.drop_duplicates("strategy").set_index("strategy")["lr"]
    at_chosen = curve[
        [lr == chosen.get(row) for row, lr in zip(curve["row"], curve["lr"], strict=True)]
    ]
    mean = at_chosen.groupby(["row", "alpha", "split"], sort=False)["value"].mean().reset_index()
    mean.round(4).to_csv(stem.with_suffix(".csv"), index=False)
    wide = mean.pivot_table(index="alpha", columns=["row", "split"], values="value") * 100
    wide.columns = [f"{row} {split}" for row, split in wide.columns]
    write_markdown(
        stem.with_suffix(".md"),
        f"{e.dataset}: WiSE interpolation",
        f"{METRIC_LABELS[e.main_metric]} (percent, mean over seeds) along θ(α) = (1 − α)·θ_LP "
        "+ α·θ_end at each row's chosen lr; α = 0 is LP's solution, α = 1 the fine-tuned "
        "end's. Each seed's α is chosen on the selection split among 0.1–0.9: the ends are "
        "rows of their own, and their scores there are biased upwards (each was early-stopped "
        "and its lr chosen on that split; docs/beyond.md).",
        wide.round(2).reset_index(),
    )
    figures.save(post_hoc_figures.wise_curves(at_chosen, e.main_metric), stem.with_suffix(".png"))
