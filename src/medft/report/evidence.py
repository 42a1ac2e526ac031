"""What a report is built from: one dataset's results (``Evidence``). Per-seed runs give
everything; published means (no seeds, no predictions) give the tables, Table 11 and Table 12
without verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from medft.report import tables

BY_BOOTSTRAP = "the evaluation split's sampling by patient bootstrap"
BY_T_INTERVAL = "the seeds only: there are no predictions to bootstrap"
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
    select_on: str | None = "val"  # None: no selection split, each cell at one lr
    runs: pd.DataFrame | None = None
    chosen: pd.DataFrame | None = None
    epochs: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None
    improvement_frame: pd.DataFrame | None = None
    # evaluation-split predictions by run_dir, read once for the bootstrap and per-class metrics
    predictions: dict[str, pd.DataFrame] | None = None
    # the prepared dataset (meta.json, manifest.parquet) for its data card, where there is one
    data_folder: str | None = None
    # the grid's cells without results (``medft.report.results_folder``), where it is known
    missing: pd.DataFrame | None = None

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
        select_on: str | None = "val",
        epochs: pd.DataFrame | None = None,
        n_boot: int | None = None,
        margin: float | None = None,
    ) -> Evidence:
        """``n_boot``: the bootstrap's resamples (default ``stats.N_BOOT``); ``margin``: the
        equivalence margin in points (default ``stats.EQUIVALENCE_MARGIN``)."""
        from medft.report import stats

        chosen = tables.select_lr(runs, select_on)
        summary = tables.summarise_chosen(chosen)
        paired = stats.paired_tests(chosen)
        boot = predictions = None
        if "run_dir" in chosen and "task" in chosen:
            tasks = dict(zip(chosen["dataset"], chosen["task"], strict=True))
            predictions = {r: stats.test_predictions(r) for r in chosen["run_dir"]}
            boot = stats.bootstrap_intervals(
                chosen, tasks, n_boot=n_boot or stats.N_BOOT, predictions=predictions
            )
        verdicts = stats.verdicts(
            paired,
            boot,
            stats.EQUIVALENCE_MARGIN if margin is None else margin,
            chosen_on_evaluation=stats.chosen_on_evaluation(select_on, chosen),
        )
        return cls(summary, select_on, runs, chosen, epochs, verdicts, predictions=predictions)

    @property
    def chosen_on_evaluation(self) -> str:
        """What of the tested runs the evaluation split chose (``stats.chosen_on_evaluation``)."""
        from medft.report import stats

        return stats.chosen_on_evaluation(self.select_on, self.chosen)

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


def per_class_metrics(evidence: Evidence) -> pd.DataFrame:
    """Per model, strategy and class: recall and F1 on the evaluation split at the chosen lr,
    mean over seeds (multi-label: per label at 0.5)."""
    from sklearn.metrics import precision_recall_fscore_support

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


@dataclass
class DatasetReport:
    """One dataset's evidence and what its captions say of it."""

    evidence: Evidence
    metrics: list[str] | None = None
    protocol: str = ""

    @property
    def caption_tail(self) -> str:
        return f" {self.protocol}" if self.protocol else ""

    @property
    def diverged(self) -> str:
        return DIVERGED_NOTE if self.evidence.summary["n_diverged"].fillna(0).any() else ""

    @property
    def preprocessing(self) -> str:
        """A caption line: each model's normalisation and the input size its weights were
        trained at (recorded by every run; the images are the grid's size)."""
        runs = self.evidence.runs
        if runs is None or "preprocessing" not in runs or not runs["preprocessing"].any():
            return ""
        first = runs[runs["preprocessing"] != ""].groupby("model", sort=False).first()
        text = "; ".join(f"{model} {row.preprocessing}" for model, row in first.iterrows())
        return f" Normalisation and training size of each model's weights: {text}."

    @property
    def trainable(self) -> str:
        """A caption line: each strategy's share of trainable parameters where it trains fewer
        than all of them (mean over its runs at the chosen lr, as each run recorded it)."""
        chosen = self.evidence.chosen
        if (
            chosen is None
            or "trainable_share" not in chosen
            or chosen["trainable_share"].isna().all()
        ):
            return ""
        shares = chosen.groupby(["strategy", "model"], sort=False)["trainable_share"].mean()
        partial = shares[shares < 1].dropna()
        if partial.empty:
            return ""
        text = ", ".join(f"{s} {v:.2%} ({m})" for (s, m), v in partial.items())
        return f" Trainable share of the model's parameters: {text}."

    @property
    def selection_caveat(self) -> str:
        """A caption line where the evaluation split chose the lr or kept the epochs of the
        runs shown."""
        chosen = self.evidence.chosen_on_evaluation
        if not chosen or self.evidence.verdicts is None:
            return ""
        return (
            f" Caution: {chosen} {'were' if ' and ' in chosen else 'was'} chosen on this "
            "evaluation split, which flatters every strategy's score there, some more than "
            "others; so no comparison with FT is tested: verdicts need the choices made on a "
            "validation split (docs/protocol.md, Statistics)."
        )

    @property
    def selection(self) -> str:
        if self.evidence.select_on == "published":
            return "as published"
        if self.evidence.select_on is None:
            return "at each strategy's one lr"
        return f"at the lr chosen on the {self.evidence.select_on} split"

    def chosen_epochs(self) -> pd.DataFrame:
        e = self.evidence
        return e.epochs.merge(e.chosen[["model", "strategy", "lr", "seed"]].drop_duplicates())


@dataclass
class SummaryReport:
    """Every dataset's evidence, combined once for the summary's artefacts."""

    evidence: list[Evidence]
    blocks: str = "dataset"  # what the across-dataset tests count as a block (across.BLOCKS)

    @cached_property
    def summary(self) -> pd.DataFrame:
        return pd.concat([e.summary for e in self.evidence], ignore_index=True)

    @cached_property
    def verdicts(self) -> pd.DataFrame | None:
        """The datasets' verdicts, of those where any comparison was tested: a dataset whose
        runs the evaluation split chose has none, and must not count as "0 better"."""
        from medft.report.verdicts import UNTESTED

        found = [
            e.verdicts
            for e in self.evidence
            if e.verdicts is not None and e.verdicts["verdict"].ne(UNTESTED).any()
        ]
        return pd.concat(found, ignore_index=True) if found else None

    @cached_property
    def improvement(self) -> pd.DataFrame:
        return pd.concat([e.improvement() for e in self.evidence], ignore_index=True)

    @cached_property
    def withheld(self) -> str:
        """Why the tests across datasets are not run, or "": where the evaluation split chose
        any dataset's runs, their means are flattered as its comparisons are, and none of them
        was tested (docs/protocol.md, "Selection on the evaluation split")."""
        from medft.report.verdicts import CHOSEN_ON_EVALUATION

        chosen = {
            str(value)
            for e in self.evidence
            if e.verdicts is not None and "chosen_on_evaluation" in e.verdicts
            for value in e.verdicts["chosen_on_evaluation"].dropna()
            if value
        }
        reason = CHOSEN_ON_EVALUATION.format(chosen=" and ".join(sorted(chosen)))
        return f"no test: {reason}" if chosen else ""

    @property
    def margin(self) -> float:
        """The equivalence margin the datasets' statistics used (the default without)."""
        from medft.report.stats import EQUIVALENCE_MARGIN

        # Every dataset's statistics hold the margin, tested or not.
        margins = [
            e.verdicts["margin"].dropna()
            for e in self.evidence
            if e.verdicts is not None and "margin" in e.verdicts
        ]
        found = pd.concat(margins) if margins else pd.Series(dtype=float)
        return float(found.iloc[0]) if len(found) else EQUIVALENCE_MARGIN
