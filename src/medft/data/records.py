"""Image records → a prepared dataset, for every source that lists image files.

A source parses its raw layout into a records table — one row per image with ``path``, the
label (``label``: class index) or labels (``labels``: list of 0/1), ``group`` (patient, study or
video; may be empty) and ``split`` (train/val/test, or empty where the split is to be carved) —
and calls ``write_records``. That function checks the table, carves the missing splits, reads
and preprocesses every image, and writes the shards; any error names the file or row at fault
and leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import GroupShuffleSplit, train_test_split
from tqdm import tqdm

from medft.data.preprocess import Preprocess
from medft.data.shards import SPLITS, DatasetMeta, DatasetWriter


class DataError(ValueError):
    """Bad input data; the message names the file or row and says what to do."""


@dataclass(frozen=True)
class SplitPlan:
    """How to carve missing splits: fractions of the images (by group where groups exist)."""

    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0


def check_records(records: pd.DataFrame, classes: list[str], multilabel: bool, where: str) -> None:
    """Raise ``DataError`` for a duplicate path, a missing file, an unknown split, a class with no
    images, or a group that appears in two splits."""
    duplicated = records[records["path"].duplicated(keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]["path"]
        rows = duplicated.index[duplicated["path"] == first].tolist()
        raise DataError(f"{where}: {first} is listed twice (rows {rows}); remove the duplicate")
    for row, path in records["path"].items():
        if not Path(path).is_file():
            raise DataError(
                f"{where}, row {row}: image file {path} does not exist; fix the path "
                "or remove the row"
            )
    bad_split = records[~records["split"].isin([*SPLITS, ""])]
    if not bad_split.empty:
        row = bad_split.index[0]
        raise DataError(
            f"{where}, row {row}: split {bad_split.loc[row, 'split']!r} is not one of "
            f"{SPLITS} (or empty, to be carved)"
        )
    counts = (
        np.stack(records["labels"].to_numpy()).sum(0)
        if multilabel
        else np.bincount(records["label"], minlength=len(classes))
    )
    empty = [c for c, n in zip(classes, counts, strict=True) if n == 0]
    if empty:
        raise DataError(
            f"{where}: class {empty[0]!r} has no images; remove it from the class list "
            "or add images for it"
        )
    grouped = records[(records["group"] != "") & (records["split"] != "")]
    spread = grouped.groupby("group")["split"].nunique()
    if (spread > 1).any():
        group = spread[spread > 1].index[0]
        rows = grouped.index[grouped["group"] == group].tolist()
        splits = sorted(grouped.loc[grouped["group"] == group, "split"].unique())
        raise DataError(
            f"{where}: patient/group {group!r} is in splits {splits} (rows {rows}); "
            "a patient's images must all be in one split"
        )


def _carve(frame: pd.DataFrame, fraction: float, seed: int, multilabel: bool) -> pd.Index:
    """Index of the rows to move out: whole groups when there are groups, else stratified."""
    if frame["group"].ne("").all():
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, taken = next(splitter.split(frame, groups=frame["group"]))
        return frame.index[taken]
    strata = frame["labels"].map(tuple) if multilabel else frame["label"]
    # Stratify when every stratum can give one row to each side; tiny sets fall back to random.
    n_taken = int(np.ceil(fraction * len(frame)))
    feasible = strata.value_counts().min() >= 2 and strata.nunique() <= min(
        n_taken, len(frame) - n_taken
    )
    stratify = strata if feasible else None
    _, taken = train_test_split(
        frame.index, test_size=fraction, random_state=seed, stratify=stratify
    )
    return pd.Index(taken)


def carve_splits(records: pd.DataFrame, plan: SplitPlan, multilabel: bool) -> pd.DataFrame:
    """Fill empty splits: test (when no row has one) then val from the training rows."""
    records = records.copy()
    if not (records["split"] == "test").any():
        pool = records[records["split"].isin(["", "train"])]
        records.loc[_carve(pool, plan.test_fraction, plan.seed, multilabel), "split"] = "test"
    records.loc[records["split"] == "", "split"] = "train"
    if not (records["split"] == "val").any():
        train = records[records["split"] == "train"]
        records.loc[_carve(train, plan.val_fraction, plan.seed, multilabel), "split"] = "val"
    return records


def read_image(path: str, where: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Exception as error:  # PIL raises many types for broken files
        raise DataError(
            f"{where}: cannot read image {path} ({error}); re-export the file or remove its row"
        ) from None


def write_records(
    records: pd.DataFrame,
    *,
    name: str,
    task: str,
    classes: list[str],
    preprocess: Preprocess,
    out_dir: str | Path,
    where: str,
    source: dict,
    plan: SplitPlan = SplitPlan(),
    read=read_image,
) -> Path:
    """Check, split, preprocess and write ``records`` (see the module docstring)."""
    multilabel = task == "multilabel"
    # A copy, so that the caller's table is left as it was.
    records = records.copy() if records.index.is_unique else records.reset_index(drop=True)
    for column, default in (("group", ""), ("split", "")):
        if column not in records:
            records[column] = default
    records["group"] = records["group"].fillna("").astype(str)
    records["split"] = records["split"].fillna("").astype(str)
    check_records(records, classes, multilabel, where)
    records = carve_splits(records, plan, multilabel)
    first = preprocess(read(records["path"].iloc[0], f"{where}, row {records.index[0]}"))
    meta = DatasetMeta(
        name=name,
        task=task,
        classes=list(classes),
        image_size=preprocess.crop,
        channels=first.shape[2],
        source={**source, "resize": preprocess.resize},
    )
    with DatasetWriter(out_dir, meta) as writer:
        for row in tqdm(
            records.itertuples(), total=len(records), desc=f"prepare {name}", mininterval=5
        ):
            image = preprocess(read(row.path, f"{where}, row {row.Index}"))
            if image.shape[2] != meta.channels:  # a grey image in a colour set, or vice versa
                image = (
                    np.repeat(image, 3, axis=2)
                    if image.shape[2] == 1
                    else image.mean(axis=2, keepdims=True).astype(np.uint8)
                )
            label = row.labels if multilabel else row.label
            writer.add(
                image,
                id=row.id if "id" in records else row.path,
                split=row.split,
                label=label,
                group=row.group,
            )
    return Path(out_dir)
