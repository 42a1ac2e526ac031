"""Answers from what the BreastMNIST grid saved: calibration, probes, WiSE interpolation and
robustness, with their verdicts against FT (issue: docs/beyond.md).

Run after the post-hoc jobs (bench/beyond/breastmnist.yaml says how); nothing here trains.
Writes ``bench/results_beyond.md`` and the results section of ``docs/beyond.md`` from the
report the workflow wrote for that config.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medft.report.verdict_table import verdict_text

ROOT = Path(__file__).resolve().parents[1]
REPORT = (
    ROOT / "results" / "bench-search" / "grid" / "report" / "beyond-breastmnist" / "breastmnist"
)
LOGS = ROOT / "results" / "bench-search" / "grid" / "logs" / "post_hoc" / "breastmnist"
OUT = ROOT / "bench" / "results_beyond.md"
DOCS = ROOT / "docs" / "beyond.md"
BEGIN, END = "<!-- results: bench/beyond_results.py -->", "<!-- end of results -->"


def markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".2f")


def main() -> None:
    statistics = pd.read_csv(REPORT / "statistics.csv")
    summary = pd.read_csv(REPORT / "table.csv")
    calibration = pd.read_csv(REPORT / "calibration.csv")
    robustness = pd.read_csv(REPORT / "robustness.csv")
    wise = pd.read_csv(REPORT / "wise.csv")
    main_metric = summary["main_metric"].iloc[0] if "main_metric" in summary else "auroc"
    mean = f"{main_metric}_mean"
    rows = summary[["strategy", "lr", mean, f"{main_metric}_se"]].rename(
        columns={mean: "test AUROC %", f"{main_metric}_se": "SE"}
    )
    rows = rows.merge(
        statistics[["strategy", "diff_mean", "low", "high", "verdict", "seeds_to_decide"]],
        on="strategy",
        how="left",
    ).rename(columns={"diff_mean": "vs FT (pp)"})
    rows["verdict"] = [
        "reference" if pd.isna(v) else verdict_text(v, n)
        for v, n in zip(rows["verdict"], rows.pop("seeds_to_decide"), strict=True)
    ]
    rows["lr"] = rows["lr"].map(lambda lr: "–" if lr == 0 else f"{lr:g}")
    ece = calibration[
        ["strategy", "ece_before", "ece_after", "temperature", "brier_before", "brier_after"]
    ]
    curve = wise.pivot_table(index="alpha", columns=["row", "split"], values="value") * 100
    curve.columns = [f"{row} {split}" for row, split in curve.columns]
    shown_robustness = robustness.drop(columns=["model"]).rename(
        columns={"diff_mean": "corrupted vs FT (pp)"}
    )
    seconds = {
        name: pd.read_csv(LOGS / "efficientnet_lite0" / f"{name}.benchmark.tsv", sep="\t")[
            "s"
        ].iloc[0]
        for name in ("probes", "wise", "robustness")
    }
    body = "\n\n".join(
        [
            "BreastMNIST (binary, 360 training images, 78 validation, 155 test), "
            "efficientnet_lite0 with offline ImageNet weights at 64 px, 8 strategies × 3 lrs × "
            "3 seeds, ≤ 12 epochs (bench/search/grid.yaml), then `post_hoc: all` "
            "(bench/beyond/breastmnist.yaml): no training job ran. Every verdict is against FT "
            "on the evaluation split, seed-paired with the patient bootstrap, Holm within the "
            "model, equivalence margin ±1 pp (docs/report.md, The statistics). What each job "
            "took on 2 CPU cores, two jobs at a time (Snakemake's benchmark, start-up included): "
            + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
            + ".",
            "### The strategies, the probes and WiSE (test AUROC, mean over 3 seeds at the "
            "chosen lr; kNN and LogReg have no lr)\n\n" + markdown(rows),
            "### Calibration before and after temperature scaling (evaluation split, mean over "
            "seeds; ECE with 15 equal-width bins)\n\n" + markdown(ece),
            "### The WiSE curve (AUROC %, mean over seeds at each row's chosen lr)\n\n"
            + markdown(curve.reset_index()),
            "### Robustness (AUROC % clean and over 4 corruptions × 5 severities; sorted by the "
            "relative drop; verdict on the corrupted images)\n\n" + markdown(shown_robustness),
        ]
    )
    OUT.write_text(
        "# Answers from saved artefacts: BreastMNIST\n\n"
        "`python bench/beyond_results.py`, from the report of bench/beyond/breastmnist.yaml.\n\n"
        + body
        + "\n"
    )
    text = DOCS.read_text()
    head, rest = text.split(BEGIN, 1)
    DOCS.write_text(head + BEGIN + "\n\n" + body + "\n\n" + END + rest.split(END, 1)[1])
    print(OUT.read_text())


if __name__ == "__main__":
    main()
