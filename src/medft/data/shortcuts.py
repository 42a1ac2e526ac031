"""Sizes and modes that go with a class: a shortcut a model can learn instead of the finding.

Where one class's images came from another scanner, archive or export — another size, a
MONOCHROME1 file, a 16-bit one, a Presentation LUT — a network can tell the class by that, and
its scores then measure the acquisition. Each kind of image before preprocessing (the
manifest's ``raw``: "360×360 RGB", "2048×2500 DICOM MONOCHROME1 12-bit unsigned") but the most
common is tested against the other images: are its images' classes drawn from the same mix?
The statistic is the chi-square of kind-or-not × class; its null distribution, the kind's
class counts under random labelling (a multivariate hypergeometric draw of the kind's size
from the class totals, ``DRAWS`` times, seeded; for two classes the hypergeometric itself), so
small kinds are tested exactly rather than by the chi-square approximation; Holm over the
kinds tested (``bench/results_shortcuts.md``: its false flags and power). Where the dataset
has patients, a patient is one unit: its images share a scanner and a diagnosis, and counted
one by one, random patients passed for cues.
Resizing to one input size does not remove such a cue: resampling leaves its own traces.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
KINDS_TESTED = 10  # the most common kinds; the rest are counted together, not tested
DRAWS = 2000
ALPHA = 0.01
SEED = 0


def of_manifest(manifest: pd.DataFrame, classes: list[str]) -> pd.DataFrame | None:
    """``kinds_by_class`` (multi-label: ``kinds_by_label``) of a prepared dataset's images, all
    splits together, tested by patient where it has patients; None for a dataset prepared
    before sizes and modes were kept."""
    if "raw" not in manifest or not manifest["raw"].astype(bool).all():
        return None
    groups = manifest["group"] if "group" in manifest else None
    if "labels" in manifest:
        positives = pd.DataFrame(manifest["labels"].tolist(), columns=classes)
        return kinds_by_label(manifest["raw"], positives, groups)
    return kinds_by_class(manifest["raw"], manifest["label"], classes, groups)


def warn(manifest: pd.DataFrame, classes: list[str], dataset: str) -> None:
    """One warning naming the kinds whose classes (or labels) differ from the rest's."""
    table = of_manifest(manifest, classes)
    found = [] if table is None else shortcuts(table)
    if found:
        described = "; ".join(
            f"{row['kind']!r}: {row['images']} images, "
            + (row["by class"] if "by class" in row else row["labels unlike the rest (Holm p)"])
            for row in table[table["kind"].isin(found)].to_dict("records")
        )
        log.warning(
            "dataset %r: images of some sizes or modes belong to some classes more than chance "
            "allows (%s): a model can tell the class by how the image was made; look at where "
            "they came from (the data card lists every kind by class)",
            dataset,
            described,
        )


def kinds_by_class(
    raw: pd.Series, labels: pd.Series, classes: list[str], groups: pd.Series | None = None
) -> pd.DataFrame:
    """Per kind, most common first (``KINDS_TESTED`` of them; the rest one row): its images,
    their classes, and the Holm-adjusted permutation p-value of its classes against the other
    images' (not for the most common kind, which the others are set against, nor for a kind of
    fewer than two units). With ``groups`` (patients; "" for none), a patient is one unit of
    the test, of its most common kind and class (and a column counts the patients of each
    kind): a patient's images share a scanner and a diagnosis, so counted one by one, one
    patient scanned elsewhere would pass for a cue."""
    raw, labels = raw.reset_index(drop=True), labels.reset_index(drop=True)
    unit_raw, unit_labels = _units(raw, labels, groups)
    totals = np.bincount(unit_labels, minlength=len(classes))
    counts = raw.value_counts()
    tested, rest = counts.index[:KINDS_TESTED], counts.index[KINDS_TESTED:]
    rng = np.random.default_rng(SEED)
    rows, p_values = [], []
    for rank, kind in enumerate(tested):
        of_kind = np.bincount(labels[raw == kind], minlength=len(classes))
        rows.append({"kind": kind, "images": int(of_kind.sum()), "by class": _by(of_kind, classes)})
        # The most common kind is what the others are set against: with two kinds, its test
        # is the other's, and a cue is what sets images apart from the usual ones.
        units = np.bincount(unit_labels[unit_raw == kind], minlength=len(classes))
        if groups is not None:
            rows[-1]["patients"] = int(units.sum())
        p_values.append(np.nan if rank == 0 else _p_value(units, totals, rng))
    adjusted = _holm(np.array(p_values, dtype=float))
    for rank, (row, p) in enumerate(zip(rows, adjusted, strict=True)):
        untested = "the reference (most common)" if rank == 0 else "not tested (under 2 units)"
        row["unlike the rest (Holm p)"] = untested if np.isnan(p) else _flagged(p)
    if len(rest):
        of_rest = np.bincount(labels[raw.isin(rest)], minlength=len(classes))
        rows.append(
            {
                "kind": f"{len(rest)} other kinds",
                "images": int(of_rest.sum()),
                "by class": _by(of_rest, classes),
                "unlike the rest (Holm p)": "not tested",
            }
        )
        if groups is not None:
            rows[-1]["patients"] = int(np.isin(unit_raw, rest).sum())
    return pd.DataFrame(rows)


def kinds_by_label(
    raw: pd.Series, positives: pd.DataFrame, groups: pd.Series | None = None
) -> pd.DataFrame:
    """A multi-label dataset's kinds: per kind (as ``kinds_by_class``) its images, and the
    labels whose share of positives in it differs from the other images' — each label a
    two-class test of its own (positive or not), Holm over every kind and label tested."""
    raw = raw.reset_index(drop=True)
    counts = raw.value_counts()
    tested, rest = counts.index[:KINDS_TESTED], counts.index[KINDS_TESTED:]
    rng = np.random.default_rng(SEED)
    p_values = np.full((len(tested), positives.shape[1]), np.nan)
    for j, label in enumerate(positives.columns):
        present = positives[label].reset_index(drop=True).astype(int)
        unit_raw, unit_labels = _units(raw, present, groups)
        totals = np.bincount(unit_labels, minlength=2)
        for rank, kind in enumerate(tested[1:], start=1):
            units = np.bincount(unit_labels[unit_raw == kind], minlength=2)
            p_values[rank, j] = _p_value(units, totals, rng)
    adjusted = _holm(p_values.ravel()).reshape(p_values.shape)
    rows = []
    for rank, kind in enumerate(tested):
        found = [
            f"{label} {'more' if share > overall else 'fewer'} ({p:.2g})"
            for label, p, share, overall in zip(
                positives.columns,
                adjusted[rank],
                positives[(raw == kind).to_numpy()].mean(),
                positives.mean(),
                strict=True,
            )
            if p < ALPHA
        ]
        rows.append(
            {
                "kind": kind,
                "images": int((raw == kind).sum()),
                "labels unlike the rest (Holm p)": "the reference (most common)"
                if rank == 0
                else "; ".join(found) or "none",
            }
        )
    if len(rest):
        rows.append(
            {
                "kind": f"{len(rest)} other kinds",
                "images": int(raw.isin(rest).sum()),
                "labels unlike the rest (Holm p)": "not tested",
            }
        )
    return pd.DataFrame(rows)


def _units(
    raw: pd.Series, labels: pd.Series, groups: pd.Series | None
) -> tuple[np.ndarray, np.ndarray]:
    """The test's units: each patient once, with its most common kind and class (an image
    without a patient is its own unit); each image where there are no patients."""
    if groups is None:
        return raw.to_numpy(), labels.to_numpy()
    groups = groups.reset_index(drop=True).astype(str)
    unit = groups.where(groups != "", "image " + groups.index.astype(str))
    frame = pd.DataFrame({"unit": unit, "raw": raw, "label": labels})
    units = pd.Index(unit.unique())

    def most_common(column: str) -> np.ndarray:
        counts = frame.groupby(["unit", column], sort=False).size().rename("n").reset_index()
        top = counts.sort_values("n", ascending=False, kind="stable").drop_duplicates("unit")
        return top.set_index("unit")[column].reindex(units).to_numpy()

    return most_common("raw"), most_common("label")


def shortcuts(table: pd.DataFrame) -> list[str]:
    """The kinds ``kinds_by_class`` or ``kinds_by_label`` found unlike the rest."""
    if "labels unlike the rest (Holm p)" in table:
        column = table["labels unlike the rest (Holm p)"].astype(str)
        return table.loc[column.str.contains(r"\(\S+\)$"), "kind"].tolist()
    column = table.get("unlike the rest (Holm p)", pd.Series(dtype=object))
    return table.loc[column.astype(str).str.startswith("yes"), "kind"].tolist()


def _by(counts: np.ndarray, classes: list[str]) -> str:
    return ", ".join(f"{c} {n}" for c, n in zip(classes, counts, strict=True) if n)


def _flagged(p: float) -> str:
    return f"yes ({p:.2g})" if p < ALPHA else f"no ({p:.2g})"


def _p_value(of_kind: np.ndarray, totals: np.ndarray, rng) -> float:
    """The share of random labellings whose kind's classes lie as far from the mix as these
    (NaN where nothing can differ: the kind is one image, or all of them). Two classes (a
    binary task, or one label of a multi-label one): exactly, from the hypergeometric
    distribution — ``DRAWS`` draws could say no less than 1/2,001, which Holm over a
    multi-label set's kinds × labels (126 tests at 9 kinds and 14 labels) lifts past any
    level; more classes: by the draws."""
    size, everything = int(of_kind.sum()), int(totals.sum())
    if size < 2 or size >= everything:
        return np.nan
    present = totals > 0
    if present.sum() == 2:
        return _two_classes(int(of_kind[present][1]), size, int(totals[present][1]), everything)
    expected = size * totals[present] / everything

    def distance(counts: np.ndarray) -> np.ndarray:
        # The kind-or-not × class chi-square over fixed margins, but for a constant factor.
        return (((counts[..., present] - expected) ** 2) / totals[present]).sum(axis=-1)

    drawn = rng.multivariate_hypergeometric(totals, size, size=DRAWS)
    extreme = (distance(drawn) >= distance(of_kind) - 1e-12).sum()
    return (1 + extreme) / (1 + DRAWS)


def _two_classes(second: int, size: int, of_second: int, everything: int) -> float:
    """P(a kind of ``size`` drawn at random holds a count of the second class at least as far
    from its expectation as ``second``): the chi-square's order, exactly."""
    from scipy.stats import hypergeom

    counts = np.arange(max(0, size - (everything - of_second)), min(of_second, size) + 1)
    expected = size * of_second / everything
    far = np.abs(counts - expected) >= abs(second - expected) - 1e-9
    return float(min(1.0, hypergeom.pmf(counts[far], everything, of_second, size).sum()))


def _holm(p_values: np.ndarray) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    adjusted = np.full(p_values.shape, np.nan)
    tested = ~np.isnan(p_values)
    if tested.any():
        adjusted[tested] = multipletests(p_values[tested], method="holm")[1]
    return adjusted
