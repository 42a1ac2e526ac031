"""Images per second: the memory-mapped shard loader vs decoding JPEGs ImageFolder-style.

Both produce the same normalised (64, 3, 224, 224) float batches from the same images, with the
same preprocessing (shorter side 256, centre crop 224, ImageNet mean/std), in one process.
Run: ``python bench/loader_throughput.py``; writes ``bench/results_loader.md``.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from medft.data import synthetic
from medft.data.preprocess import Preprocess
from medft.data.shards import ShardDataset
from medft.data.sources import prepare_dataset

N_IMAGES, DRAWN_SIZE, RAW_SIZE, BATCH = 192, 512, 1024, 64


def write_jpegs(root: Path) -> None:
    for i, (image, label, _, _) in enumerate(
        synthetic.generate("synth-histology", N_IMAGES, DRAWN_SIZE, seed=1)
    ):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        # Drawn at 512 px (drawing is slow), saved at the 1024 px of a small dermoscopy or
        # microscopy photo (ISIC 2020: 640x480 to 6000x4000; BACH: 2048x1536).
        photo = Image.fromarray(image).resize((RAW_SIZE, RAW_SIZE), Image.BICUBIC)
        photo.save(folder / f"{i:04d}.jpg", quality=90)


def images_per_second(batches) -> float:
    started, seen = time.perf_counter(), 0
    for images, _ in batches:
        seen += len(images)
    return seen / (time.perf_counter() - started)


def main() -> None:
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="medft-loader-"))
    write_jpegs(work / "jpeg" / "train")
    prepared = prepare_dataset(
        "bench",
        {"source": "imagefolder", "root": str(work / "jpeg"), "val_fraction": 0.01},
        Preprocess(256, 224),
        work / "shards",
    )
    shards = ShardDataset(prepared, "train")
    decode = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    folder = datasets.ImageFolder(work / "jpeg" / "train", transform=decode)
    runs = {"shards": [], "jpeg": []}
    for _ in range(3):
        runs["shards"].append(images_per_second(shards.batches(BATCH, shuffle_seed=0)))
        runs["jpeg"].append(
            images_per_second(DataLoader(folder, batch_size=BATCH, shuffle=True, num_workers=0))
        )
    shard_rate, jpeg_rate = np.median(runs["shards"]), np.median(runs["jpeg"])
    lines = [
        f"# Loader throughput ({platform.machine()}, 1 torch thread, 1 process)",
        "",
        f"{len(shards)} images, {RAW_SIZE}x{RAW_SIZE} JPEG (quality 90) → 224x224 normalised "
        f"float batches of {BATCH}; median of 3 passes.",
        "",
        "| loader | images/s |",
        "|---|---|",
        f"| medft shards (memory-mapped uint8, shuffled) | {shard_rate:.0f} |",
        f"| torchvision ImageFolder + Resize/CenterCrop/ToTensor/Normalize | {jpeg_rate:.0f} |",
        "",
        f"Speed-up: {shard_rate / jpeg_rate:.1f}x",
        "",
    ]
    out = Path(__file__).with_name("results_loader.md")
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
