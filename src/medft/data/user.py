"""Users' own data: an ImageFolder tree or a CSV/Parquet table of image paths and labels."""

from __future__ import annotations

import difflib
import functools
import glob
import logging
import re
import string
from pathlib import Path

import numpy as np
import pandas as pd

from medft import csv_tables
from medft.data import dicom
from medft.data.options import ImageFolderOptions, TableOptions, UserDataOptions
from medft.data.readers import PIL_SUFFIXES, file_kind, is_image_file
from medft.data.records import GROUPS_FROM, LEFT_OUT
from medft.errors import DataError

log = logging.getLogger(__name__)

# Split folder names as datasets ship them (Kaggle's Training/Testing included), any case.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def _hidden(name: str) -> bool:
    """A file or folder no dataset means: hidden ones (a macOS copy's ``._image.png``,
    ``.ipynb_checkpoints/``) and the ``__MACOSX/`` folder a macOS zip unpacks beside the data."""
    return name.startswith(".") or name == "__MACOSX"


def _listed(folder: Path) -> list[Path]:
    """The files under ``folder``, none inside or named as ``_hidden``."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(_hidden(part) for part in p.relative_to(folder).parts)
    )


def _images_in(folder: Path) -> list[Path]:
    return [p for p in _listed(folder) if is_image_file(p)]


def _class_images(folder: Path, root: Path, passed_over: dict[str, list[str]]) -> list[Path]:
    """The images under a class folder. Every other file but hidden ones is added to
    ``passed_over`` under what it is: a DICOM object without an image (a DICOMDIR, a
    structured report) by its SOP class, anything else by its suffix."""
    images = []
    for path in _listed(folder):
        what = _not_an_image(path, root)
        if what is None:
            images.append(path)
        else:
            passed_over.setdefault(what, []).append(str(path.relative_to(root)))
    return images


def _not_an_image(path: Path, root: Path) -> str | None:
    """What a file that holds no image medft reads is, or None for an image."""
    kind = file_kind(path)
    if kind is None:
        return f"'{path.suffix.lower() or path.name}' file(s)"
    if kind == "dicom":
        what = dicom.header(str(path), str(root)).not_an_image
        return None if what is None else f"DICOM {what} object(s) without an image"
    return None


def _is_image(path: Path, root: Path) -> bool:
    """An image medft reads (a DICOMDIR or a report beside patient folders is none)."""
    return path.is_file() and not _hidden(path.name) and _not_an_image(path, root) is None


def _warn_passed_over(root: Path, passed_over: dict[str, list[str]]) -> None:
    if not passed_over:
        return
    kinds = "; ".join(
        f"{len(paths)} {what} ({', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''})"
        for what, paths in sorted(passed_over.items())
    )
    log.warning(
        "%s: %d file(s) in the class folders are not images and were left out: %s. medft reads "
        "%s, DICOM (by content, whatever the name; a data set without the 128-byte preamble "
        "named .dcm) and NIfTI; convert or rename any that are images",
        root,
        sum(map(len, passed_over.values())),
        kinds,
        " ".join(PIL_SUFFIXES),
    )


def _split_folders(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in sorted(d for d in root.iterdir() if d.is_dir()):
        split = SPLIT_ALIASES.get(folder.name.lower())
        if split is None:
            continue
        if split in found:
            raise DataError(
                f"{root}: {found[split].name}/ and {folder.name}/ are both the {split} split; "
                "merge them or remove one"
            )
        found[split] = folder
    return found


def _check_not_splits(tree: Path, classes: list[str], root: Path) -> None:
    """Class folders hold images, or sub-folders of images (patients, studies). Class folders
    that all hold the same image folders and nothing else may be splits or datasets under
    another name, holding the classes: the user says which (``folder_groups``)."""
    nested = {}
    for cls in classes:
        folder = tree / cls
        if not folder.is_dir() or any(_is_image(p, root) for p in folder.iterdir()):
            return
        nested[cls] = tuple(
            d.name
            for d in sorted(folder.iterdir())
            if d.is_dir() and not _hidden(d.name) and _images_in(d)
        )
    names = set(nested.values())
    if len(nested) >= 2 and len(names) == 1 and len(next(iter(names))) >= 2:
        shown = ", ".join(f"{(tree / c).relative_to(root)}/" for c in list(nested)[:3])
        raise DataError(
            f"{root}: the 'class' folders {shown} all hold the same folders "
            f"({', '.join(next(iter(names))[:5])}), so they may be splits or datasets holding "
            f"classes. Split folders are named {'/'.join(SPLIT_ALIASES)} (any case); for one "
            f"dataset set `root: {tree / classes[0]}`. If they are classes holding patients "
            "numbered within each class, set `folder_groups: true`; holding something else "
            "(scanners, dates), `folder_groups: false`"
        )


def _folder_group(image: Path, class_folder: Path, sub_folders) -> str:
    """``<class>/<sub-folder>`` for an image in a sub-folder of its class folder (a patient, a
    study), or "" for an image directly in the class folder (its own group). Qualified by the
    class, as folders are often numbered within each class. A folder that is the only one in
    its folder is a wrapper (``benign/images/``), not a patient: the groups are below it
    (``sub_folders(folder)``: how many folders a folder holds)."""
    parts = image.relative_to(class_folder).parts[:-1]
    depth = 0
    while depth < len(parts) and sub_folders(class_folder.joinpath(*parts[:depth])) == 1:
        depth += 1
    return "/".join((class_folder.name, *parts[: depth + 1])) if depth < len(parts) else ""


def _sub_folders(folder: Path) -> int:
    return sum(1 for entry in folder.iterdir() if entry.is_dir())


def imagefolder_records(options: ImageFolderOptions) -> tuple[pd.DataFrame, list[str]]:
    """``root/<class>/<image>`` or ``root/<split>/<class>/<image>``; split folders are named as
    in ``SPLIT_ALIASES``. Images in sub-folders of a class folder belong to that class, and
    each sub-folder is a group (``folder_groups``)."""
    root = Path(options.root)
    if not root.is_dir():
        raise DataError(f"{root}: ImageFolder root does not exist; fix `root`")
    splits = _split_folders(root)
    trees = [(d, split) for split, d in splits.items()] if splits else [(root, "")]
    classes = sorted(
        {c.name for tree, _ in trees for c in tree.iterdir() if c.is_dir() and not _hidden(c.name)}
    )
    if not classes:
        raise DataError(f"{root}: no class folders found; expected {root}/<class>/<image files>")
    rows, passed_over = [], {}
    sub_folders = functools.cache(_sub_folders)  # one listing per folder, for this reading only
    for tree, split in trees:
        if options.folder_groups is None:
            _check_not_splits(tree, classes, root)
        for index, cls in enumerate(classes):
            folder = tree / cls
            if not folder.is_dir():
                continue
            rows += [
                {
                    "path": str(p),
                    "label": index,
                    "split": split,
                    "group": ""
                    if options.folder_groups is False
                    else _folder_group(p, folder, sub_folders),
                }
                for p in _class_images(folder, root, passed_over)
            ]
    _warn_passed_over(root, passed_over)
    records = pd.DataFrame(
        {
            # object, not pandas' string dtype: file names in another encoding than UTF-8
            # hold surrogate escapes, which Arrow strings refuse.
            "path": pd.Series([r["path"] for r in rows], dtype=object),
            "label": [r["label"] for r in rows],
            "split": [r["split"] for r in rows],
            "group": pd.Series([r["group"] for r in rows], dtype=object),
        }
    )
    records.attrs[LEFT_OUT] = passed_over
    records.attrs[GROUPS_FROM] = (
        "set `folder_groups: false` if a class folder's sub-folders are not patients (each "
        "sub-folder is a group)"
    )
    counts = records["label"].value_counts().reindex(range(len(classes)), fill_value=0)
    check_class_sizes(
        {cls: counts[i] for i, cls in enumerate(classes)},
        options,
        lambda cls: [f"{tree / cls}/" for tree, _ in trees if (tree / cls).is_dir()],
        "rename or merge the folder, or move its images",
    )
    return records, classes


def check_class_sizes(sizes: dict[str, int], options: UserDataOptions, rows_of, fix: str) -> None:
    """Classes read from the data: at least two, each with ``min_class_images`` images; a rare
    one is named with where it is (``rows_of(label)``) and the classes it is a near miss of."""
    where = options.where
    if len(sizes) < 2:
        raise DataError(
            f"{where}: found only the class {list(sizes)}; a classification task needs at "
            "least two classes"
        )
    for label, n in sizes.items():
        if n >= options.min_class_images:
            continue
        others = [c for c in sizes if c != label]
        near = difflib.get_close_matches(label.lower(), [c.lower() for c in others], n=3)
        near = [c for c in others if c.lower() in near]
        spelled = f"; a misspelling of {near}?" if near else ""
        places = rows_of(label)
        shown = ", ".join(map(str, places[:10])) + (" ..." if len(places) > 10 else "")
        raise DataError(
            f"{where}: class {label!r} has only {n} image(s) ({shown}){spelled or '.'} "
            f"Fix it ({fix}), or list the classes with `classes:` to keep a rare class "
            f"(or lower `min_class_images`, now {options.min_class_images})"
        )


def imagefolder(options: ImageFolderOptions) -> tuple[pd.DataFrame, list[str], str]:
    """The ``imagefolder`` source's parser (see ``imagefolder_records``)."""
    records, classes = imagefolder_records(options)
    return records, classes, "binary" if len(classes) == 2 else "multiclass"


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: table not found; fix `table`")
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: cannot read the table ({error})") from None
    return csv_tables.read_csv(path, dtype=str, keep_default_na=False)


def _listed_path(root: Path, listed: str) -> str:
    """A table's path under ``root``. Where no file has the name as written, what a
    spreadsheet adds is undone: the spaces around a cell, a Windows path's ``\\``
    (``images\\a.png``) — an invisible trailing space made "does not exist" name a path that
    looked right."""
    cleaned = listed.strip().replace("\\", "/")
    # Only such a path costs a look at the disk; the records' check stats every file anyway.
    if cleaned == listed or (root / listed).exists():
        return str(root / listed)
    return str(root / cleaned)


def _template_paths(table: pd.DataFrame, options: TableOptions, root: Path) -> list[str]:
    """Each row's path from ``path_template``: ``{column}`` fields filled from the row; glob
    patterns (``*``, ``?``, ``[``) resolved under ``root`` to exactly one file."""
    template = options.path_template
    columns = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(
            f"{options.table}: `path_template` names column(s) {missing}; the table has "
            f"{list(table.columns)}"
        )
    paths = []
    for row, values in zip(table.index, table[columns].to_dict("records"), strict=True):
        relative = template.format(**values)
        if glob.has_magic(relative):
            matches = sorted(glob.glob(str(root / relative)))
            if len(matches) != 1:
                raise DataError(
                    f"{options.table}, row {row + 2}: `path_template` gives {relative!r}, "
                    f"which matches {len(matches)} files under {root} (needs exactly one)"
                )
            paths.append(matches[0])
        else:
            paths.append(str(root / relative))
    return paths


PATIENT_WORDS = re.compile(r"patient|subject|participant|case|study|person|individual", re.I)


def _warn_patient_columns(table: pd.DataFrame, where: str, exclude: list) -> None:
    """No ``group_column``: a column named like a patient id whose values repeat (several
    images of one patient) is named, since without it splits are carved image by image."""
    for column in table.columns:
        if column in exclude or not PATIENT_WORDS.search(str(column)):
            continue
        values = table[column].nunique()
        if 1 < values < len(table):
            log.warning(
                "%s: no `group_column` is set, so splits are carved image by image, but column "
                "%r looks like a patient id (%d values for %d rows): set `group_column: %s` "
                "if it is, so that no patient's images are both trained and evaluated on",
                where,
                column,
                values,
                len(table),
                column,
            )


def table_records(options: TableOptions) -> tuple[pd.DataFrame, list[str], str]:
    """A CSV/Parquet table: a path column (or ``path_template``), either ``label_column``
    (single label; ``classes`` optional, else the values found) or ``label_columns``
    (multi-label 0/1 columns), optional ``group_column`` and ``split_column``; paths are
    relative to ``image_root`` (default: the table's folder)."""
    table_path = Path(options.table)
    table = _read_table(table_path)
    where = str(table_path)
    root = Path(options.image_root or table_path.parent)
    labels = options.label_columns or [options.label_column]
    path_column = None if options.path_template else options.path_column
    wanted = [path_column, *labels, options.group_column, options.split_column]
    missing = [c for c in wanted if c and c not in table.columns]
    if missing:
        raise DataError(f"{where}: column(s) {missing} not found; it has {list(table.columns)}")
    if table.empty:
        raise DataError(f"{where}: the table has a header but no rows")
    paths = (
        _template_paths(table, options, root)
        if options.path_template
        else [_listed_path(root, p) for p in table[path_column]]
    )
    records = pd.DataFrame({"path": paths})
    # Rows are numbered as a spreadsheet shows them: the header is row 1.
    records.index = records.index + 2
    if options.label_columns:
        columns = options.label_columns
        values = table[columns].astype(str).apply(lambda col: col.str.strip())
        bad = ~values.isin(["0", "1", "0.0", "1.0"])
        if bad.any().any():
            row, column = bad.stack()[bad.stack()].index[0]
            raise DataError(
                f"{where}, row {row + 2}: {column} is {values.loc[row, column]!r}; "
                "multi-label columns hold 0 or 1"
            )
        records["labels"] = list(values.astype(float).astype(int).to_numpy())
        classes, task = list(columns), "multilabel"
    else:
        column = options.label_column
        labels = table[column].astype(str).str.strip()
        empty = np.flatnonzero(labels.isin(["", "nan", "None"]).to_numpy())
        if len(empty):
            raise DataError(
                f"{where}, row {empty[0] + 2}: the label ({column}) is empty; give it a label "
                "or remove the row"
            )
        if options.classes is None:
            classes = sorted(labels.unique())
            check_class_sizes(
                labels.value_counts().to_dict(),
                options,
                lambda label: [f"row {i + 2}" for i in np.flatnonzero(labels == label)],
                "correct the label",
            )
        else:
            classes = list(options.classes)
        unknown = ~labels.isin(classes)
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise DataError(
                f"{where}, row {row + 2}: label {labels.iloc[row]!r} is not one of "
                f"the classes {classes}; fix the label or add it to `classes`"
            )
        records["label"] = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
        task = "binary" if len(classes) == 2 else "multiclass"
    if options.group_column:
        records["group"] = table[options.group_column].astype(str).to_numpy()
    else:
        label_names = options.label_columns or [options.label_column]
        _warn_patient_columns(table, where, exclude=[path_column, *label_names])
    if options.split_column:
        split = table[options.split_column].astype(str).str.strip().str.lower()
        records["split"] = split.map(lambda s: SPLIT_ALIASES.get(s, s)).to_numpy()
    return records, classes, task


def table(options: TableOptions) -> tuple[pd.DataFrame, list[str], str]:
    """The ``table`` source's parser (see ``table_records``)."""
    return table_records(options)
