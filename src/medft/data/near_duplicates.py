"""Near-duplicate images across splits: the same picture re-saved, resized, brightened,
mirrored or turned grey, which exact pixel hashing (``medft.data.duplicates``) cannot see.

Every stored image keeps a 16 × 16 grey thumbnail (box-averaged, 256 bytes in the manifest).
Two images are near-duplicates when their thumbnails correlate at ``THRESHOLD`` or more
(Pearson, each thumbnail against the other's, its left-right and its up-down mirror image, and
against either one zoomed about its centre by up to ``max(ZOOMS)``, the view of a copy whose
borders were cropped): re-encoding, resizing, border crops and small brightness changes barely
move a thumbnail so compared, while distinct images of one modality differ in where their
structures lie. An evaluation image that close to
an earlier split's image is a pair; pairs exact hashing already found, and blank images, are
left to it. The threshold and the default policy were chosen on real images
(``bench/results_near_duplicates.md``: recall on made copies, flagged pairs among distinct
images). The dataset's ``near_duplicates`` option:

* ``warn`` (default): the pairs are logged and listed, with thumbnails, in the data card;
* ``error``: preparation stops, naming the first pairs;
* ``drop_from_eval``: those evaluation images are dropped, listed like the exact ones.

Not caught: crops off one side (the content moves, not only scales), crops of more than about
10 % a side, rotations other than mirroring, strong contrast or colour changes; fine-grained
images (blood-cell smears) lose part of a cropped copy to the thumbnail's blur.
Images of two patients can also correlate this closely where a modality's images are alike
(the bench counts such flags): that is why the default warns.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd

from medft.errors import DataError

POLICIES = ("warn", "error", "drop_from_eval")
# Thumbnail correlation at or above which two images are near-duplicates
# (bench/results_near_duplicates.md).
THRESHOLD = 0.97
SIDE = 16
# Zooms about the centre compared: a copy cropped by c a side is the original zoomed by
# 1 / (1 − 2c); 1.3 covers c up to ~11 %, the steps keep a sharp image's mismatch under 2.5 %.
ZOOMS = (1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3)
ORDER = {"train": 0, "val": 1, "test": 2}
SHOWN = 5
CHUNK = 1024  # evaluation images compared at once: bounds the similarity matrix's memory
log = logging.getLogger(__name__)


def thumbnail(image: np.ndarray) -> bytes:
    """``image`` (H, W, C uint8) as a SIDE × SIDE grey thumbnail, for the manifest."""
    from PIL import Image

    grey = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).convert("L")
    return grey.resize((SIDE, SIDE), Image.Resampling.BOX).tobytes()


@functools.cache
def _zoom_matrix(zoom: float) -> np.ndarray:
    """(SIDE², SIDE²): a flat thumbnail times its transpose is the thumbnail zoomed in by
    ``zoom`` about its centre (bilinear, edges held)."""
    centre = SIDE / 2
    source = centre + (np.arange(SIDE) + 0.5 - centre) / zoom - 0.5
    low = np.floor(source).astype(int)
    weights = np.zeros((SIDE, SIDE), np.float32)  # 1-D: output pixel → input pixel
    for index, weight in ((low, 1 - (source - low)), (low + 1, source - low)):
        np.add.at(weights, (np.arange(SIDE), np.clip(index, 0, SIDE - 1)), weight)
    return np.kron(weights, weights)


def _unit(views: np.ndarray) -> np.ndarray:
    """Flat views, each zero mean and unit length (a blank one stays zero)."""
    views = views - views.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(views, axis=-1, keepdims=True)
    return np.divide(views, norm, out=np.zeros_like(views), where=norm > 0)


def _flat(thumbnails) -> np.ndarray:
    return np.stack([np.frombuffer(t, np.uint8) for t in thumbnails]).astype(np.float32)


def similarity(query, reference) -> np.ndarray:
    """The correlation of each ``query`` thumbnail with each ``reference`` thumbnail, the
    closest of their views: (len(query), len(reference)). The query as it is against the
    reference and its two mirror images at every zoom (the query cropped from the
    reference), and the query at every zoom against those three as they are (the reference
    cropped from the query). One zoom's views at a time: memory stays at a few query ×
    reference matrices whatever the number of views."""
    q = _flat(query)
    r = _flat(reference).reshape(-1, SIDE, SIDE)
    mirrors = [m.reshape(len(r), -1) for m in (r, r[:, :, ::-1], r[:, ::-1, :])]
    as_they_are = [_unit(m) for m in mirrors]
    query_as_it_is = _unit(q)
    best = np.full((len(q), len(r)), -1.0, np.float32)
    for zoom in ZOOMS:
        matrix = _zoom_matrix(zoom).T
        for mirror, unzoomed in zip(mirrors, as_they_are, strict=True):
            zoomed = unzoomed if zoom == 1.0 else _unit(mirror @ matrix)
            np.maximum(best, query_as_it_is @ zoomed.T, out=best)
            if zoom != 1.0:
                np.maximum(best, _unit(q @ matrix) @ unzoomed.T, out=best)
    return best


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
