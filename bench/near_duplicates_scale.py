"""How the near-duplicate check's flags among distinct images grow with the size of the
training split, and how each evaluation image's closest training image spreads (what the
data card's histogram shows: ``medft.data.near_duplicates.closeness``).

Run: ``python bench/near_duplicates_scale.py``; writes ``bench/results_near_duplicates_scale.md``.
Needs ``../shared/data`` (BreastMNIST, PneumoniaMNIST — the non-official copy — and PBC).

An evaluation image is flagged when one training image comes within the threshold, so with N
training images each a chance ``p`` of coming that close, ``1 − (1 − p)^N`` of the evaluation
images are flagged: it grows with N. The bench compares each set's evaluation images with
random subsets of its training split (``DRAWS`` a size, exact copies aside, as
``bench/near_duplicates.py`` counts flags), through the product's ``similarity``; fits ``p``
at the whole split, checks the fit at the smaller sizes, and reads it at the training splits
of the paper's largest tasks. Real sets hold real near copies, which subsets thin alike, so
the flags and the fitted ``p`` are an upper bound on chance.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import near_duplicates as bench  # noqa: E402  (the sets, as bench/near_duplicates.py loads them)

from medft.data.near_duplicates import THRESHOLD, closeness, similarity  # noqa: E402

OUT = Path(__file__).with_name("results_near_duplicates_scale.md")
SIZES = (250, 500, 1000, 2000)
DRAWS = 20
THRESHOLDS = (0.97, THRESHOLD, 0.98)
# Training images of the paper's largest tasks (docs/data.md; the main bench's "Time").
PAPER_SIZES = {"ISIC 2020": 26_160, "CheXpert": 223_414}
# Closer than any pair of distinct images the bench has met: a set with evaluation images this
# close to a training image holds copies (BreastMNIST's, from BUSI).
COPIES = 0.99


def closest_matrix(name: str) -> np.ndarray:
    """Each evaluation image against each training image, exact copies at −1."""
    train, evaluation, preprocess = bench.SETS[name]()
    train_h, eval_h = bench.hashes(train, preprocess), bench.hashes(evaluation, preprocess)
    close = similarity(eval_h["thumbnail"], train_h["thumbnail"])
    same = eval_h["pixel_hash"].to_numpy()[:, None] == train_h["pixel_hash"].to_numpy()[None]
    return np.where(same, -1.0, close)


def closest_among(close: np.ndarray, size: int, rng) -> list[np.ndarray]:
    """Each evaluation image's closest training image's similarity among ``size`` of them:
    ``DRAWS`` random subsets (the whole split once)."""
    if size >= close.shape[1]:
        return [close.max(1)]
    return [close[:, rng.choice(close.shape[1], size, replace=False)].max(1) for _ in range(DRAWS)]


def flagged_per_1000(closest: list[np.ndarray], threshold: float) -> float:
    """Evaluation images per 1,000 at ``threshold`` or above, over the draws."""
    return 1000 * float(np.mean([(best >= threshold).mean() for best in closest]))


def per_pair(rate_per_1000: float, size: int) -> float:
    """The chance ``p`` one training image comes within the threshold, from the share
    flagged among ``size``: 1 − (1 − p)^size = rate."""
    return 1 - (1 - rate_per_1000 / 1000) ** (1 / size)


def at_size(p: float, size: int) -> float:
    return 1000 * (1 - (1 - p) ** size)


def main() -> None:
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    lines = []
    spreads = []
    for name in bench.SETS:
        close = closest_matrix(name)
        whole = close.shape[1]
        sizes = (*(s for s in SIZES if s < whole), whole)
        lines += [
            f"## {name} ({close.shape[0]:,} evaluation images, {whole:,} training)",
            "",
            "| threshold | "
            + " | ".join(f"N = {s:,}" for s in sizes)
            + " | p per pair | "
            + " | ".join(f"{k} (N = {n:,}), predicted" for k, n in PAPER_SIZES.items())
            + " |",
            "|---" * (len(sizes) + 2 + len(PAPER_SIZES)) + "|",
        ]
        copies = int((close.max(1) >= COPIES).sum())
        closest = [closest_among(close, s, rng) for s in sizes]
        for threshold in THRESHOLDS:
            observed = [flagged_per_1000(draws, threshold) for draws in closest]
            p = per_pair(observed[-1], whole)
            cells = [
                f"{o:.1f}" + ("" if s == whole else f" ({at_size(p, s):.1f})")
                for s, o in zip(sizes, observed, strict=True)
            ]
            if copies:  # the flags are the set's own copies: not chance, nothing to read on
                fitted, paper = f"{p:.2e}", ["—"] * len(PAPER_SIZES)
            elif p == 0:  # none flagged: the rule of three's 95 % bound on p, and what it allows
                p = 3 / (close.shape[0] * whole)
                fitted = f"0 (< {p:.1e})"
                paper = [f"≤ {at_size(p, n):.0f}" for n in PAPER_SIZES.values()]
            else:
                fitted, paper = f"{p:.2e}", [f"{at_size(p, n):.0f}" for n in PAPER_SIZES.values()]
            lines.append(f"| {threshold} | {' | '.join(cells)} | {fitted} | {' | '.join(paper)} |")
        for q, label in ((50, "median"), (99, "99th percentile")):
            shifts = [np.mean([np.percentile(best, q) for best in draws]) for draws in closest]
            cells = [f"closest r, {label}", *(f"{v:.3f}" for v in shifts)]
            lines.append("| " + " | ".join(cells + [""] * (1 + len(PAPER_SIZES))) + " |")
        lines += [
            "",
            "In brackets: predicted from the whole split's p. Per 1,000 evaluation images; the "
            "last two rows: each evaluation image's closest training image's similarity, its "
            "median and 99th percentile over the evaluation images (mean over the draws)."
            + (
                f" {copies} evaluation images have a training image at r ≥ {COPIES}: the set's "
                "flags are mostly its own near copies, which do not grow with chance, so its p "
                "is not chance's and is not read at other sizes."
                if copies
                else ""
            ),
            "",
        ]
        spread = closeness(close.max(1))
        spreads.append(
            f"| {name} | {spread['quantiles']['50']:.3f} | {spread['quantiles']['90']:.3f} | "
            f"{spread['quantiles']['99']:.3f} | {int((close.max(1) >= THRESHOLD).sum())} | "
            f"{copies} |"
        )
    lines += [
        "## How each evaluation image's closest training image spreads (the data card's histogram)",
        "",
        f"| set | median r | 90th percentile | 99th percentile | r ≥ {THRESHOLD} | r ≥ {COPIES} |",
        "|---|---|---|---|---|---|",
        *spreads,
        "",
    ]
    minutes = (time.perf_counter() - start) / 60
    header = [
        "# Near-duplicates: flags among distinct images against the training split's size",
        "",
        f"`python bench/near_duplicates_scale.py` ({minutes:.1f} min). Each set's evaluation "
        "images (MedMNIST: val and test; PBC: a seeded 20 %) against random subsets of its "
        f"training images ({DRAWS} draws a size; the whole split once), exact copies aside, "
        "through the product's `similarity`. Flagged: evaluation images per 1,000 with a "
        "training image at or above the threshold — real near copies included (they thin with "
        "the subset alike), so an upper bound on chance. Predicted: 1,000 · (1 − (1 − p)^N), "
        "with each training image's chance p of coming that close fitted at the whole split.",
        "",
    ]
    OUT.write_text("\n".join(header + lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
