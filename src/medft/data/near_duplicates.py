"""Near-duplicate images across splits: the same picture re-saved, resized, brightened,
mirrored or turned grey, which exact pixel hashing (``medft.data.duplicates``) cannot see.

Every stored image keeps a 16 × 16 grey thumbnail (box-averaged, 256 bytes in the manifest).
Two images are near-duplicates when their thumbnails correlate at ``THRESHOLD`` or more
(Pearson, each thumbnail against the other's, its left-right and its up-down mirror image):
re-encoding, resizing and small brightness changes barely move a thumbnail, while distinct
images of one modality differ in where their structures lie. An evaluation image that close to
an earlier split's image is a pair; pairs exact hashing already found, and blank images, are
left to it. The threshold and the default policy were chosen on real images
(``bench/results_near_duplicates.md``: recall on made copies, flagged pairs among distinct
images). The dataset's ``near_duplicates`` option:

* ``warn`` (default): the pairs are logged and listed, with thumbnails, in the data card;
* ``error``: preparation stops, naming the first pairs;
* ``drop_from_eval``: those evaluation images are dropped, listed like the exact ones.

Not caught: crops that shift the content by more than a few per cent of the image (2 px of a
28-px MedMNIST image), rotations other than mirroring, strong contrast or colour changes.
Images of two patients can also correlate this closely where a modality's images are alike
(the bench counts such flags): that is why the default warns.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from medft.errors import DataError

POLICIES = ("warn", "error", "drop_from_eval")
# Thumbnail correlation at or above which two images are near-duplicates
# (bench/results_near_duplicates.md).
THRESHOLD = 0.97
SIDE = 16
ORDER = {"train": 0, "val": 1, "test": 2}
SHOWN = 5
CHUNK = 1024  # evaluation images compared at once: bounds the similarity matrix's memory
log = logging.getLogger(__name__)


def thumbnail(image: np.ndarray) -> bytes:
    """``image`` (H, W, C uint8) as a SIDE × SIDE grey thumbnail, for the manifest."""
    from PIL import Image

    grey = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).convert("L")
    return grey.resize((SIDE, SIDE), Image.Resampling.BOX).tobytes()


def _unit(thumbnails) -> np.ndarray:
    """(n, 3, SIDE²): each thumbnail and its two mirror images, zero mean and unit length."""
    grid = np.stack([np.frombuffer(t, np.uint8) for t in thumbnails]).reshape(-1, SIDE, SIDE)
    views = np.stack([grid, grid[:, :, ::-1], grid[:, ::-1, :]], axis=1).astype(np.float32)
    views = views.reshape(len(grid), 3, -1)
    views -= views.mean(axis=2, keepdims=True)
    norm = np.linalg.norm(views, axis=2, keepdims=True)
    return np.divide(views, norm, out=np.zeros_like(views), where=norm > 0)


def similarity(query, reference) -> np.ndarray:
    """The correlation of each ``query`` thumbnail with each ``reference`` thumbnail, the
    closest of the reference's three views: (len(query), len(reference))."""
    q, r = _unit(query)[:, 0], _unit(reference)
    return (q @ r.reshape(-1, r.shape[2]).T).reshape(len(q), len(r), 3).max(axis=2)


def pairs(manifest: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Evaluation images whose thumbnail correlates at ``threshold`` or more with an earlier
    split's image (or its mirror images), exact copies and blank images aside: id, split,
    near_of, near_split, similarity; the closest earlier image per evaluation image."""
    columns = ["id", "split", "near_of", "near_split", "similarity"]
    if "thumbnail" not in manifest:
        return pd.DataFrame(columns=columns)
    content = manifest[~manifest["blank"].astype(bool)] if "blank" in manifest else manifest
    rank = content["split"].map(ORDER).to_numpy()
    found = []
    for split in ("val", "test"):
        later, earlier = content[content["split"] == split], content[rank < ORDER[split]]
        if later.empty or earlier.empty:
            continue
        hashes = earlier["pixel_hash"].to_numpy()
        for start in range(0, len(later), CHUNK):
            part = later.iloc[start : start + CHUNK]
            close = similarity(part["thumbnail"], earlier["thumbnail"])
            close[part["pixel_hash"].to_numpy()[:, None] == hashes[None]] = -1.0
            nearest = close.argmax(axis=1)
            best = close[np.arange(len(part)), nearest]
            for i in np.flatnonzero(best >= threshold):
                other = earlier.iloc[nearest[i]]
                found.append(
                    (part["id"].iloc[i], split, other["id"], other["split"], float(best[i]))
                )
    return pd.DataFrame(found, columns=columns)


def resolve(
    manifest: pd.DataFrame, policy: str, dataset: str, every: pd.DataFrame
) -> tuple[pd.DataFrame, dict]:
    """The manifest to write and what meta.json records: ``every`` is ``manifest`` with the
    training images subsampling removed (they are still a training image's near copy)."""
    if policy not in POLICIES:
        raise DataError(
            f"dataset {dataset!r}: near_duplicates must be one of {', '.join(POLICIES)}"
        )
    every = every[every["id"].isin(manifest["id"]) | (every["split"] == "train")]
    found = pairs(every)
    record = {"policy": policy, "threshold": THRESHOLD, "pairs": found.to_dict("records")}
    if found.empty:
        return manifest, record
    shown = "; ".join(
        f"{r.split} {r.id!r} ~ {r.near_split} {r.near_of!r} (r = {r.similarity:.3f})"
        for r in found.head(SHOWN).itertuples()
    )
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    if policy == "error":
        raise DataError(
            f"dataset {dataset!r}: {len(found)} evaluation image(s) are near copies of an "
            f"earlier split's image (thumbnail correlation ≥ {THRESHOLD}): {shown}{more}. "
            "Look at them (a re-saved or resized copy is leakage), then remove them, or set "
            "`near_duplicates: drop_from_eval` or `warn`."
        )
    if policy == "warn":
        log.warning(
            "dataset %r: %d evaluation image(s) look like near copies of an earlier split's "
            "image: %s%s; listed in the data card (`near_duplicates: drop_from_eval` drops them)",
            dataset,
            len(found),
            shown,
            more,
        )
        return manifest, record
    from medft.data.duplicates import drop_from_eval

    return drop_from_eval(manifest, found, dataset, "is a near copy of"), record
