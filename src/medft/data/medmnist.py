"""MedMNIST v2 (Yang et al., Scientific Data 2023): 2D tasks by name and size → shards.

Downloads are verified against the MD5 that the ``medmnist`` package lists; a local ``.npz``
(often re-saved, so its MD5 differs) is checked for its keys, shapes and dtypes instead.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from medmnist import INFO

from medft.data.download import fetch
from medft.data.options import MedmnistOptions
from medft.data.preprocess import Preprocess
from medft.data.records import label_column, rows_to_write, subsample, subsampled_counts
from medft.data.shards import DatasetMeta, DatasetWriter, describe_raw
from medft.runtime import progress

SIZES = (28, 64, 128, 224)
_TASKS = {
    "binary-class": "binary",
    "multi-class": "multiclass",
    "ordinal-regression": "multiclass",
    "multi-label, binary-class": "multilabel",
}
_SPLITS = {"train": "train", "val": "val", "test": "test"}


def flags_2d() -> list[str]:
    """The 2D MedMNIST task names (``INFO`` also lists the 3D ones)."""
    return sorted(flag for flag in INFO if not flag.endswith("3d"))


def _info(flag: str) -> dict:
    if flag not in flags_2d():
        raise ValueError(f"unknown MedMNIST task {flag!r}; choose one of: {', '.join(flags_2d())}")
    return INFO[flag]


def _suffix(size: int) -> str:
    if size not in SIZES:
        raise ValueError(f"MedMNIST size must be one of {SIZES}, got {size}")
    return "" if size == 28 else f"_{size}"


def download(flag: str, size: int, dest_dir: str | Path) -> Path:
    """Fetch ``{flag}{_size}.npz`` into ``dest_dir``, verified against the published MD5."""
    info, suffix = _info(flag), _suffix(size)
    dest = Path(dest_dir) / f"{flag}{suffix}.npz"
    return fetch(info[f"url{suffix}"], dest, md5=info[f"MD5{suffix}"])


def load_npz(path: str | Path, flag: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (images, labels)}`` after checking keys, shapes and dtypes of a local file."""
    path = Path(path)
    info = _info(flag)
    n_labels = len(info["label"]) if _TASKS[info["task"]] == "multilabel" else 1
    with np.load(path) as npz:
        missing = [
            f"{s}_{k}" for s in _SPLITS for k in ("images", "labels") if f"{s}_{k}" not in npz
        ]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; is it a MedMNIST .npz?")
        splits = {}
        for split in _SPLITS:
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
            channels_ok = images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)
            if images.dtype != np.uint8 or not channels_ok:
                raise ValueError(
                    f"{path}: {split}_images is {images.shape} {images.dtype}; "
                    "expected (N, H, W) or (N, H, W, 3) uint8"
                )
            # Some re-saved copies store single labels as (N,), upstream as (N, 1).
            labels = labels.reshape(len(labels), -1)
            if len(labels) != len(images) or labels.shape[1] != n_labels:
                raise ValueError(
                    f"{path}: {split}_labels is {labels.shape}; "
                    f"expected ({len(images)}, {n_labels})"
                )
            splits[_SPLITS[split]] = (images, labels if n_labels > 1 else labels[:, 0])
    return splits


def prepare(
    npz: str | Path,
    flag: str,
    preprocess: Preprocess,
    out_dir: str | Path,
    options: MedmnistOptions | None = None,
) -> Path:
    """Write a MedMNIST ``.npz`` as a medft dataset (official train/val/test split), subsampled
    as ``options`` say."""
    info = _info(flag)
    options = options or MedmnistOptions(name=flag, source="medmnist", flag=flag, npz=str(npz))
    splits = load_npz(npz, flag)
    classes = [info["label"][str(i)] for i in range(len(info["label"]))]
    meta = DatasetMeta(
        name=options.name,
        task=_TASKS[info["task"]],
        classes=classes,
        image_size=preprocess.crop,
        channels=info["n_channels"],
        source={**options.as_dict(), "npz": str(npz), "resize": preprocess.resize},
        split_sources=dict.fromkeys(splits, "MedMNIST's official split"),
    )
    rows = pd.DataFrame(
        [
            {"split": split, "index": i, "group": "", **label_column(label, meta.multilabel)}
            for split, (_, labels) in splits.items()
            for i, label in enumerate(labels)
        ]
    )
    rows = subsample(rows, options, meta.multilabel)
    meta = replace(meta, subsampled=subsampled_counts(rows))
    rows = rows_to_write(rows)
    with DatasetWriter(out_dir, meta) as writer:
        for row in progress(rows.itertuples(), len(rows), f"prepare {flag}", unit="images"):
            images, labels = splits[row.split]
            writer.add(
                preprocess(images[row.index]),
                id=f"{row.split}-{row.index}",
                split=row.split,
                label=labels[row.index],
                raw=describe_raw(images[row.index]),
                subsampled=row.subsampled,
            )
    return Path(out_dir)
