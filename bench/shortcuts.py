"""How often the size-and-mode check (medft.data.shortcuts) names a kind of image as going with
a class when labels are random, and how often it names one that does.

Run: ``python bench/shortcuts.py [--families 1000]``; writes ``bench/results_shortcuts.md``.
Through the product's ``kinds_by_class``. Needs ``../shared/data`` for PBC's real sizes.

* False flags: the labels drawn at random (class shares kept), so no kind goes with a class:
  the share of data sets with any kind named — PBC's real sizes (967, 21 and 12 images, 8
  classes), a dermoscopy-like set (5,000 images, 1.8 % malignant as ISIC 2020, 30 sizes of
  power-law frequency, the 10 most common tested), three kinds over two even classes, and
  patients whose images share a scanner and a diagnosis — tested by patient, as the product
  does where a dataset has patients, and image by image, as it would without them; and a
  multi-label set (each label its own test, Holm over kinds and labels).
* Power: 1,000 images of two classes; one kind of k images, each of one class with chance q
  (the other images with chance 1/2): the share of sets where that kind is named.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from medft.data.shortcuts import (
    ALPHA,
    DRAWS,
    KINDS_TESTED,
    kinds_by_class,
    kinds_by_label,
    shortcuts,
)

OUT = Path(__file__).with_name("results_shortcuts.md")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pbc() -> tuple[pd.Series, np.ndarray, list[str]]:
    from PIL import Image

    files = sorted((DATA / "pbc").glob("*/*.jpg"))
    classes = sorted({f.parent.name for f in files})
    raw = pd.Series([f"{Image.open(f).size[0]}×{Image.open(f).size[1]} RGB" for f in files])
    return raw, np.array([classes.index(f.parent.name) for f in files]), classes


def dermoscopy(rng) -> tuple[pd.Series, np.ndarray, list[str]]:
    frequencies = 1 / np.arange(1, 31) ** 1.2
    kinds = rng.choice(30, 5000, p=frequencies / frequencies.sum())
    raw = pd.Series([f"size {k}" for k in kinds])
    labels = (np.arange(5000) < 90).astype(int)  # 1.8 % malignant
    return raw, labels, ["benign", "malignant"]


def three_kinds() -> tuple[pd.Series, np.ndarray, list[str]]:
    raw = pd.Series(["a"] * 900 + ["b"] * 80 + ["c"] * 20)
    return raw, np.arange(1000) % 2, ["0", "1"]


def false_flags(design, families: int, rng) -> float:
    raw, labels, classes = design
    flagged = sum(
        bool(shortcuts(kinds_by_class(raw, pd.Series(rng.permutation(labels)), classes)))
        for _ in range(families)
    )
    return flagged / families


def patients(rng) -> tuple[pd.Series, pd.Series, pd.Series]:
    """300 patients of 1–20 images; each patient one scanner (kind) and one diagnosis, the two
    independent: no cue, but images of a patient alike in both."""
    images = rng.integers(1, 21, 300)
    scanners = rng.choice(["a", "b", "c", "d"], 300, p=[0.7, 0.15, 0.1, 0.05])
    diagnoses = rng.integers(0, 2, 300)
    patient = np.repeat(np.arange(300), images)
    return (
        pd.Series(np.repeat(scanners, images)),
        pd.Series(np.repeat(diagnoses, images)),
        pd.Series([f"p{p}" for p in patient]),
    )


def grouped_false_flags(families: int, rng, by_patient: bool) -> float:
    flagged = 0
    for _ in range(families):
        raw, labels, groups = patients(rng)
        table = kinds_by_class(raw, labels, ["0", "1"], groups if by_patient else None)
        flagged += bool(shortcuts(table))
    return flagged / families


def multi_label_false_flags(families: int, rng) -> float:
    """2,000 chest films of 12 sizes (power-law), 14 labels of prevalence 5–40 %, drawn
    independently of the size: any kind named for any label."""
    frequencies = 1 / np.arange(1, 13) ** 1.2
    prevalence = np.linspace(0.05, 0.4, 14)
    flagged = 0
    for _ in range(families):
        raw = pd.Series(rng.choice(12, 2000, p=frequencies / frequencies.sum()).astype(str))
        positives = pd.DataFrame((rng.random((2000, 14)) < prevalence).astype(int))
        flagged += bool(shortcuts(kinds_by_label(raw, positives)))
    return flagged / families


def power(k: int, q: float, families: int, rng) -> float:
    """One kind of ``k`` images, each of class 1 with chance ``q``; the other 1,000 − k
    images each with chance 1/2."""
    raw = pd.Series(["usual"] * (1000 - k) + ["other"] * k)
    named = 0
    for _ in range(families):
        labels = np.r_[rng.random(1000 - k) < 0.5, rng.random(k) < q].astype(int)
        named += "other" in shortcuts(kinds_by_class(raw, pd.Series(labels), ["0", "1"]))
    return named / families


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", type=int, default=1000)
    args = parser.parse_args()
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    designs = {
        "PBC's sizes (967 / 21 / 12 images, 8 classes)": pbc(),
        "dermoscopy-like (5,000 images, 1.8 % malignant, 30 sizes)": dermoscopy(rng),
        "three kinds (900 / 80 / 20), two even classes": three_kinds(),
    }
    rows = [(name, false_flags(d, args.families, rng)) for name, d in designs.items()]
    rows.append(
        (
            "multi-label: 2,000 images, 12 sizes, 14 labels (5–40 %), Holm over kinds × labels",
            multi_label_false_flags(args.families, rng),
        )
    )
    for by_patient in (True, False):
        how = "tested by patient" if by_patient else "tested image by image (not the product)"
        rows.append(
            (
                f"300 patients of 1–20 images, scanner and diagnosis per patient, {how}",
                grouped_false_flags(args.families, rng, by_patient),
            )
        )
    shares = (0.6, 0.7, 0.8, 1.0)
    sizes = (10, 20, 50)
    table = [(k, [power(k, q, args.families // 2, rng) for q in shares]) for k in sizes]
    minutes = (time.perf_counter() - start) / 60
    error = 2 * np.sqrt(ALPHA * (1 - ALPHA) / args.families)
    lines = [
        "# Sizes and modes that go with a class: false flags and power",
        "",
        f"`python bench/shortcuts.py --families {args.families}` ({minutes:.1f} min), through "
        f"`medft.data.shortcuts.kinds_by_class` (permutation test of {DRAWS:,} draws per kind, "
        f"the {KINDS_TESTED} most common kinds, the most common the reference, Holm at "
        f"{ALPHA}).",
        "",
        "## False flags: labels at random, any kind named",
        "",
        f"| design | data sets with a kind named (of {args.families:,}) |",
        "|---|---|",
        *(f"| {name} | {share:.1%} |" for name, share in rows),
        "",
        f"Nominal {ALPHA:.0%}; two Monte-Carlo standard errors ±{error:.1%}.",
        "",
        "## Power: a kind of k images, each of one class with chance q",
        "",
        f"1,000 images, the others of either class with chance 1/2; {args.families // 2:,} "
        "sets a cell. q = 0.5 is no cue.",
        "",
        "| k | " + " | ".join(f"q = {q}" for q in shares) + " |",
        "|---" * (len(shares) + 1) + "|",
        *(f"| {k} | " + " | ".join(f"{p:.0%}" for p in found) + " |" for k, found in table),
        "",
    ]
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
