"""Images per second of medft's training loop fed by its data path, against the same training
step on a batch already on the device — does loading overlap compute? — and of LP's feature
extraction.

The data path: ``torch.utils.data`` workers gather uint8 batches from the memory-mapped shards
(pinned on a GPU), the batch is copied without blocking and normalised on the device. The
reference step is ``medft.loop.train_step`` on one normalised batch kept on the device. Rounds
alternate the two and the median of their per-round ratio is reported, since this machine's
speed drifts within seconds.

CPU (this repository's numbers)::

    python bench/training_loop.py

A GPU (ResNet-50, DenseNet-121, VGG-19 at 224 px, batch 64, bf16 autocast, channels-last)::

    python bench/training_loop.py --device cuda --models resnet50 densenet121 vgg19 \
        --size 224 --images 4096 --workers 6 --rounds 3 --out bench/results_gpu.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medft import features, loop
from medft.data.shards import DatasetMeta, DatasetWriter
from medft.engine import Cell, TrainConfig


def random_dataset(out: Path, n_images: int, size: int) -> Path:
    """Random RGB pixels: throughput does not depend on what the images show."""
    rng = np.random.default_rng(0)
    meta = DatasetMeta("bench", "multiclass", ["a", "b", "c"], image_size=size, channels=3)
    with DatasetWriter(out, meta) as writer:
        for i in range(n_images):
            split = "train" if i < n_images * 0.8 else ("val" if i % 2 else "test")
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            writer.add(image, id=f"{i:06d}", split=split, label=i % 3)
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def in_memory_img_s(cell: Cell, inputs, targets, steps: int) -> float:
    """The training step alone, on one batch already on the device."""
    cell.strategy.train_mode()
    synchronize(cell.device)
    started = time.perf_counter()
    for _ in range(steps):
        loss, _ = loop.train_step(cell.step, inputs, targets)
    loss.item()
    return steps * len(targets) / (time.perf_counter() - started)


def loop_img_s(cell: Cell, epoch: int) -> float:
    """One epoch of the training loop over the shards, as a run trains it."""
    synchronize(cell.device)
    started = time.perf_counter()
    cell.train_one_epoch(epoch)  # ends by reading the epoch's loss: the GPU is done
    return len(cell.splits["train"]) / (time.perf_counter() - started)


def extraction_img_s(cell: Cell, batch_size: int) -> float:
    split = cell.splits["train"]
    synchronize(cell.device)
    started = time.perf_counter()
    features.head_inputs(cell.model, split, batch_size, cell.device)
    return len(split) / (time.perf_counter() - started)


def measure(model: str, data: Path, work: Path, args) -> dict:
    config = TrainConfig(
        data=str(data),
        model=model,
        weights="none",
        strategy="FT",
        lr=1e-4,
        seed=0,
        out=str(work / model),
        batch_size=args.batch,
        workers=args.workers,
    )
    cell = Cell(config)
    cell.build()
    inputs, targets = next(cell.batches("train", shuffle_seed=0))
    steps = cell.splits["train"].num_batches(args.batch)
    loop_img_s(cell, 0)  # warm-up: workers started, kernels chosen, caches filled
    in_memory_img_s(cell, inputs, targets, 3)
    loop, memory = [], []
    for round_ in range(args.rounds):
        loop.append(loop_img_s(cell, round_ + 1))
        memory.append(in_memory_img_s(cell, inputs, targets, steps))
    ratios = [m / lo for m, lo in zip(memory, loop, strict=True)]  # loop step time / step time
    extraction_img_s(cell, args.batch)
    return {
        "model": model,
        "loop img/s": statistics.median(loop),
        "in-memory img/s": statistics.median(memory),
        "step time, loop / in memory": statistics.median(ratios),
        "extraction img/s": extraction_img_s(cell, args.batch),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=640)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_loop_cpu.md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    work = Path(tempfile.mkdtemp(prefix="medft-loop-"))
    data = random_dataset(work / "data", args.images, args.size)
    rows = [measure(model, data, work, args) for model in args.models]
    precision = "bf16 autocast, channels-last" if device.type == "cuda" else "float32"
    lines = [
        f"# Training loop throughput ({device_name(device)}, torch {torch.__version__})",
        "",
        f"{int(args.images * 0.8)} training images at {args.size} px, batch {args.batch}, "
        f"{precision}, {args.workers} loader worker(s); median of {args.rounds} rounds, each "
        "one epoch of the loop beside as many steps on a batch already on the device.",
        "",
        "| model | loop img/s | in-memory img/s | step time, loop / in memory "
        "| loop / in-memory img/s | extraction img/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['loop img/s']:.0f} | {r['in-memory img/s']:.0f} "
            f"| {r['step time, loop / in memory']:.3f}x "
            f"| {r['loop img/s'] / r['in-memory img/s']:.1%} | {r['extraction img/s']:.0f} |"
        )
    lines += [
        "",
        "Command: `python bench/training_loop.py "
        + " ".join(
            f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if k != "out"
        )
        + "`",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
