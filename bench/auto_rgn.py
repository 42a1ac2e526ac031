"""Auto-RGN as the reference code computes it, against medft's former variant (issue 24).

Run: ``python bench/auto_rgn.py [--data ../shared/data] [--work DIR] [--epochs 12]``; writes
``bench/results_auto_rgn.md`` and ``bench/results_auto_rgn_block_lrs.png`` (docs/ablations.md
discusses them). Three Auto-RGN variants beside FT and LP, each over 3 lrs and 3 seeds, with
efficientnet_lite0 + the offline ImageNet weights at 64 px on three real tasks:

* former: every tensor in max(RGN) and trained, BatchNorm included (medft before 0.2);
* reference: BatchNorm scales and biases out of max(RGN) and out of the optimizer, as the
  reference code (``rgn_norm: frozen``, the default);
* reference, head at full lr: as the reference, the new head out of max(RGN) (``rgn_head:
  full``).

The lr of each strategy is chosen on the validation split, and each strategy is compared with
FT by the report's own statistics (``medft.report.stats``: the pair's own seed spread and
the evaluation split's shared sampling, counted once, each at its own t quantile — the seeds'
n − 1 degrees of freedom, the split's patients' − 1; Holm over the strategies of the task, the
four verdicts). Cells train in a fixed
``--work`` folder seed by seed, so an interrupted run continues where it stopped and
``--write-only`` tabulates whatever has finished.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from medft.data.preprocess import Preprocess
from medft.data.sources import prepare_dataset
from medft.engine import TrainConfig, train
from medft.report.collect import collect_epochs, collect_runs
from medft.report.figures import block_learning_rates, save
from medft.report.stats import bootstrap_intervals, paired_tests, verdicts
from medft.report.tables import mean_se, select_lr, summarise_chosen
from medft.strategies import StrategyOptions

MODEL, WEIGHTS, SIZE = "efficientnet_lite0", "efficientnet-lite0-offline", 64
LRS = (1e-3, 1e-4, 1e-5)
HERE = Path(__file__).parent
OUT, FIGURE = HERE / "results_auto_rgn.md", HERE / "results_auto_rgn_block_lrs.png"

REFERENCE_ARM = "Auto-RGN reference"
# label → (registered strategy, options): each Auto-RGN arm spells its options out, so the
# arms stay what they are whatever the defaults become.
ARMS = {
    "FT": ("FT", {}),
    "LP": ("LP", {}),
    "Auto-RGN former": ("Auto-RGN", {"rgn_norm": "scaled", "rgn_head": "scaled"}),
    REFERENCE_ARM: ("Auto-RGN", {"rgn_norm": "frozen", "rgn_head": "scaled"}),
    "Auto-RGN reference, head full lr": ("Auto-RGN", {"rgn_norm": "frozen", "rgn_head": "full"}),
}


def tasks(data: Path) -> dict[str, dict]:
    """The three real tasks; PneumoniaMNIST's training split at a quarter (whole split kept
    for evaluation) to fit the CPU budget. Both MedMNIST copies share images between splits
    (BreastMNIST 1 test, this PneumoniaMNIST copy 8 val): dropped from evaluation. The results
    in results_auto_rgn.md were measured before medft checked for it."""
    return {
        "breastmnist": {
            "source": "medmnist",
            "npz": str(data / "medmnist/breastmnist.npz"),
            "duplicates": "drop_from_eval",
        },
        "pneumoniamnist": {
            "source": "medmnist",
            "npz": str(data / "medmnist/pneumoniamnist.npz"),
            "train_fraction": 0.25,
            "duplicates": "drop_from_eval",
        },
        "pbc": {"source": "imagefolder", "root": str(data / "pbc")},
    }


def prepared(name: str, options: dict, work: Path) -> Path:
    out = work / "data" / name
    if not (out / "meta.json").exists():
        prepare_dataset(name, options, Preprocess(SIZE, SIZE), out)
    return out


def folder(arm: str) -> str:
    return arm.replace(", ", "-").replace(" ", "-")


def run_dir(work: Path, dataset: str, arm: str, lr: float, seed: int) -> Path:
    return work / "runs" / dataset / folder(arm) / f"lr{lr:g}" / f"seed{seed}"


def train_all(work: Path, data: Path, seeds: list[int], epochs: int) -> None:
    sets = {name: prepared(name, options, work) for name, options in tasks(data).items()}
    for seed in seeds:  # seed by seed: a stopped run leaves every task with the same seeds
        for dataset, path in sets.items():
            for arm, (strategy, options) in ARMS.items():
                for lr in LRS:
                    config = TrainConfig(
                        data=str(path),
                        model=MODEL,
                        weights=WEIGHTS,
                        strategy=strategy,
                        lr=lr,
                        seed=seed,
                        epochs=epochs,
                        patience=3,
                        workers=0,
                        out=str(run_dir(work, dataset, arm, lr, seed)),
                        options=StrategyOptions(**options),
                    )
                    train(config)


def finished(work: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finished runs and their epoch logs, ``strategy`` holding the arm's label; only the seeds
    that every arm and lr of a task has finished."""
    label_of = {folder(arm): arm for arm in ARMS}
    files = sorted((work / "runs").glob("*/*/*/*/metrics.json"))
    arms = [label_of[f.parts[-4]] for f in files]
    runs = collect_runs(files).assign(strategy=arms)
    epochs = pd.concat(
        [collect_epochs([f]).assign(strategy=arm) for f, arm in zip(files, arms, strict=True)]
    )
    size = runs.groupby(["dataset", "seed"])["strategy"].transform("size")
    runs = runs[size == len(ARMS) * len(LRS)]
    return runs, epochs.merge(runs[["dataset", "strategy", "lr", "seed"]])


def comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and arm: the lr chosen on val, test main metric mean ± SE, and the report's
    comparison with FT (seed-paired difference, Holm-corrected p, bootstrap interval,
    verdict)."""
    chosen = select_lr(runs, "val")
    summary = summarise_chosen(chosen)
    tested = verdicts(
        paired_tests(chosen),
        bootstrap_intervals(chosen, runs.groupby("dataset")["task"].first().to_dict()),
    )
    rows = []
    for _, row in summary.iterrows():
        main = chosen.loc[chosen["dataset"] == row["dataset"], "main_metric"].iloc[0]
        lr = chosen.loc[
            (chosen["dataset"] == row["dataset"]) & (chosen["strategy"] == row["strategy"]), "lr"
        ].iloc[0]
        test = tested[
            (tested["dataset"] == row["dataset"]) & (tested["strategy"] == row["strategy"])
        ]
        entry = {
            "task": f"{row['dataset']} ({main})",
            "strategy": row["strategy"],
            "lr": f"{lr:g}",
            "test": mean_se(row[f"{main}_mean"], row[f"{main}_se"]),
        }
        if len(test):
            t = test.iloc[0]
            entry |= {
                "vs FT (pp)": f"{t['diff_mean']:+.2f}",
                "bootstrap 95 %": f"[{t['boot_low']:+.1f}, {t['boot_high']:+.1f}]",
                "Holm p": "–" if pd.isna(t["p_holm"]) else f"{t['p_holm']:.3f}",
                "verdict": t["verdict"],
            }
        rows.append(entry)
    order = {arm: i for i, arm in enumerate(ARMS)}
    frame = pd.DataFrame(rows).fillna("")
    return frame.sort_values(
        ["task", "strategy"], key=lambda c: c.map(order) if c.name == "strategy" else c
    )


def against_reference(runs: pd.DataFrame) -> pd.DataFrame:
    """The other Auto-RGN arms against the reference code's, seed-paired (each at its chosen
    lr): mean difference and 95 % t-interval in points, per task."""
    chosen = select_lr(runs, "val")
    chosen = chosen[chosen["strategy"].str.startswith("Auto-RGN")]
    paired = paired_tests(chosen, reference=REFERENCE_ARM)
    return pd.DataFrame(
        {
            "task": paired["dataset"],
            "arm − reference": paired["strategy"],
            "mean (pp)": paired["diff_mean"].map("{:+.2f}".format),
            "95 % t-interval": [
                "–" if pd.isna(lo) else f"[{lo:+.1f}, {hi:+.1f}]"
                for lo, hi in zip(paired["diff_low"], paired["diff_high"], strict=True)
            ],
            "p": paired["p_seed"].map(lambda v: "–" if pd.isna(v) else f"{v:.3f}"),
            "seeds": paired["n_pairs"],
        }
    )


def pooled_against_reference(runs: pd.DataFrame) -> pd.DataFrame:
    """Every (task, seed) pair of an arm and the reference pooled: how many the arm wins, and
    the two-sided sign test of that count (each pair at both arms' chosen lrs)."""
    from scipy.stats import binomtest

    from medft.report.stats import seed_pairs

    chosen = select_lr(runs, "val")
    chosen = chosen[chosen["strategy"].str.startswith("Auto-RGN")]
    pairs = seed_pairs(chosen, reference=REFERENCE_ARM)
    rows = []
    for arm, group in pairs.groupby("strategy", sort=False):
        differences = (group["value"] - group["ft_value"]).to_numpy()
        wins, n = int((differences > 0).sum()), int((differences != 0).sum())
        rows.append(
            {
                "arm − reference": arm,
                "pairs (task × seed)": len(differences),
                "arm better in": f"{wins} of {n}",
                "median (pp)": f"{pd.Series(differences).median():+.2f}",
                "sign test p": f"{binomtest(wins, n).pvalue:.3f}" if n else "–",
            }
        )
    return pd.DataFrame(rows)


def block_lr_table(epochs: pd.DataFrame) -> pd.DataFrame:
    """Each Auto-RGN arm's per-block lr relative to the grid lr, at lr 1e-3, mean over seeds,
    epochs and tasks: how much of the lr each block gets."""
    rgn = epochs[epochs["strategy"].str.startswith("Auto-RGN") & (epochs["lr"] == 1e-3)]
    blocks = [c for c in rgn.columns if c.startswith("lr_") and rgn[c].notna().any()]
    relative = rgn[blocks].div(rgn["lr"], axis=0).assign(strategy=rgn["strategy"])
    table = relative.groupby("strategy")[blocks].mean().T
    table.index = table.index.str.removeprefix("lr_")
    return table.map(lambda v: f"{v:.3g}")


def write(runs: pd.DataFrame, epochs: pd.DataFrame, command: str) -> None:
    seeds = sorted(runs["seed"].unique())
    rgn = epochs[epochs["strategy"].str.startswith("Auto-RGN")]
    chosen = select_lr(runs, "val")[["dataset", "strategy", "lr", "seed"]]
    save(block_learning_rates(rgn.merge(chosen), column="dataset"), FIGURE)
    OUT.write_text(
        "# Auto-RGN: the reference code's parameter selection, measured\n\n"
        f"`{command}`: {MODEL} + {WEIGHTS}, {SIZE} px, batch 64, lrs "
        f"{', '.join(f'{lr:g}' for lr in LRS)}, seeds {', '.join(map(str, seeds))}, at most "
        f"{int(runs['epochs_trained'].max())} epochs, patience 3, early stopping and the lr "
        "chosen on the validation split; evaluation (test) split main metric in percent, "
        "mean (SE) over seeds. *vs FT*: the seed-paired difference from FT at its own chosen "
        "lr; *bootstrap*: the report's patient bootstrap (B = 2,000) of the same difference; "
        "*Holm p* and *verdict*: the report's test (each pair's own seed spread and the part "
        "of the evaluation split's sampling the seeds share, each counted once, each at its own "
        "t quantile: the seeds' n − 1 degrees of freedom, the split's images' − 1 here; Holm "
        "over the four strategies of the task; "
        "better / worse / equivalent within ±1 pp / inconclusive, docs/protocol.md, "
        "Statistics). None of the three sets has patient "
        "ids, so the bootstrap resamples images. PneumoniaMNIST: a quarter of this "
        "copy's training split (see ../shared/data/README.md), its whole val and test splits; "
        "PBC: 8 classes, 1,000 images carved 70 / 10 / 20 per image.\n\n"
        + comparison(runs).to_markdown(index=False, disable_numparse=True)
        + "\n\n## The Auto-RGN arms against the reference code's\n\n"
        + against_reference(runs).to_markdown(index=False, disable_numparse=True)
        + "\n\nPooled over the three tasks (each task's main metric, in points):\n\n"
        + pooled_against_reference(runs).to_markdown(index=False, disable_numparse=True)
        + "\n\n## Per-block learning rate relative to the grid lr (lr 1e-3, mean over "
        "tasks, seeds and epochs)\n\n"
        + block_lr_table(epochs).to_markdown()
        + f"\n\nPer-block lrs per epoch at each arm's chosen lr: `{FIGURE.name}`.\n"
    )
    print(f"wrote {OUT}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("results/bench-auto-rgn"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--write-only", action="store_true", help="tabulate finished runs only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if not args.write_only:
        train_all(args.work, args.data, args.seeds, args.epochs)
    runs, epochs = finished(args.work)
    write(runs, epochs, f"python bench/auto_rgn.py --epochs {args.epochs}")


if __name__ == "__main__":
    main()
