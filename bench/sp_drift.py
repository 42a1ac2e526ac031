"""How far FT moves the pretrained weights: the measurement behind L1-SP's defaults.

Run: ``python bench/sp_drift.py [--npz ../shared/data/medmnist/breastmnist.npz]``; writes
``bench/results_sp_drift.md``. FT on BreastMNIST (real ultrasound) and the synthetic
histology task with efficientnet_lite0 + the offline ImageNet weights at 64 px, at the grid's
three lrs; after every epoch, the mean absolute drift |w − w⁰| per weight of the tensors the
-SP penalties pull (conv and linear weights of the backbone) and the mean |w| of the head.

L1-SP matches L2-SP's pull at drift d when α₁ = α₂ · d (the gradients are α₁·sign(w − w⁰) and
α₂·(w − w⁰)), and β₁ = β₂ · mean|w_head| likewise for the head.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import pandas as pd
import torch

from medft.data import medmnist, synthetic
from medft.data.options import MedmnistOptions
from medft.data.preprocess import Preprocess
from medft.engine import Cell, TrainConfig
from medft.strategies import StrategyOptions
from medft.strategies.base import EpochContext
from medft.strategies.penalties import L2SP

MODEL, WEIGHTS, SIZE = "efficientnet_lite0", "efficientnet-lite0-offline", 64
LRS, EPOCHS = (1e-3, 1e-4, 1e-5), 5
OUT = Path(__file__).with_name("results_sp_drift.md")


def drift_per_epoch(data: Path, lr: float, work: Path) -> list[dict]:
    cell = Cell(
        TrainConfig(
            data=str(data),
            model=MODEL,
            weights=WEIGHTS,
            strategy="FT",
            lr=lr,
            seed=0,
            out=str(work / f"lr{lr:g}"),
            workers=0,
        )
    )
    cell.build()
    # The tensors L2-SP would pull, and its head: the same selection for the measurement.
    pulled = L2SP(cell.model, lr, StrategyOptions())
    rows = []
    for epoch in range(EPOCHS):
        cell.strategy.on_epoch_start(EpochContext(epoch, cell.optimizer, None))
        cell.train_one_epoch(epoch)
        with torch.no_grad():
            drift = torch.cat([d.abs().flatten() for d in pulled.drifts()])
            head = torch.cat([w.abs().flatten() for w in pulled.head])
        rows.append(
            {
                "lr": lr,
                "epoch": epoch,
                "mean |w - w0|": drift.mean().item(),
                "median |w - w0|": drift.median().item(),
                "mean |w_head|": head.mean().item(),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", default="../shared/data/medmnist/breastmnist.npz")
    args = parser.parse_args()
    torch.set_num_threads(2)
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets = {
            "breastmnist": medmnist.prepare(
                args.npz,
                "breastmnist",
                Preprocess(SIZE, SIZE),
                work / "bm",
                MedmnistOptions(
                    name="breastmnist",
                    source="medmnist",
                    npz=args.npz,
                    duplicates="drop_from_eval",  # its one test image equal to a training image
                ),
            ),
            "synth-histology": synthetic.prepare(
                "synth-histology", Preprocess(SIZE, SIZE), work / "sh", n_images=600
            ),
        }
        for name, data in sets.items():
            for lr in LRS:
                frame = pd.DataFrame(drift_per_epoch(data, lr, work / name))
                frame.insert(0, "dataset", name)
                frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    OUT.write_text(
        "# Per-weight drift of FT from the pretrained weights\n\n"
        f"`python bench/sp_drift.py` on {platform.node()} ({platform.processor() or 'cpu'}); "
        f"{MODEL} + {WEIGHTS}, {SIZE} px, batch 64, seed 0, {EPOCHS} epochs. Drift over the "
        "tensors the -SP penalties pull (backbone conv and linear weights).\n\n"
        + table.to_markdown(index=False, floatfmt=".3g")
        + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
