"""How much early stopping on the evaluation split flatters each strategy, measured on BreastMNIST.

Run after both grids of ``bench/early_stop/breastmnist.yaml`` (its header says how):
``python bench/early_stop_flattery.py``; writes ``bench/results_early_stop.md``.
docs/protocol.md ("Statistics") and ``bench/stats_early_stop.py`` (its calibration) quote it.

The two grids train the same runs — a seed fixes initialisation and data order, and training on
the CPU is deterministic, which the script checks on the epochs both logged — and differ only
in the split early stopping watches, so per run the kept epoch's evaluation score stopped on the
evaluation split minus stopped on the validation split is what watching the evaluation split
added. Per strategy its mean over seeds, and paired by seed its difference from FT's: the bias
the paper preset puts into a verdict against FT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from medft.report.collect import collect_epochs, collect_runs
from medft.report.evidence import Evidence

ROOT = Path(__file__).resolve().parents[1]
GRIDS = {split: ROOT / "results" / "bench-early-stop" / split for split in ("val", "test")}
OUT = ROOT / "bench" / "results_early_stop.md"
METRICS = ("auroc", "accuracy")  # the main metric, then the simulation's


def runs(split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    files = sorted(GRIDS[split].glob("breastmnist/*/*/lr*/seed*/metrics.json"))
    if not files:
        raise SystemExit(f"no runs under {GRIDS[split]}: run the grids first (module docstring)")
    return collect_runs(files), collect_epochs(files)


def verdicts(split: str) -> pd.DataFrame:
    """The report's test on the grid's runs: each strategy's difference from FT and its
    verdict. The report tests nothing where the evaluation split kept the epochs; what its test
    would say there is the flattery measured, so those runs enter as if stopped on
    validation."""
    chosen, _ = runs(split)
    evidence = Evidence.from_runs(chosen.assign(early_stop_on="val"), "val")
    table = evidence.verdicts
    return table.set_index("strategy")[["diff_mean", "low", "high", "p_holm", "verdict"]]


def same_training(val_epochs: pd.DataFrame, test_epochs: pd.DataFrame) -> float:
    """The largest difference of training loss on the epochs both grids logged."""
    keys = ["strategy", "seed", "epoch"]
    both = val_epochs.merge(test_epochs, on=keys, suffixes=("_v", "_t"))
    return float((both["train_loss_v"] - both["train_loss_t"]).abs().max())


def verdict_cell(row: pd.Series) -> str:
    return (
        f"{row['diff_mean']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}], "
        f"p {row['p_holm']:.3f}, *{row['verdict']}*"
    )


def interval(values: np.ndarray) -> str:
    n = len(values)
    half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return f"{values.mean():+.2f} [{values.mean() - half:+.2f}, {values.mean() + half:+.2f}]"


def main() -> None:
    (val_runs, val_epochs), (test_runs, test_epochs) = runs("val"), runs("test")
    keys = ["strategy", "seed"]
    both = val_runs.merge(test_runs, on=keys, suffixes=("_v", "_t"))
    strategies = list(dict.fromkeys(val_runs["strategy"]))
    lines = []
    for metric in METRICS:
        gain = (both[f"test_{metric}_t"] - both[f"test_{metric}_v"]) * 100
        by_run = both[keys].assign(gain=gain).pivot(index="seed", columns="strategy", values="gain")
        for strategy in strategies:
            own = by_run[strategy].to_numpy()
            against_ft = own - by_run["FT"].to_numpy()
            lines.append(
                f"| {metric} | {strategy} | {interval(own)} | "
                + ("—" if strategy == "FT" else interval(against_ft))
                + " |"
            )
    epochs = test_epochs[test_epochs["epoch"] >= 3].sort_values([*keys, "epoch"])
    steps = epochs.groupby(keys)["test_accuracy"].diff() * 100
    churn = (steps.groupby(epochs["strategy"]).std() / np.sqrt(2)).reindex(strategies)
    kept = both.groupby("strategy")[["best_epoch_v", "best_epoch_t"]].mean().reindex(strategies)
    images = int(round(1 / np.diff(np.unique(test_epochs["test_accuracy"])).min()))
    seeds = both["seed"].nunique()
    drift = same_training(val_epochs, test_epochs)
    OUT.write_text(
        "\n".join(
            [
                "# Early stopping on the evaluation split, measured on BreastMNIST",
                "",
                "`snakemake` on `bench/early_stop/breastmnist.yaml` alone and with "
                "`breastmnist-test.yaml`, then `python bench/early_stop_flattery.py`: "
                f"efficientnet_lite0 (offline ImageNet weights), 64 px, lr 1e-3, {seeds} seeds, "
                "≤ 30 epochs, patience 5, stopped on the validation split (78 images) and on the "
                f"evaluation split (about {images} images); the same runs, training loss equal "
                f"on every epoch both logged (largest difference {drift:.1e}).",
                "",
                "What stopping on the evaluation split added to each run's evaluation score "
                "(pp; mean over seeds, 95 % t-interval), and to its difference from FT's "
                "(paired by seed):",
                "",
                "| metric | strategy | added to the strategy's score | added to its difference "
                "from FT |",
                "|---|---|---|---|",
                *lines,
                "",
                "The report's test on each grid's runs: each strategy's AUROC minus FT's (pp), "
                "its 95 % interval, Holm p and verdict (the report itself tests nothing on "
                "the runs stopped on the evaluation split, docs/protocol.md):",
                "",
                "| strategy | stopped on validation | stopped on the evaluation split |",
                "|---|---|---|",
                *(
                    f"| {s} | "
                    + " | ".join(verdict_cell(verdicts(split).loc[s]) for split in GRIDS)
                    + " |"
                    for s in verdicts("val").index
                ),
                "",
                "How much each strategy's evaluation accuracy moves from one epoch to the next "
                "(standard deviation of the step / √2, pp, epochs ≥ 3 of the runs stopped on the "
                "evaluation split; what `bench/stats_early_stop.py` calibrates its churn on), "
                "and the mean epoch kept:",
                "",
                "| strategy | epoch-to-epoch sd | kept epoch, stopped on validation | "
                "on the evaluation split |",
                "|---|---|---|---|",
                *(
                    f"| {s} | {churn[s]:.2f} | {kept.loc[s, 'best_epoch_v']:.1f} | "
                    f"{kept.loc[s, 'best_epoch_t']:.1f} |"
                    for s in strategies
                ),
                "",
            ]
        )
    )
    print(OUT.read_text())


if __name__ == "__main__":
    main()
