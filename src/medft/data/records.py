"""Image records → a prepared dataset, for every source that lists image files.

A source parses its raw layout into a records table — one row per image with ``path``, the
label (``label``: class index) or labels (``labels``: list of 0/1), ``group`` (patient, study or
video; may be empty) and ``split`` (train/val/test, or empty where the split is to be carved) —
and calls ``write_records``. That function checks the table, carves the missing splits, reads
and preprocesses every image, and writes the shards; any error names the file or row at fault
and leaves nothing behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from medft.data import dicom, stacks
from medft.data.options import SourceOptions, SplitPlan
from medft.data.preprocess import Preprocess
from medft.data.readers import FileReader, file_kind, printable
from medft.data.shards import SPLITS, DatasetMeta, DatasetWriter, describe_raw
from medft.errors import DataError
from medft.runtime import progress

log = logging.getLogger(__name__)
# Random group splits tried for one that gives every class to both sides.
GROUP_DRAWS = 50
PATIENT_ID_GROUP = "PatientID "  # the prefix of a group read from DICOM headers


def check_records(records: pd.DataFrame, classes: list[str], multilabel: bool, where: str) -> None:
    """Raise ``DataError`` for fewer than two classes, a duplicate path, a missing file, an
    unknown split or a class with no images."""
    if len(classes) < 2:
        raise DataError(f"{where}: classes {classes}: a task needs at least two classes")
    duplicated = records[records["path"].duplicated(keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]["path"]
        rows = duplicated.index[duplicated["path"] == first].tolist()
        raise DataError(f"{where}: {first} is listed twice (rows {rows}); remove the duplicate")
    for row, path in records["path"].items():
        if not Path(path).is_file():
            raise DataError(
                f"{where}, row {row}: image file {printable(path)} does not exist; fix the "
                "path or remove the row"
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


def check_groups(records: pd.DataFrame, where: str) -> None:
    """A group (patient) in two given splits is a leak: named with its rows, a file in each
    split, and where the source took its groups (``GROUPS_FROM``) when that is the likelier
    fault."""
    grouped = records[(records["group"] != "") & (records["split"] != "")]
    spread = grouped.groupby("group")["split"].nunique()
    if not (spread > 1).any():
        return
    group = spread[spread > 1].index[0]
    rows = grouped[grouped["group"] == group]
    files = "; ".join(
        f"{split}: {printable(paths.iloc[0])}" + (f" and {len(paths) - 1} more" * (len(paths) > 1))
        for split, paths in rows.groupby("split")["path"]
    )
    origin = (
        "give a patient column (`group_column`) if the files' Patient ID names several patients"
        if group.startswith(PATIENT_ID_GROUP)
        else records.attrs.get(GROUPS_FROM)
    )
    raise DataError(
        f"{where}: patient/group {group!r} is in splits {sorted(rows['split'].unique())} "
        f"(rows {rows.index.tolist()}; {files}); a patient's images must all be in one split. "
        f"Move them into one split{f', or {origin}' if origin else ''}"
    )


def dicom_patients(records: pd.DataFrame, where: str) -> pd.DataFrame:
    """DICOM files without a group of their own grouped by the patient their header names
    (Patient ID): a CT's slices listed without a patient column, or lying loose in a class
    folder, would otherwise be carved into training and evaluation slice by slice. Not where
    every file names the same patient (an anonymiser's one value): then they stay ungrouped,
    and a warning says so."""
    loose = records.index[
        (records["group"] == "") & records["path"].map(lambda p: file_kind(p) == "dicom")
    ]
    if len(loose) < 2:
        return records
    ids = pd.Series(
        [dicom.header(records.at[i, "path"], f"{where}, row {i}").patient for i in loose],
        loose,
    )
    named = ids[ids != ""]
    if named.nunique() == 1 and len(named) == len(loose):
        log.warning(
            "%s: every DICOM file names one patient (%r; anonymised?), so none is grouped by "
            "patient: give a patient column (`group_column`) or patient sub-folders if the "
            "images are of several patients",
            where,
            named.iloc[0],
        )
        return records
    records = records.copy()
    records.loc[named.index, "group"] = PATIENT_ID_GROUP + named
    return records


def check_splits(
    records: pd.DataFrame, classes: list[str], multilabel: bool, where: str, plan: SplitPlan
) -> None:
    """After carving: every split exists and can rank the classes. Single-label: at least two
    classes per split. Multi-label: every label positive somewhere in training. A class or
    label missing from validation or evaluation (its AUROC and AP are undefined there) is
    warned about by name."""
    fix = "add images, or change `val_fraction` / `test_fraction` / the split column"
    grouped = records["group"].ne("")
    if grouped.any():
        # Whole groups are carved: a few patients can leave a split one class, however many
        # images they hold.
        groups = records.loc[grouped, "group"].nunique()
        fix += f"; splits hold whole patients/groups, and there are {groups}"
    for split in SPLITS:
        rows = records[records["split"] == split]
        if rows.empty and split == "val" and plan.val_fraction == 0:
            continue  # no validation split, as asked (`val_fraction: 0`)
        if rows.empty:
            raise DataError(
                f"{where}: the {split} split is empty; the dataset is too small ({fix})"
            )
        present = (
            np.stack(rows["labels"].to_numpy()).sum(0) > 0
            if multilabel
            else np.bincount(rows["label"], minlength=len(classes)) > 0
        )
        absent = [c for c, here in zip(classes, present, strict=True) if not here]
        if multilabel and split == "train" and absent:
            raise DataError(
                f"{where}: label(s) {absent} are never positive in the train split; "
                f"the model cannot learn them ({fix})"
            )
        if not multilabel and present.sum() < 2:
            only = [c for c, here in zip(classes, present, strict=True) if here]
            raise DataError(
                f"{where}: the {split} split ({len(rows)} image(s)) holds only class {only}; "
                f"every split needs at least two classes ({fix})"
            )
        if absent and split != "train":
            log.warning(
                "%s: %s %s never %s in the %s split: AUROC and mAP are undefined there",
                where,
                "label(s)" if multilabel else "class(es)",
                absent,
                "positive" if multilabel else "present",
                split,
            )


# The records' attribute where a source lists the files it found and left out, by kind
# ({what: [paths]}): the data card shows them.
LEFT_OUT = "left_out"
# The records' attribute where a source says how it found its groups and the fix if they are
# not patients: said when a group is in two given splits.
GROUPS_FROM = "groups_from"
SUBSAMPLED = "subsampled"  # the records column: the option that removed a row, else ""


def subsample(records: pd.DataFrame, options: SourceOptions, multilabel: bool) -> pd.DataFrame:
    """``records`` with the ``SUBSAMPLED`` column marking the rows that
    ``options.train_fraction`` removes from the training split, then those that
    ``options.max_images_per_class`` removes per class in each split. Seeded; whole patients go
    first (patients in a random order fixed before any carving, a patient's images together);
    the fraction is stratified where there are no groups. Rows are marked, not dropped:
    duplicates are resolved against the whole training split (``write_records``), so the
    evaluation splits are one set at every fraction."""
    fraction, cap = options.train_fraction, options.max_images_per_class
    records = records.assign(**{SUBSAMPLED: ""})
    if fraction is None and cap is None:
        return records
    rng = np.random.default_rng(options.subsample_seed)
    groups = records["group"].where(records["group"] != "", records.index.astype(str))
    rank = groups.map(pd.Series(rng.permutation(groups.nunique()), index=groups.unique()))
    strata = records["labels"].map(tuple) if multilabel else records["label"]
    if fraction is not None and fraction < 1:
        train = records[records["split"] == "train"]
        records.loc[_carve(train, 1 - fraction, options.subsample_seed, multilabel), SUBSAMPLED] = (
            "train_fraction"
        )
    if cap is not None:
        present = records[records[SUBSAMPLED] == ""]
        order = present.assign(_rank=rank, _stratum=strata).sort_values("_rank", kind="stable")
        kept = order.groupby(["split", "_stratum"], sort=False).head(cap).index
        records.loc[present.index.difference(kept), SUBSAMPLED] = "max_images_per_class"
    return records


def subsampled_counts(records: pd.DataFrame) -> dict[str, dict[str, int]]:
    """For the data card: per subsampling option, the images it removed from each split."""
    removed = records[records[SUBSAMPLED] != ""]
    return {
        option: {split: int(n) for split, n in rows["split"].value_counts().items()}
        for option, rows in removed.groupby(SUBSAMPLED)
    }


def rows_to_write(records: pd.DataFrame) -> pd.DataFrame:
    """What a writer reads of ``subsample``'s records: the rows kept, and the training rows
    subsampling removed — read and hashed only, so that an evaluation image equal to one of
    them is the same leak at every fraction (``DatasetWriter.add``'s ``subsampled``).
    Evaluation rows the cap removed are not read."""
    return records[(records[SUBSAMPLED] == "") | (records["split"] == "train")]


def label_column(label, multilabel: bool) -> dict:
    """A records row's label field(s), for sources that build records from arrays."""
    return {"labels": tuple(int(v) for v in label)} if multilabel else {"label": int(label)}


def _carve(frame: pd.DataFrame, fraction: float, seed: int, multilabel: bool) -> pd.Index:
    """Index of the rows to move out: whole groups when there are groups (an image without one
    is its own group, so a partly grouped set never splits a group), else stratified."""
    if frame["group"].ne("").any():
        groups = frame["group"].where(frame["group"] != "", "row " + frame.index.astype(str))
        return _carve_groups(frame, groups, fraction, seed, multilabel)
    strata = frame["labels"].map(tuple) if multilabel else frame["label"]
    n_taken = int(np.ceil(fraction * len(frame)))
    if not multilabel:  # a small set still gives every class to the carved split
        n_taken = max(n_taken, min(strata.nunique(), len(frame) - strata.nunique()))
    # Stratify when every stratum can give one row to each side; tiny sets fall back to random.
    feasible = strata.value_counts().min() >= 2 and strata.nunique() <= min(
        n_taken, len(frame) - n_taken
    )
    stratify = strata if feasible else None
    _, taken = train_test_split(
        frame.index, test_size=n_taken, random_state=seed, stratify=stratify
    )
    return pd.Index(taken)


def _carve_groups(
    frame: pd.DataFrame, groups: pd.Series, fraction: float, seed: int, multilabel: bool
) -> pd.Index:
    """Whole groups, drawn at random; draws that leave a class out of either side are redrawn
    (up to GROUP_DRAWS times), since a split without a class cannot rank it. Single-label only:
    multi-label sets keep the first draw."""
    size: float | int = fraction
    if not multilabel:  # as many groups as classes at least: a small set gives each a chance
        classes, n_groups = frame["label"].nunique(), groups.nunique()
        size = max(int(np.ceil(fraction * n_groups)), min(classes, n_groups - classes))
    splitter = GroupShuffleSplit(n_splits=GROUP_DRAWS, test_size=size, random_state=seed)
    draws = splitter.split(frame, groups=groups)
    kept, taken = next(draws)
    if multilabel:
        return frame.index[taken]
    for kept_draw, taken_draw in [(kept, taken), *draws]:
        labels = frame["label"].to_numpy()
        if len(set(labels[taken_draw])) == classes and len(set(labels[kept_draw])) == classes:
            return frame.index[taken_draw]
    return frame.index[taken]


def carve_splits(records: pd.DataFrame, plan: SplitPlan, multilabel: bool) -> pd.DataFrame:
    """Fill empty splits: test (when no row has one) then val from the training rows."""
    records = records.copy()
    if not (records["split"] == "test").any():
        pool = records[records["split"].isin(["", "train"])]
        records.loc[_carve(pool, plan.test_fraction, plan.seed, multilabel), "split"] = "test"
    records.loc[records["split"] == "", "split"] = "train"
    if plan.val_fraction > 0 and not (records["split"] == "val").any():
        train = records[records["split"] == "train"]
        records.loc[_carve(train, plan.val_fraction, plan.seed, multilabel), "split"] = "val"
    return records


def split_sources(given: set[str], present: set[str], plan: SplitPlan) -> dict[str, str]:
    """For the data card: per split present, whether the source gave it or it was carved (and
    with which fraction of what)."""
    carved = {
        "test": f"carved: test_fraction {plan.test_fraction:g} of the images",
        "val": f"carved: val_fraction {plan.val_fraction:g} of the training images",
        "train": "the images no other split took",
    }
    return {
        split: "given by the source" if split in given else carved[split]
        for split in ("train", "val", "test")
        if split in present
    }


def write_records(
    records: pd.DataFrame,
    *,
    options: SourceOptions,
    task: str,
    classes: list[str],
    preprocess: Preprocess,
    out_dir: str | Path,
    read=None,
) -> Path:
    """Check, split, subsample, preprocess and write ``records`` (see the module docstring).
    Files are read by ``medft.data.readers.FileReader`` (images, DICOM, NIfTI volumes; a
    volume's or multi-frame file's row becomes one per image: ``medft.data.stacks``), unless a
    source passes its own ``read(path, where)``.
    A set with any colour image is stored as RGB, grey images replicated; with a custom
    ``read`` (arrays, not files whose header tells) the first image decides, and a colour image
    in a grey set is an error rather than averaged to grey."""
    multilabel = task == "multilabel"
    where = options.where
    left_out = records.attrs.get(LEFT_OUT, {})
    # A copy, so that the caller's table is left as it was.
    records = records.copy() if records.index.is_unique else records.reset_index(drop=True)
    for column, default in (("group", ""), ("split", "")):
        if column not in records:
            records[column] = default
    records["group"] = records["group"].fillna("").astype(str)
    records["split"] = records["split"].fillna("").astype(str)
    check_records(records, classes, multilabel, where)
    records = dicom_patients(records, where)
    check_groups(records, where)
    records = stacks.expand(records, options, where)
    given = set(records["split"]) - {""}
    records = carve_splits(records, options.plan, multilabel)
    records = subsample(records, options, multilabel)
    removed = subsampled_counts(records)
    records = rows_to_write(records)
    check_splits(records[records[SUBSAMPLED] == ""], classes, multilabel, where, options.plan)
    if read is None:
        files = FileReader(options)
        channels = max(
            files.channels(p, f"{where}, row {i}")
            for i, p in records.drop_duplicates("path")["path"].items()
        )
    else:
        channels = preprocess(read(records["path"].iloc[0], where)).shape[2]

        def files(path: str, slice_index: int, at: str):
            decoded = read(path, at)
            return decoded, describe_raw(decoded)

    meta = DatasetMeta(
        name=options.name,
        task=task,
        classes=list(classes),
        image_size=preprocess.crop,
        channels=channels,
        source={**options.as_dict(), "resize": preprocess.resize},
        split_sources=split_sources(given, set(records["split"]), options.plan),
        subsampled=removed,
        left_out=left_out,
    )
    with DatasetWriter(out_dir, meta) as writer:
        rows = records.itertuples()
        for row in progress(rows, len(records), f"prepare {options.name}", unit="images"):
            at = f"{where}, row {row.source_row}"
            decoded, raw = files(row.path, row.slice, at)
            image = preprocess(decoded)
            if image.shape[2] != channels:
                if image.shape[2] == 3:
                    raise DataError(
                        f"{at}: {printable(row.path)} is a colour image in a set whose first "
                        "image is grey; convert the set to one kind"
                    )
                image = np.repeat(image, 3, axis=2)
            label = row.labels if multilabel else row.label
            writer.add(
                image,
                id=_image_id(row, "id" in records),
                split=row.split,
                label=label,
                group=row.group,
                raw=raw,
                subsampled=row.subsampled,
            )
    return Path(out_dir)


def _image_id(row, listed: bool) -> str:
    """The source's id, else the file's path; a volume's slice or a file's frame adds its
    index."""
    name = row.id if listed else printable(row.path)
    return f"{name}{stacks.image_name(row.path, row.slice)}" if row.slice >= 0 else name
