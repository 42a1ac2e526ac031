"""Images shared between splits (leakage) and within a split, found at preparation.

Every image's stored pixels — what the model sees, after decoding and preprocessing — are
hashed as the writer adds them. Two files with the same decoded pixels always collide; two
different images collide only where preprocessing makes them identical, which the model cannot
tell apart either. An image in an evaluation split (val, test) that is also in an earlier split
(train; for test, train or val) is leakage, handled by the dataset's ``duplicates`` option:

* ``error`` (default): preparation stops, naming the first pairs and the count;
* ``drop_from_eval``: those images leave the evaluation split, listed in meta.json's
  ``duplicates`` and the data card;
* ``keep``: they stay, counted.

Duplicates within one split are counted, never dropped. Blank images (one value everywhere:
the empty edge slices of a volume, a failed export) are counted apart and never compared: any
two are identical, and no model can tell them apart anyway.
"""

from __future__ import annotations

import pandas as pd

from medft.errors import DataError

POLICIES = ("error", "drop_from_eval", "keep")
ORDER = {"train": 0, "val": 1, "test": 2}
SHOWN = 5


def leaks(manifest: pd.DataFrame) -> pd.DataFrame:
    """Evaluation images whose pixels an earlier split also holds: id, split, duplicate_of
    (the earlier image's id), duplicate_split."""
    manifest = _content(manifest)
    rank = manifest["split"].map(ORDER)
    first = (
        manifest.assign(rank=rank)
        .sort_values(["rank"], kind="stable")
        .drop_duplicates("pixel_hash")[["pixel_hash", "id", "split", "rank"]]
        .rename(columns={"id": "duplicate_of", "split": "duplicate_split", "rank": "first"})
    )
    joined = manifest.assign(rank=rank).merge(first, on="pixel_hash")
    leaked = joined[joined["rank"] > joined["first"]]
    return leaked[["id", "split", "duplicate_of", "duplicate_split"]].reset_index(drop=True)


def within_split(manifest: pd.DataFrame) -> dict[str, int]:
    """Per split, the images whose pixels another image of the same split also has."""
    manifest = _content(manifest)
    repeated = manifest.duplicated(["split", "pixel_hash"], keep="first")
    return {s: int(n) for s, n in manifest[repeated].groupby("split").size().items()}


def _content(manifest: pd.DataFrame) -> pd.DataFrame:
    """The images that are not blank (manifests written before medft 0.4 have no flag)."""
    return manifest[~manifest["blank"]] if "blank" in manifest else manifest


def blank(manifest: pd.DataFrame) -> dict[str, int]:
    """Per split, the blank images."""
    if "blank" not in manifest:
        return {}
    return {s: int(n) for s, n in manifest[manifest["blank"]].groupby("split").size().items()}


def resolve(
    manifest: pd.DataFrame, policy: str, dataset: str, subsampled: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict]:
    """The manifest to write and what meta.json records of its duplicates. ``subsampled``:
    training images subsampling removed (their hashes): an evaluation image equal to one is
    still a leak, so the evaluation split does not change with ``train_fraction``."""
    if policy not in POLICIES:
        raise DataError(f"dataset {dataset!r}: duplicates must be one of {', '.join(POLICIES)}")
    every = (
        manifest
        if subsampled is None or subsampled.empty
        else pd.concat([manifest, subsampled[manifest.columns]], ignore_index=True)
    )
    leaked = leaks(every)
    record = {
        "policy": policy,
        "across_splits": len(leaked),
        "within_split": within_split(manifest),
        "blank": blank(manifest),
        "dropped": [],
    }
    if leaked.empty or policy == "keep":
        return manifest, record
    if policy == "error":
        pairs = "; ".join(
            f"{r.split} {r.id!r} = {r.duplicate_split} {r.duplicate_of!r}"
            for r in leaked.head(SHOWN).itertuples()
        )
        more = f" (and {len(leaked) - SHOWN} more)" if len(leaked) > SHOWN else ""
        raise DataError(
            f"dataset {dataset!r}: {len(leaked)} evaluation image(s) have the same pixels as an "
            f"image of an earlier split — the evaluation would score memorisation: {pairs}{more}. "
            "Remove them from one split, or set `duplicates: drop_from_eval` on the dataset to "
            "drop them from val/test (listed in meta.json and the data card), or "
            "`duplicates: keep`."
        )
    record["dropped"] = leaked.to_dict("records")
    return drop_from_eval(manifest, leaked, dataset, "duplicates"), record


def drop_from_eval(manifest: pd.DataFrame, found: pd.DataFrame, dataset: str, what: str):
    """``manifest`` without the evaluation images ``found`` lists (split, id); an evaluation
    split left empty is an error: ``what`` says how its images relate to an earlier split's."""
    dropped = set(zip(found["split"], found["id"], strict=True))
    keys = zip(manifest["split"], manifest["id"], strict=True)
    kept = manifest[[key not in dropped for key in keys]].reset_index(drop=True)
    for split in ("val", "test"):
        if (manifest["split"] == split).any() and not (kept["split"] == split).any():
            raise DataError(
                f"dataset {dataset!r}: every {split} image {what} an earlier split's; "
                "nothing would be left to evaluate"
            )
    return kept
