"""Copy the label-fraction run's summary into ``bench/results_axes.md`` (docs/axes.md).

Run after ``snakemake --cores 2 --configfile bench/axes/breastmnist.yaml``:
``python bench/axes_results.py``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "results" / "bench-axes" / "report" / "breastmnist" / "summary"
OUT = ROOT / "bench" / "results_axes.md"


def main() -> None:
    curves = pd.read_csv(SUMMARY / "label_fractions.csv")
    curves["95 % interval"] = [
        f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(curves["low"], curves["high"], strict=True)
    ]
    shown = curves[["fraction", "strategy", "n_seeds", "mean", "95 % interval", "verdict vs FT"]]
    crossover = (SUMMARY / "label_fractions.md").read_text().split("\n\n", 2)[2]
    OUT.write_text(
        "# BreastMNIST along the label-fraction axis\n\n"
        "`snakemake --cores 2 --configfile bench/axes/breastmnist.yaml`, then "
        "`python bench/axes_results.py`: efficientnet_lite0 (offline ImageNet weights), 64 px, "
        "FT, LP, LoRA, BitFit, 2 lrs (chosen on validation), 3 seeds, ≤ 8 epochs, patience 3; "
        "10 %, 25 % and 100 % of the 546 training images, the same 155 test images (test-76, "
        "equal to train-115, dropped). Main metric: test AUROC (%), mean over seeds at the "
        "chosen lr, with its 95 % t-interval over seeds and the verdict against FT at that "
        "fraction (the report's statistics, Holm over the 3 strategies).\n\n"
        + shown.round(2).to_markdown(index=False)
        + "\n\n## Where the lead changes\n\n"
        + crossover
    )
    print(OUT.read_text())


if __name__ == "__main__":
    main()
