"""Deterministic synthetic medical-looking datasets for the offline demo and the tests.

Four tasks, each drawn from a fixed seed:

* ``synth-nodule`` (binary, grey, radiograph-like): a chest-like field of smooth noise and two
  lung shapes; positives carry one faint round nodule somewhere inside a lung.
* ``synth-histology`` (multi-class, RGB, H&E-like): pink stroma with purple nuclei; the three
  grades differ in nuclear density, size and irregularity, with overlapping ranges.
* ``synth-findings`` (multi-label, grey): nodule, streak (a linear opacity) and cavity (a dark
  ring), each present independently.
* ``synth-effusion`` (binary, grey): positives have one lung's base filled by fluid — a finding
  so plain that most strategies reach the ceiling on every seed, as on the paper's easiest
  tasks, where the verdict to expect is *equivalent*.

The signal is clear against the texture: at the demo's 40 px a pretrained CNN fine-tuned for
two epochs learns every task (test main metric ≥ 0.85), while on the first three strategies
that adapt less or more slowly (LP, Auto-RGN) fall measurably short. Images belong to
patients (two to three images each) and the train/val/test split is by patient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from medft.data.options import SyntheticOptions
from medft.data.preprocess import Preprocess
from medft.data.records import (
    SUBSAMPLED,
    label_column,
    rows_to_write,
    subsample,
    subsampled_counts,
)
from medft.data.shards import DatasetMeta, DatasetWriter, describe_raw
from medft.registry import Registry


@dataclass(frozen=True)
class SyntheticTask:
    task: str
    classes: tuple[str, ...]
    channels: int
    main_metric: str
    draw: Callable[[np.random.Generator, int], tuple[np.ndarray, object]]


SYNTHETIC: Registry[SyntheticTask] = Registry("synthetic dataset")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size].astype(np.float32) / size


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma * size)
    return field / (field.std() + 1e-8)


def _blob(yy, xx, cy, cx, radius) -> np.ndarray:
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))


def _chest(
    rng: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A radiograph-like background, a soft mask of its two lung fields, and the grid."""
    yy, xx = _grid(size)
    lungs = np.zeros((size, size), np.float32)
    for cx in (0.3 + rng.normal(0, 0.02), 0.7 + rng.normal(0, 0.02)):
        ry, rx = rng.uniform(0.3, 0.36), rng.uniform(0.14, 0.18)
        lungs += (((yy - 0.5) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1).astype(np.float32)
    lungs = ndimage.gaussian_filter(np.clip(lungs, 0, 1), 0.03 * size)
    image = 0.65 - 0.35 * lungs + 0.06 * _smooth_noise(rng, size, 0.02)
    image += 0.04 * _smooth_noise(rng, size, 0.1) + 0.03 * rng.standard_normal((size, size))
    return image, lungs, yy, xx


def _lung_point(rng, size) -> tuple[float, float]:
    side = rng.choice([0.3, 0.7])
    return 0.5 + rng.uniform(-0.22, 0.22), side + rng.uniform(-0.09, 0.09)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def _nodule(rng: np.random.Generator, size: int) -> tuple[np.ndarray, int]:
    image, _, yy, xx = _chest(rng, size)
    label = int(rng.random() < 0.4)
    if label:
        cy, cx = _lung_point(rng, size)
        image += rng.uniform(0.6, 0.8) * _blob(yy, xx, cy, cx, rng.uniform(0.11, 0.15))
    return _to_uint8(image), label


def _findings(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[int]]:
    image, _, yy, xx = _chest(rng, size)
    labels = (rng.random(3) < [0.4, 0.35, 0.3]).astype(int)
    if labels[0]:
        cy, cx = _lung_point(rng, size)
        image += rng.uniform(0.6, 0.8) * _blob(yy, xx, cy, cx, rng.uniform(0.1, 0.13))
    if labels[1]:
        cy, cx = _lung_point(rng, size)
        angle = rng.uniform(0, np.pi)
        distance = np.abs((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle))
        along = np.abs((yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle))
        image += 0.6 * np.exp(-(distance**2) / (2 * 0.035**2)) * (along < 0.35)
    if labels[2]:
        cy, cx = _lung_point(rng, size)
        radius = rng.uniform(0.08, 0.11)
        ring = np.exp(-((np.hypot(yy - cy, xx - cx) - radius) ** 2) / (2 * 0.02**2))
        image += 0.6 * ring - 0.5 * _blob(yy, xx, cy, cx, radius * 0.6)
    return _to_uint8(image), labels.tolist()


def _effusion(rng: np.random.Generator, size: int) -> tuple[np.ndarray, int]:
    image, lungs, yy, xx = _chest(rng, size)
    label = int(rng.random() < 0.5)
    if label:
        # Fluid fills one lung's base up to a level: a large, dense opacity, as plain on a
        # radiograph as findings get.
        side = rng.choice([0.3, 0.7])
        level = rng.uniform(0.35, 0.45)
        base = ndimage.gaussian_filter(((yy > level) & (np.abs(xx - side) < 0.2)) * lungs, 1)
        image += rng.uniform(0.8, 0.9) * base
    return _to_uint8(image), label


def _histology(rng: np.random.Generator, size: int) -> tuple[np.ndarray, int]:
    label = int(rng.integers(3))
    yy, xx = _grid(size)
    density = [8, 30, 70][label] + rng.integers(-5, 6)
    radius = [0.018, 0.024, 0.030][label] * rng.uniform(0.8, 1.2)
    nuclei = np.zeros((size, size), np.float32)
    for _ in range(density):
        cy, cx = rng.random(2)
        stretch = 1 + rng.uniform(0, [0.2, 0.6, 1.2][label])
        r = radius * rng.uniform(0.7, 1.3)
        nuclei += np.exp(-(((yy - cy) * stretch) ** 2 + ((xx - cx) / stretch) ** 2) / (2 * r**2))
    nuclei = np.clip(nuclei, 0, 1)
    stroma = 0.88 + 0.08 * _smooth_noise(rng, size, 0.05)
    pink = np.array([0.93, 0.62, 0.78])
    purple = np.array([0.35, 0.2, 0.55]) * [1.3, 1.0, 0.7][label]
    image = (1 - nuclei)[..., None] * pink * stroma[..., None] + nuclei[..., None] * purple
    image += 0.04 * rng.standard_normal((size, size, 3))
    return _to_uint8(image), label


SYNTHETIC.register("synth-nodule")(
    SyntheticTask("binary", ("no nodule", "nodule"), 1, "auroc", _nodule)
)
SYNTHETIC.register("synth-effusion")(
    SyntheticTask("binary", ("no effusion", "effusion"), 1, "auroc", _effusion)
)
SYNTHETIC.register("synth-histology")(
    SyntheticTask("multiclass", ("normal", "benign", "invasive"), 3, "accuracy", _histology)
)
SYNTHETIC.register("synth-findings")(
    SyntheticTask("multilabel", ("nodule", "streak", "cavity"), 1, "map", _findings)
)


def generate(name: str, n_images: int, size: int = 64, seed: int = 0):
    """Yield ``(image, label, patient, split)``; patients split 60/20/20 into train/val/test."""
    spec = SYNTHETIC.get(name)
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    patient, left = 0, 0
    for _ in range(n_images):
        if left == 0:
            patient += 1
            left = int(rng.integers(2, 4))
            split = rng.choice(["train", "val", "test"], p=[0.6, 0.2, 0.2])
        left -= 1
        image, label = spec.draw(rng, size)
        yield image, label, f"p{patient:05d}", str(split)


def split_counts(n_images: int) -> dict[str, int]:
    """The expected images per split of ``generate`` (60/20/20 by patient, so about)."""
    train, val = round(0.6 * n_images), round(0.2 * n_images)
    return {"train": train, "val": val, "test": n_images - train - val}


def prepare(
    name: str,
    preprocess: Preprocess,
    out_dir: str | Path,
    n_images: int = 300,
    seed: int = 0,
    options: SyntheticOptions | None = None,
) -> Path:
    """Write synthetic task ``name`` as a medft dataset, subsampled as ``options`` say."""
    spec = SYNTHETIC.get(name)
    options = options or SyntheticOptions(
        name=name, source="synthetic", n_images=n_images, seed=seed
    )
    meta = DatasetMeta(
        name=options.name,
        task=spec.task,
        classes=list(spec.classes),
        image_size=preprocess.crop,
        channels=spec.channels,
        source={
            **options.as_dict(),
            "task": name,
            "n_images": n_images,
            "seed": seed,
            "resize": preprocess.resize,
            "main_metric": options.main_metric or spec.main_metric,
        },
        split_sources=dict.fromkeys(("train", "val", "test"), "drawn by the generator"),
    )
    raw_size = max(64, preprocess.resize)
    drawn = list(generate(name, n_images, raw_size, seed))
    multilabel = spec.task == "multilabel"
    rows = pd.DataFrame(
        [
            {
                "split": split,
                "group": patient,
                **label_column(label, multilabel),
            }
            for _, label, patient, split in drawn
        ]
    )
    rows = subsample(rows, options, multilabel)
    meta = replace(meta, subsampled=subsampled_counts(rows))
    rows = rows_to_write(rows)
    with DatasetWriter(out_dir, meta) as writer:
        for i, subsampled in rows[SUBSAMPLED].items():
            image, label, patient, split = drawn[i]
            writer.add(
                preprocess(image),
                id=f"{name}-{i:05d}",
                split=split,
                label=label,
                group=patient,
                raw=describe_raw(image),
                subsampled=subsampled,
            )
    return Path(out_dir)
