"""The grid's axes beyond the paper's: label fractions and input sizes. A dataset at a point
of them is named ``<name>@<fraction>``, ``<name>@<size>px`` or both (docs/axes.md)."""

from __future__ import annotations

from dataclasses import dataclass

# A dataset at a point of the grid's axes: "<name>@<fraction>", "<name>@<size>px", or both.
AXIS_MARK, PX = "@", "px"


def with_axes(
    datasets: list[dict], fractions: list[float] | None, sizes: list[int] | None
) -> list[dict]:
    """The label-fraction and resolution axes: each dataset once per fraction of its training
    split (whole patients, stratified; the evaluation split the same at every fraction:
    medft.data.records' subsampling) and per input size, named ``<name>@<fraction>`` and
    ``<name>@<size>px``, so that every job, folder, table and verdict carries its point.
    Idempotent: entries already on an axis stay as they are."""
    expanded = []
    for entry in datasets:
        if AXIS_MARK in entry["name"]:
            expanded.append(entry)
            continue
        own = entry.get("train_fraction") or 1.0
        points = [(entry["name"], entry)]
        if fractions:
            points = [
                (f"{name}{AXIS_MARK}{f:g}", {**e, "train_fraction": own * f})
                for name, e in points
                for f in fractions
            ]
        if sizes:
            points = [(f"{name}{AXIS_MARK}{size}{PX}", e) for name, e in points for size in sizes]
        expanded += [{**e, "name": name} for name, e in points]
    return expanded


@dataclass(frozen=True)
class AxisPoint:
    base: str
    fraction: float | None = None
    size: int | None = None


def axis_point(dataset: str) -> AxisPoint | None:
    """Where ``dataset`` sits on the grid's axes, or None for a dataset on none."""
    base, *marks = dataset.split(AXIS_MARK)
    if not marks:
        return None
    sizes = [int(m.removesuffix(PX)) for m in marks if m.endswith(PX)]
    fractions = [float(m) for m in marks if not m.endswith(PX)]
    return AxisPoint(base, fractions[0] if fractions else None, sizes[0] if sizes else None)
