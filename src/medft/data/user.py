"""Users' own data: an ImageFolder tree or a CSV/Parquet table of image paths and labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medft.data.records import DataError, SplitPlan
from medft.data.shards import SPLITS

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm"}


def _plan(options: dict) -> SplitPlan:
    return SplitPlan(
        val_fraction=options.get("val_fraction", 0.1),
        test_fraction=options.get("test_fraction", 0.2),
        seed=options.get("split_seed", 0),
    )


def imagefolder_records(root: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """``root/<class>/<image>`` or ``root/<split>/<class>/<image>`` (split: train, val, test)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: ImageFolder root does not exist")
    split_dirs = [d for d in root.iterdir() if d.is_dir() and d.name in SPLITS]
    trees = [(d, d.name) for d in split_dirs] if split_dirs else [(root, "")]
    classes = sorted({c.name for tree, _ in trees for c in tree.iterdir() if c.is_dir()})
    if not classes:
        raise DataError(f"{root}: no class folders found; expected {root}/<class>/<image files>")
    rows = []
    for tree, split in trees:
        for index, cls in enumerate(classes):
            folder = tree / cls
            files = (
                sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
                if folder.is_dir()
                else []
            )
            rows += [{"path": str(p), "label": index, "split": split} for p in files]
    return pd.DataFrame(rows, columns=["path", "label", "split"]), classes


def imagefolder(options: dict) -> tuple[pd.DataFrame, list[str], str, SplitPlan]:
    """The ``imagefolder`` source's parser (see ``imagefolder_records``)."""
    records, classes = imagefolder_records(options["root"])
    return records, classes, "binary" if len(classes) == 2 else "multiclass", _plan(options)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: table not found")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def table_records(options: dict) -> tuple[pd.DataFrame, list[str], str]:
    """Options: ``table`` (CSV/Parquet), ``path_column`` (default ``path``), either
    ``label_column`` (single label; ``classes`` optional, else the sorted values) or
    ``label_columns`` (multi-label 0/1 columns), optional ``group_column`` and
    ``split_column``, ``image_root`` (default: the table's folder)."""
    table_path = Path(options["table"])
    table = _read_table(table_path)
    where = str(table_path)
    root = Path(options.get("image_root", table_path.parent))
    path_column = options.get("path_column", "path")
    labels = options.get("label_columns") or [options.get("label_column", "label")]
    wanted = [path_column, *labels, options.get("group_column"), options.get("split_column")]
    missing = [c for c in wanted if c and c not in table.columns]
    if missing:
        raise DataError(f"{where}: column(s) {missing} not found; it has {list(table.columns)}")
    records = pd.DataFrame({"path": [str(root / p) for p in table[path_column]]})
    # Rows are numbered as a spreadsheet shows them: the header is row 1.
    records.index = records.index + 2
    if options.get("label_columns"):
        columns = options["label_columns"]
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
        column = options.get("label_column", "label")
        labels = table[column].astype(str)
        classes = [str(c) for c in options.get("classes", sorted(labels.unique()))]
        unknown = ~labels.isin(classes)
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise DataError(
                f"{where}, row {row + 2}: label {labels.iloc[row]!r} is not one of "
                f"the classes {classes}; fix the label or add it to `classes`"
            )
        records["label"] = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
        task = "binary" if len(classes) == 2 else "multiclass"
    if options.get("group_column"):
        records["group"] = table[options["group_column"]].astype(str).to_numpy()
    if options.get("split_column"):
        records["split"] = table[options["split_column"]].astype(str).str.strip().to_numpy()
    return records, classes, task


def table(options: dict) -> tuple[pd.DataFrame, list[str], str, SplitPlan]:
    """The ``table`` source's parser (see ``table_records``)."""
    return (*table_records(options), _plan(options))
