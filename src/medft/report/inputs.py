"""Results tables from outside the workflow, for ``medft report``.

Two documented schemas (CSV or Parquet), told apart by their columns:

* **per-seed rows** — ``dataset, model, strategy, lr, seed, split, metric, value``: one metric
  of one run on one split (``val`` or ``test``), as a fraction in [0, 1] like ``metrics.json``.
  Everything the statistics need except predictions, so verdicts rest on the paired t-test and
  its interval (no patient bootstrap). ``test`` rows alone do where each strategy has one lr
  (``selection_split``).
* **published means** — ``dataset, model, strategy, metric, mean, se``: a paper's table, in
  percent (``reference/paper_tables_3_10.csv`` is one). Tables, figures, Table 11
  and Table 12; no verdicts (there are no seeds to pair).

Metric names: ``medft.metrics.METRICS`` or the paper's labels (mAP, AUROC, Accuracy, Kappa,
F1-Score), any case; medft's strategy names too (``normalise_strategies``). The main metric
of a dataset: ``main_metrics`` if given, else the paper's (docs/protocol.md) for the paper's
dataset names, else the first metric listed for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from medft import csv_tables
from medft.errors import DataError
from medft.metrics import METRICS
from medft.report.evidence import Evidence
from medft.report.tables import KEYS, METRIC_LABELS
from medft.strategies import REFERENCE, STRATEGIES

PER_SEED = ["dataset", "model", "strategy", "lr", "seed", "split", "metric", "value"]
PUBLISHED = ["dataset", "model", "strategy", "metric", "mean", "se"]
SCHEMA_NAMES = {"per-seed": "per-seed rows", "published": "published means"}
# What to put in a column a table of one's own results usually lacks.
COLUMN_HINTS = {
    "lr": "each run's learning rate (one value throughout if there was one)",
    "split": "test for the evaluation split's scores (val for the split that chose the lr)",
    "seed": "the run's seed (runs of one seed of two strategies are a pair)",
    "se": "the standard error, in percent (blank where the table gives none)",
}
METRIC_NAMES = {
    **{m: m for m in METRICS},
    **{label.lower(): m for m, label in METRIC_LABELS.items()},
    "f1": "f1",
    "f1 score": "f1",
    "ap": "map",
    "auc": "auroc",
    "roc_auc": "auroc",
    "cohen_kappa": "kappa",
}
# docs/protocol.md, "Metrics": the main metric of each of the paper's datasets, by its name there.
PAPER_MAIN_METRICS = {
    "chexpert": "map",
    "mura-shoulder": "accuracy",
    "mura-wrist": "accuracy",
    "mura-humerus": "accuracy",
    "t1w-mri": "accuracy",
    "bach": "accuracy",
    "isic-2020": "auroc",
    "cholect50-instrument": "map",
}
log = logging.getLogger(__name__)


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} not found")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return csv_tables.read_csv(path)


def schema_of(frame: pd.DataFrame, path) -> str:
    columns = set(frame.columns)
    schemas = (("per-seed", PER_SEED), ("published", PUBLISHED))
    for name, needed in schemas:
        if set(needed) <= columns:
            return name
    # The schema the table is nearer to says what is missing: a table of one's own runs
    # often lacks lr and split, which have an obvious value to add.
    name, needed = min(schemas, key=lambda schema: len(set(schema[1]) - columns))
    missing = [c for c in needed if c not in columns]
    hints = "".join(f"; {c}: {COLUMN_HINTS[c]}" for c in missing if c in COLUMN_HINTS)
    other = next(n for n, _ in schemas if n != name)
    raise DataError(
        f"{path}: the nearest schema of `medft report`, {SCHEMA_NAMES[name]} "
        f"({', '.join(needed)}), needs column(s) {', '.join(missing)}{hints} — or give the "
        f"{SCHEMA_NAMES[other]} columns ({', '.join(dict(schemas)[other])}); the table has "
        f"{', '.join(map(str, frame.columns))}"
    )


def _row(index) -> int:
    return int(index) + 2  # the file's line: a header, then 1-based rows


def normalise_metrics(frame: pd.DataFrame, path) -> pd.Series:
    names = frame["metric"].astype(str).str.strip().str.lower().map(METRIC_NAMES)
    unknown = names[names.isna()]
    if len(unknown):
        i = unknown.index[0]
        raise DataError(
            f"{path}, line {_row(i)}: unknown metric {frame.loc[i, 'metric']!r}; use one of "
            f"{', '.join(METRICS)} or the paper's {', '.join(METRIC_LABELS.values())}"
        )
    return names


def _check_numbers(frame: pd.DataFrame, column: str, path, low: float, high: float, fix: str):
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna() | (values < low) | (values > high)
    if bad.any():
        i = bad[bad].index[0]
        raise DataError(
            f"{path}, line {_row(i)}: {column} {frame.loc[i, column]} is not a number in "
            f"[{low:g}, {high:g}]; {fix}"
        )
    return values


def _check_filled(frame: pd.DataFrame, columns: list[str], path) -> None:
    """Every key of a row given: a blank one would drop the row from the pivot unseen."""
    for column in columns:
        blank = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if blank.any():
            i = blank[blank].index[0]
            hint = COLUMN_HINTS.get(column, "every row needs one")
            raise DataError(f"{path}, line {_row(i)}: {column} is blank; {column}: {hint}")


def _check_unique(frame: pd.DataFrame, keys: list[str], path) -> None:
    repeated = frame[frame.duplicated(keys, keep=False)]
    if len(repeated):
        lines = [_row(i) for i in repeated.index[:2]]
        raise DataError(
            f"{path}, lines {lines[0]} and {lines[1]}: the same ({', '.join(keys)}) twice; keep one"
        )


def normalise_strategies(frame: pd.DataFrame) -> pd.Series:
    """medft's strategies in their registered spelling whatever their case or the spaces
    around them ("ft", "lp-ft " → FT, LP-FT), as metric names are; others as written (a
    strategy of one's own)."""
    names = frame["strategy"].astype(str).str.strip()
    return names.map(lambda name: STRATEGIES.canonical(name) if name in STRATEGIES else name)


def _check_reference(frame: pd.DataFrame, path) -> None:
    """Every (dataset, model) needs FT: improvements and verdicts are relative to it."""
    strategies = frame.groupby(["dataset", "model"], sort=False)["strategy"].agg(
        lambda s: list(dict.fromkeys(s))
    )
    for (dataset, model), names in strategies.items():
        if REFERENCE not in names:
            # FT under another spelling of the model is the likelier slip than FT missing.
            spelt = [
                m for (d, m), other in strategies.items() if d == dataset and REFERENCE in other
            ]
            elsewhere = (
                f"; the dataset's FT rows name the model {', '.join(map(repr, spelt))}"
                if spelt
                else ""
            )
            raise DataError(
                f"{path}: dataset {dataset!r}, model {model!r} has no FT rows (its strategies: "
                f"{', '.join(names)}){elsewhere}; FT is the reference every strategy is compared "
                "with: add its rows, or name the fully fine-tuned runs FT"
            )


def main_metrics_of(frame: pd.DataFrame, given: dict[str, str] | None) -> dict[str, str]:
    """Per dataset: ``given``, else the paper's, else the first metric listed."""
    given = {d: METRIC_NAMES.get(m.lower(), m) for d, m in (given or {}).items()}
    chosen = {}
    for dataset, rows in frame.groupby("dataset", sort=False):
        listed = list(dict.fromkeys(rows["metric"]))
        main = given.get(dataset) or PAPER_MAIN_METRICS.get(str(dataset).lower())
        if main is None:
            main = listed[0]
            log.info(
                "%s: main metric %s (the first listed; --main-metric sets another)", dataset, main
            )
        if main not in listed:
            raise DataError(
                f"dataset {dataset!r}: its main metric {main} is not in the table (it has "
                f"{', '.join(listed)}); give another with --main-metric {dataset}=METRIC"
            )
        chosen[dataset] = main
    return chosen


def published_summary(
    frame: pd.DataFrame, path, main_metrics: dict[str, str] | None = None
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The summary frame of published means, and each dataset's metrics in listed order."""
    _check_filled(frame, [*KEYS, "metric"], path)
    frame = frame.assign(
        metric=normalise_metrics(frame, path), strategy=normalise_strategies(frame)
    )
    fix = "give percentages, as papers print them"
    frame["mean"] = _check_numbers(frame, "mean", path, 0, 100, fix)
    frame["se"] = _check_numbers(frame, "se", path, 0, 100, fix)
    _check_unique(frame, [*KEYS, "metric"], path)
    _check_reference(frame, path)
    mains = main_metrics_of(frame, main_metrics)
    wide = frame.pivot_table(
        index=KEYS, columns="metric", values=["mean", "se"], sort=False, dropna=False
    )
    summary = wide.index.to_frame(index=False)
    summary.insert(3, "lr", np.nan)
    summary.insert(4, "main_metric", summary["dataset"].map(mains))
    summary.insert(4, "n_diverged", 0)
    summary.insert(4, "n_seeds", np.nan)
    for metric in METRICS:
        for stat in ("mean", "se"):
            column = (stat, metric)
            summary[f"{metric}_{stat}"] = wide[column].to_numpy() if column in wide else np.nan
    listed = {
        d: [mains[d], *(m for m in dict.fromkeys(rows["metric"]) if m != mains[d])]
        for d, rows in frame.groupby("dataset", sort=False)
    }
    return summary, listed


def per_seed_runs(
    frame: pd.DataFrame, path, main_metrics: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per run, like ``collect_runs``: ``{split}_{metric}`` columns, ``main_metric``."""
    _check_filled(frame, [c for c in PER_SEED if c != "value"], path)
    frame = frame.assign(
        metric=normalise_metrics(frame, path), strategy=normalise_strategies(frame)
    )
    frame["lr"] = _check_numbers(frame, "lr", path, 0, np.inf, f"lr: {COLUMN_HINTS['lr']}")
    frame["value"] = _check_numbers(
        frame,
        "value",
        path,
        0,
        1,
        "per-seed values are fractions, as metrics.json holds them: divide percentages by 100",
    )
    bad_split = ~frame["split"].isin(["val", "test"])
    if bad_split.any():
        i = bad_split[bad_split].index[0]
        raise DataError(
            f"{path}, line {_row(i)}: split {frame.loc[i, 'split']!r} must be val or test"
        )
    _check_unique(frame, [*KEYS, "lr", "seed", "split", "metric"], path)
    _check_reference(frame, path)
    mains = main_metrics_of(frame, main_metrics)
    frame["column"] = frame["split"] + "_" + frame["metric"]
    runs = frame.pivot_table(
        index=[*KEYS, "lr", "seed"], columns="column", values="value", sort=False
    ).reset_index()
    runs.columns.name = None
    runs.insert(5, "main_metric", runs["dataset"].map(mains))
    for dataset, main in mains.items():
        if f"test_{main}" not in runs:
            raise DataError(
                f"{path}: dataset {dataset!r} has no test {main}; the report compares strategies "
                "on the evaluation split (split: test)"
            )
    return runs


def selection_split(runs: pd.DataFrame, select_on: str, path) -> str | None:
    """The split that chooses each cell's lr for one dataset's ``runs``; None where the table
    gives no scores on it and every (model, strategy) has one lr, so there is nothing to
    choose (results of one's own runs often hold the evaluation split only)."""
    main = runs["main_metric"].iloc[0]
    column = f"{select_on}_{main}"
    if column in runs and runs[column].notna().any():
        return select_on
    lrs = runs.groupby(["model", "strategy"], sort=False)["lr"].nunique()
    if (lrs <= 1).all():
        return None
    model, strategy = lrs[lrs > 1].index[0]
    raise DataError(
        f"{path}: dataset {runs['dataset'].iloc[0]!r} has no {select_on} {main}, yet "
        f"{model} {strategy} has {lrs.max()} lrs to choose from; give its {select_on} rows "
        "(split: val, the scores the lr is chosen on), keep one lr per strategy, or choose on "
        "the evaluation split with --select-lr-on test (its verdicts then overstate differences)"
    )


def report_from_table(
    path: str | Path,
    out: str | Path,
    main_metrics: dict[str, str] | None = None,
    select_on: str = "val",
    margin: float | None = None,
    blocks: str = "dataset",
    early_stop_on: str = "val",
) -> list[Path]:
    """``medft report``: every artefact a results table allows (``medft.report.inputs``),
    per dataset under ``out/<dataset>/`` and across datasets under ``out/summary/`` (blocks:
    ``medft.report.across.BLOCKS``), and all of them on one page, ``out/report.html``.
    ``early_stop_on``: the split the table's runs early-stopped on (a table cannot say)."""
    from medft.report.artefacts import write_report

    frame = read_table(path)
    out = Path(out)
    evidence: list[tuple[Evidence, list[str] | None]] = []
    if schema_of(frame, path) == "published":
        summary, listed = published_summary(frame, path, main_metrics)
        for dataset, rows in summary.groupby("dataset", sort=False):
            evidence.append(
                (Evidence(rows.reset_index(drop=True), "published"), listed[dataset][:2])
            )
    else:
        runs = per_seed_runs(frame, path, main_metrics).assign(early_stop_on=early_stop_on)
        for _, rows in runs.groupby("dataset", sort=False):
            rows = rows.reset_index(drop=True)
            on = selection_split(rows, select_on, path)
            evidence.append((Evidence.from_runs(rows, on, margin=margin), None))
    items = [(item, metrics, "") for item, metrics in evidence]
    return write_report(items, out, blocks, f"medft report: {Path(path).name}")
