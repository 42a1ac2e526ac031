"""The ablations behind the paper's open choices (issue 10), measured.

Run: ``python bench/ablations.py [--npz PATH] [--seeds 0 1 2] [--epochs N]``; writes
``bench/results_ablations.md`` (docs/ablations.md discusses it). Each ablation trains the
same cells twice, differing in one option, with efficientnet_lite0 + the offline ImageNet
weights at 64 px on BreastMNIST (real ultrasound) and the synthetic histology task, at one lr
(1e-4, the grid's middle), and reports the evaluation split's main metric, mean ± SE over
seeds, and the mean paired difference (variant − reference, same seed).

Gradual unfreezing's former stages (head split off the last block) no longer exist in the
package; the ablation rebuilds them here, as a subclass, to measure what the change did.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import sem as se

from medft.data import medmnist, synthetic
from medft.data.options import MedmnistOptions
from medft.data.preprocess import Preprocess
from medft.engine import TrainConfig, train
from medft.strategies import STRATEGIES, StrategyInfo, StrategyOptions, register_strategy
from medft.strategies.base import EpochContext
from medft.strategies.unfreezing import GradualUnfreezeFirstToLast, GradualUnfreezeLastToFirst

MODEL, WEIGHTS, SIZE, LR = "efficientnet_lite0", "efficientnet-lite0-offline", 64, 1e-4
OUT = Path(__file__).with_name("results_ablations.md")
OLD_L1SP = {"l1sp_alpha": 5e-6, "l1sp_beta": 5e-5}


class HeadSplitOff:
    """The former gradual unfreezing: the head alone at epoch 0, then one backbone block per
    epoch (the head's parameters taken out of the last block; an emptied block dropped)."""

    def stages(self) -> list[tuple[str, ...]]:
        head = set(self.model.head_params)
        blocks = [tuple(p for p in b.params if p not in head) for b in self.model.blocks]
        blocks = [b for b in blocks if b]
        return [tuple(self.model.head_params), *(blocks[::-1] if self.last_to_first else blocks)]

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        self.set_trainable([p for stage in self.stages()[: ctx.epoch + 1] for p in stage])


class OldGLF(HeadSplitOff, GradualUnfreezeLastToFirst):
    pass


class OldGFL(HeadSplitOff, GradualUnfreezeFirstToLast):
    pass


# As many stages as blocks for efficientnet_lite0, whose head is a block of its own.
for _name, _cls in (("G-LF-old", OldGLF), ("G-FL-old", OldGFL)):
    register_strategy(
        StrategyInfo(_name, _cls, "head split off", stoppable_from=lambda o, n: n - 1)
    )

# (ablation, reference label, reference (strategy, options), variant label, variant ...)
ABLATIONS = [
    ("LP: frozen BatchNorm", "eval", ("LP", {}), "train", ("LP", {"frozen_bn": "train"})),
    (
        "Auto-RGN: grouping and Adam",
        "per tensor, Adam rebuilt (reference)",
        ("Auto-RGN", {}),
        "per module, Adam kept (before)",
        ("Auto-RGN", {"rgn_groups": "module", "rgn_rebuild_optimizer": False}),
    ),
    (
        "LP-FT: two runs or one",
        "two runs (LP cell, then FT from its best)",
        ("LP-FT", {}),
        "one run, LP for 3 epochs",
        ("LP-FT", {"lpft_lp_epochs": 3}),
    ),
    ("L1-SP: defaults", "new (drift-calibrated)", ("L1-SP", {}), "old", ("L1-SP", OLD_L1SP)),
    ("G-LF: stages", "new (paper's)", ("G-LF", {}), "old (head split off)", ("G-LF-old", {})),
    ("G-FL: stages", "new (paper's)", ("G-FL", {}), "old (head split off)", ("G-FL-old", {})),
]


def run(data: Path, work: Path, strategy: str, options: dict, seed: int, epochs: int) -> dict:
    tag = "-".join([strategy, *(f"{k}={v}" for k, v in sorted(options.items()))])
    opts = replace(StrategyOptions(), **options)
    init = None
    if STRATEGIES.get(strategy).starts_from(opts):
        first = STRATEGIES.get(strategy).starts_from(opts)
        run(data, work, first, options, seed, epochs)
        first_tag = "-".join([first, *(f"{k}={v}" for k, v in sorted(options.items()))])
        init = str(work / first_tag / f"seed{seed}" / "best.pt")
    config = TrainConfig(
        data=str(data),
        model=MODEL,
        weights=WEIGHTS,
        strategy=strategy,
        lr=LR,
        seed=seed,
        epochs=epochs,
        patience=3,
        workers=0,
        init=init,
        out=str(work / tag / f"seed{seed}"),
        options=opts,
    )
    summary = train(config)
    return summary["metrics"]["test"][summary["main_metric"]] * 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", default="../shared/data/medmnist/breastmnist.npz")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--work", help="keep runs here (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        sets = {
            "breastmnist (AUROC)": medmnist.prepare(
                args.npz,
                "breastmnist",
                Preprocess(SIZE, SIZE),
                work / "data" / "bm",
                MedmnistOptions(
                    name="breastmnist",
                    source="medmnist",
                    npz=args.npz,
                    duplicates="drop_from_eval",  # its one test image equal to a training image
                ),
            ),
            "synth-histology (accuracy)": synthetic.prepare(
                "synth-histology", Preprocess(SIZE, SIZE), work / "data" / "sh", n_images=400
            ),
        }
        for dataset, data in sets.items():
            for name, ref_label, (rs, ro), var_label, (vs, vo) in ABLATIONS:
                ref = [run(data, work / dataset, rs, ro, s, args.epochs) for s in args.seeds]
                var = [run(data, work / dataset, vs, vo, s, args.epochs) for s in args.seeds]
                diff = np.subtract(var, ref)
                rows.append(
                    {
                        "dataset": dataset,
                        "ablation": name,
                        "reference": f"{ref_label}: {np.mean(ref):.2f} ± {se(ref):.2f}",
                        "variant": f"{var_label}: {np.mean(var):.2f} ± {se(var):.2f}",
                        "paired difference": f"{diff.mean():+.2f} ± {se(diff):.2f}",
                    }
                )
                print(rows[-1], flush=True)
    OUT.write_text(
        "# Ablations of the paper's open choices\n\n"
        f"`python bench/ablations.py --epochs {args.epochs} --seeds "
        f"{' '.join(map(str, args.seeds))}`: {MODEL} + {WEIGHTS}, {SIZE} px, lr {LR:g}, "
        f"batch 64, ≤ {args.epochs} epochs, patience 3, early stopping on the validation split; "
        "test-split main metric in percent, mean ± SE over seeds; paired difference = "
        "variant − reference, same seed.\n\n" + pd.DataFrame(rows).to_markdown(index=False) + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
