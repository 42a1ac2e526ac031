"""Files that hold several 2D images — a NIfTI volume's slices, a multi-frame DICOM file's
frames (an enhanced CT or MR series, an ultrasound cine) — become one records row per image.

Each image keeps its row's label and the row's group, or the file itself as its group when the
row names none, so no file (and no patient) is ever split across train, validation and test.
Every image is kept, or the central ``central_slices`` fraction of them, and of those every
``slice_step``-th (a cine's neighbouring frames are near-copies). A kind of stack is one
``STACKS`` entry: which files it holds, how many images one holds (from the header) and what
its images are called in ids and groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from medft.data import dicom, volumes
from medft.data.readers import file_kind


@dataclass(frozen=True)
class Stack:
    holds: Callable[[str], bool]  # by the file's name
    count: Callable[[str, object, str], int]  # (path, options, where) -> images in the file
    image: str  # "slice", "frame": in ids (`ct.nii.gz#slice12`)
    group: str  # a file without a group of its own is the group "<group> <path>"
    single_stays: bool  # a file of one image keeps its plain row (an ordinary DICOM file)


STACKS = (
    Stack(volumes.is_volume, volumes.slices_in, "slice", "volume", single_stays=False),
    Stack(
        lambda path: file_kind(path) == "dicom",
        lambda path, options, where: dicom.header(path, where).frames,
        "frame",
        "file",
        single_stays=True,
    ),
)


def stack_of(path: str) -> Stack | None:
    return next((stack for stack in STACKS if stack.holds(path)), None)


def indices(n: int, central: float | None, step: int | None = None) -> range:
    """The indices of ``n`` images kept: all, or the central ``central`` fraction (at least
    one), every ``step``-th of them from the first kept."""
    kept = n if central is None or central >= 1 else max(1, round(n * central))
    start = (n - kept) // 2
    return range(start, start + kept, step or 1)


def expand(records: pd.DataFrame, options, where: str) -> pd.DataFrame:
    """``records`` with each stack's row replaced by its images' rows (column ``slice``: the
    image's index in its file; -1 for a row that stays one image); ``source_row`` keeps the
    row's label for messages."""
    if not records["path"].map(lambda path: stack_of(path) is not None).any():
        return records.assign(slice=-1, source_row=records.index)
    central = getattr(options, "central_slices", None)
    step = getattr(options, "slice_step", None)
    rows = []
    for index, row in records.iterrows():
        stack = stack_of(row["path"])
        count = stack.count(row["path"], options, f"{where}, row {index}") if stack else 1
        if stack is None or (count == 1 and stack.single_stays):
            rows.append({**row.to_dict(), "slice": -1, "source_row": index})
            continue
        own = row.get("group")
        group = own if isinstance(own, str) and own else f"{stack.group} {row['path']}"
        rows += [
            {**row.to_dict(), "group": group, "slice": i, "source_row": index}
            for i in indices(count, central, step)
        ]
    return pd.DataFrame(rows)


def image_name(path: str, index: int) -> str:
    """``#slice3`` or ``#frame3``: an image's place in its file (a row ``expand`` made), for
    ids."""
    return f"#{stack_of(path).image}{index}"
