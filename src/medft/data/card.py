"""A data card per prepared dataset: what went in, so a reader can judge the numbers built on
it (Gebru et al., "Datasheets for Datasets", is the anchor). Read from the prepared folder's
meta.json and manifest.parquet alone: source and options, images per split and class, groups
(patients) per split, sizes and modes before preprocessing, the preprocessing, subsampling,
the duplicates found and what was done with them, and the files left out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medft.data.shards import SPLITS, read_meta

# Shown in the splits section, where each applies, not among the options.
SPLIT_OPTIONS = ("val_fraction", "test_fraction", "train_fraction", "max_images_per_class")
SHOWN = 10  # files listed per kind left out


@dataclass(frozen=True)
class DataCard:
    title: str
    sections: list[tuple[str, pd.DataFrame]]


def data_card(folder: str | Path) -> DataCard:
    folder = Path(folder)
    meta = read_meta(folder)
    manifest = pd.read_parquet(folder / "manifest.parquet")
    splits = [s for s in SPLITS if (manifest["split"] == s).any()]
    return DataCard(
        f"Data card: {meta.name}",
        [
            ("What it is and how it was made", _overview(meta)),
            ("Splits: where each came from and what left it", _splits(meta, splits)),
            ("Images per split and class", _counts(manifest, meta, splits)),
            ("Before preprocessing (most common size and mode per split)", _raw(manifest, splits)),
            (
                "Size and mode by class (a cue a model could learn instead of the finding)",
                _by_class(manifest, meta),
            ),
            ("Duplicates", _duplicates(meta)),
            ("Near-duplicates across splits", _near_duplicates(meta, manifest)),
            (
                "Near-duplicates: how close each evaluation image's closest earlier image is",
                _closeness(meta),
            ),
            ("Files left out (no image medft reads)", _left_out(meta)),
        ],
    )


def _left_out(meta) -> pd.DataFrame:
    rows = [
        (what, f"{len(paths)}: {', '.join(paths[:SHOWN])}{' ...' if len(paths) > SHOWN else ''}")
        for what, paths in sorted(meta.left_out.items())
    ]
    return pd.DataFrame(rows or [("none", "")], columns=["", "files"])


def _overview(meta) -> pd.DataFrame:
    source = dict(meta.source)
    rows = [
        ("source", source.pop("source", "")),
        ("task type", f"{meta.task}, {len(meta.classes)} classes: {', '.join(meta.classes)}"),
        (
            "preprocessing",
            f"shorter side resized to {source.pop('resize', '?')} px, centre crop "
            f"{meta.image_size} px, {'RGB' if meta.channels == 3 else 'grey'} uint8",
        ),
    ]
    source.pop("name", None)
    defaults = _defaults(rows[0][1])
    rows += [
        (key, str(value))
        for key, value in source.items()
        if key not in SPLIT_OPTIONS and (key not in defaults or value != defaults[key])
    ]
    return pd.DataFrame(rows, columns=["", "value"])


def _defaults(source: str) -> dict:
    """The source's option defaults: the card lists what a user set away from them (a
    `val_fraction: 0` included)."""
    from dataclasses import MISSING, fields

    from medft.data.sources import SOURCES

    try:
        options = SOURCES.get(source).options
    except ValueError:
        return {}
    return {
        f.name: f.default if f.default is not MISSING else f.default_factory()
        for f in fields(options)
        if f.default is not MISSING or f.default_factory is not MISSING
    }


def _splits(meta, splits: list[str]) -> pd.DataFrame:
    """Per split: where it came from, the images kept, and the images each subsampling option
    and the duplicate policy removed — counts, not option values."""
    sources = getattr(meta, "split_sources", {}) or {}
    subsampled = getattr(meta, "subsampled", {}) or {}
    dropped = pd.Series([d["split"] for d in meta.duplicates.get("dropped", [])], dtype=object)
    table = {}
    for split in splits:
        column = {
            "source": sources.get(split, "not recorded"),
            "images kept": meta.split_counts.get(split, 0),
        }
        for option, label in (
            ("train_fraction", "removed by train_fraction"),
            ("max_images_per_class", "removed by max_images_per_class"),
        ):
            column[label] = subsampled.get(option, {}).get(split, 0)
        column["dropped as duplicates"] = int((dropped == split).sum())
        table[split] = column
    if "val" not in splits and meta.source.get("val_fraction") == 0:
        table["val"] = {"source": "none (val_fraction 0)"}
    frame = pd.DataFrame(table).fillna("")
    frame.index.name = ""
    return frame.reset_index()


def _counts(manifest: pd.DataFrame, meta, splits: list[str]) -> pd.DataFrame:
    table = {}
    for split in splits:
        rows = manifest[manifest["split"] == split]
        if meta.multilabel:
            positives = pd.DataFrame(rows["labels"].tolist(), columns=meta.classes).sum()
            column = {c: int(positives[c]) for c in meta.classes}
        else:
            counts = rows["label"].value_counts()
            column = {c: int(counts.get(i, 0)) for i, c in enumerate(meta.classes)}
        groups = rows["group"].replace("", pd.NA)
        column["all images"] = len(rows)
        column["groups (patients)"] = (
            int(groups.nunique()) + int(groups.isna().sum()) if groups.notna().any() else "none"
        )
        table[split] = column
    if "val" not in splits and meta.source.get("val_fraction") == 0:
        table["val"] = {"source": "none (val_fraction 0)"}
    frame = pd.DataFrame(table).fillna("")
    frame.index.name = "positives per label" if meta.multilabel else "class"
    return frame.reset_index()


def _raw(manifest: pd.DataFrame, splits: list[str]) -> pd.DataFrame:
    if "raw" not in manifest or not manifest["raw"].astype(bool).any():
        return pd.DataFrame({"": ["not recorded (prepared before medft 0.3)"]})
    rows = []
    for split in splits:
        described = manifest.loc[manifest["split"] == split, "raw"]
        common = described.value_counts()
        shown = ", ".join(f"{kind} ({n})" for kind, n in common.head(3).items())
        more = f", {len(common) - 3} other kinds" if len(common) > 3 else ""
        rows.append((split, shown + more))
    return pd.DataFrame(rows, columns=["split", "size and mode (images)"])


def _by_class(manifest: pd.DataFrame, meta) -> pd.DataFrame:
    from medft.data.shortcuts import of_manifest

    table = of_manifest(manifest, meta.classes)
    if table is None:
        return pd.DataFrame({"": ["not tested (sizes and modes not recorded)"]})
    return table


def _duplicates(meta) -> pd.DataFrame:
    found = meta.duplicates
    if not found:
        return pd.DataFrame({"": ["not checked (prepared before medft 0.3)"]})
    within = ", ".join(f"{s} {n}" for s, n in found["within_split"].items()) or "none"
    rows = [
        ("policy (`duplicates`)", found["policy"]),
        ("evaluation images equal to an earlier split's", str(found["across_splits"])),
        ("repeated within a split", within),
        (
            "blank images (one value; not compared)",
            ", ".join(f"{s} {n}" for s, n in found.get("blank", {}).items()) or "none",
        ),
    ]
    rows += [
        (f"dropped: {d['split']} {d['id']}", f"= {d['duplicate_split']} {d['duplicate_of']}")
        for d in found["dropped"]
    ]
    return pd.DataFrame(rows, columns=["", "value"])


THUMBNAILS = "thumbnails"  # a column of HTML images: shown in the HTML card only
HISTOGRAM = "histogram"  # likewise
HTML_ONLY = (THUMBNAILS, HISTOGRAM)


def _escaped(frame: pd.DataFrame) -> dict:
    """Every column's cells HTML-escaped but the images'."""
    import html

    return {c: (lambda v: html.escape(str(v))) for c in frame.columns if c not in HTML_ONLY}


def _near_duplicates(meta, manifest: pd.DataFrame) -> pd.DataFrame:
    """The evaluation images that look like near copies of an earlier split's, with their
    similarity and what the policy did; in HTML, both thumbnails side by side."""
    found = getattr(meta, "near_duplicates", {}) or {}
    if not found.get("pairs"):
        checked = "none found" if found else "not checked (prepared before the check existed)"
        return pd.DataFrame({"": [checked]})
    thumbnails = dict(zip(manifest["id"], manifest.get("thumbnail", []), strict=False))
    action = {"warn": "kept", "drop_from_eval": "dropped", "error": "stopped"}[found["policy"]]
    return pd.DataFrame(
        [
            {
                "split": p["split"],
                "image": p["id"],
                "near copy of": f"{p['near_split']} {p['near_of']}",
                "r": f"{p['similarity']:.3f}",
                "how": p.get("view", ""),  # datasets prepared before it was recorded: blank
                f"`near_duplicates: {found['policy']}`": action,
                THUMBNAILS: " ".join(
                    _thumbnail_html(thumbnails.get(i)) for i in (p["id"], p["near_of"])
                ),
            }
            for p in found["pairs"]
        ]
    )


def _closeness(meta) -> pd.DataFrame:
    """Per evaluation split, the spread of each image's closest earlier image's similarity:
    copies stand apart near 1, while distinct images of one modality spread below, their top
    rising with the size of the earlier splits (bench/results_near_duplicates_scale.md), so a
    pair flagged at the top of that spread may be two patients alike; in HTML, a histogram
    with the threshold."""
    found = getattr(meta, "near_duplicates", {}) or {}
    closest = found.get("closest")
    if not closest:
        return pd.DataFrame({"": ["not recorded (prepared before medft recorded it)"]})
    threshold = found["threshold"]
    rows = []
    for split, spread in closest.items():
        at = sum(p["split"] == split for p in found["pairs"])
        quantiles = spread["quantiles"]
        rows.append(
            {
                "split": split,
                "images": spread["images"],
                "median r": f"{quantiles['50']:.3f}",
                "90th percentile": f"{quantiles['90']:.3f}",
                "99th percentile": f"{quantiles['99']:.3f}",
                f"r ≥ {threshold}": f"{at} ({at / max(spread['images'], 1):.1%})",
                HISTOGRAM: _histogram_html(spread, threshold),
            }
        )
    return pd.DataFrame(rows)


def _png_html(save) -> str:
    """An <img> of the PNG that ``save(buffer, format="PNG")`` writes, inline."""
    import base64
    import io

    buffer = io.BytesIO()
    save(buffer, format="PNG")
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _histogram_html(spread: dict, threshold: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = spread["bins"]
    figure, axes = plt.subplots(figsize=(3.6, 1.2), dpi=100)
    axes.bar(bins[:-1], spread["counts"], width=bins[1] - bins[0], align="edge", color="0.45")
    axes.axvline(threshold, color="tab:red", linewidth=1)
    axes.set_xlim(bins[0], bins[-1])
    axes.set_yscale("symlog", linthresh=1)  # a few flags stay visible beside hundreds
    axes.set_ylim(0, max(max(spread["counts"]), 1) * 2)
    axes.set_ylabel("images", fontsize=6)
    axes.tick_params(labelsize=6)
    axes.set_xlabel(f"r (red: {threshold}; {spread['below']} below {bins[0]})", fontsize=6)
    figure.tight_layout(pad=0.2)
    html = _png_html(figure.savefig)
    plt.close(figure)
    return html


def _thumbnail_html(thumbnail: bytes | None) -> str:
    from PIL import Image

    from medft.data.near_duplicates import SIDE

    if thumbnail is None:
        return "(dropped)"
    image = Image.frombytes("L", (SIDE, SIDE), thumbnail).resize((64, 64), Image.Resampling.NEAREST)
    return _png_html(image.save)


def write(card: DataCard, stem: Path) -> None:
    """``stem``.md and ``stem``.html."""
    import html

    from medft.report.formats import HTML_PAGE, inline_markup

    markdown = [f"# {card.title}", ""]
    parts = []
    for heading, frame in card.sections:
        shown = frame.drop(columns=list(HTML_ONLY), errors="ignore")
        markdown += [f"## {heading}", "", shown.to_markdown(index=False), ""]
        table = inline_markup(
            frame.to_html(index=False, border=0, escape=False, formatters=_escaped(frame))
        )
        parts.append(f"<h4>{html.escape(heading)}</h4>" + table)
    stem.with_suffix(".md").write_text("\n".join(markdown))
    caption = "What went into the benchmark, from the prepared dataset (docs/data.md)."
    stem.with_suffix(".html").write_text(
        HTML_PAGE.format(title=html.escape(card.title), caption=caption, table="\n".join(parts))
    )
