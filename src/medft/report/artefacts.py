"""Every table and figure of a report, registered once each (``ARTEFACTS``, from
``medft.report.catalogue``): per dataset and across datasets. The workflow's outputs, their
``report()`` captions (``workflow/report/<stem>.rst``), the written files and docs/report.md's
list all derive from the entries. The workflow's report rules and ``medft report`` both call
``dataset_artefacts`` and ``summary_artefacts``.

Adding an artefact: a writer in ``dataset_writers``, ``post_hoc_writers`` or
``summary_writers``, decorated with
``@artefact(...)`` and documented by its docstring, and its caption file
``workflow/report/<stem>.rst`` (docs/architecture.md); ``make docs`` updates docs/report.md.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# Imported for their registrations, in the order the report shows them.
from medft.report import dataset_writers, post_hoc_writers, summary_writers  # noqa: F401
from medft.report.catalogue import ARTEFACTS, DATASET, SUMMARY, Artefact, artefacts_of
from medft.report.evidence import DatasetReport, Evidence, SummaryReport

__all__ = ["ARTEFACTS", "Artefact", "artefacts_of", "dataset_artefacts", "summary_artefacts"]

DOCS_BEGIN = (
    "<!-- artefacts: written by `make docs` from the registry; edit the writers' docstrings -->"
)
DOCS_END = "<!-- end of artefacts -->"


def _write(entries: list[Artefact], report, out: Path, allowed) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in entries:
        if allowed(entry):
            entry.write(report, out / entry.stem)
            written += [out / name for name in entry.files]
    return written


def dataset_artefacts(
    evidence: Evidence,
    out: str | Path,
    metrics: list[str] | None = None,
    protocol: str = "",
) -> list[Path]:
    """Write one dataset's tables and figures into ``out``; returns the paths written."""
    report = DatasetReport(evidence, metrics, protocol)
    entries = artefacts_of(DATASET)
    return _write(entries, report, Path(out), lambda entry: entry.available(evidence))


def summary_artefacts(
    evidence: list[Evidence], out: str | Path, blocks: str = "dataset"
) -> list[Path]:
    """Table 11, Table 12, the across-dataset tests (``blocks``: ``across.BLOCKS``) and the
    heatmap, into ``out``."""
    return _write(
        artefacts_of(SUMMARY),
        SummaryReport(evidence, blocks),
        Path(out),
        lambda entry: any(entry.available(e) for e in evidence),
    )


def folder_name(dataset: str) -> str:
    """A dataset's report folder: its name with anything but letters, digits and ``._-`` as
    ``_``."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in dataset)


def write_report(items: list, out: str | Path, blocks: str, title: str) -> list[Path]:
    """A whole report folder: each dataset's artefacts under ``out/<dataset>/`` (``items``:
    (evidence, metrics, protocol) per dataset), the summary under ``out/summary/``, and all
    of them on one page, ``out/report.html``. ``medft report`` writes through it.

    Written first beside ``out`` (``.<name>.writing``) and moved in file by file only when
    every artefact is written: a report that fails part-way (a dataset's statistics running
    out of memory) leaves the earlier report whole, not a mix of two. The page comes last."""
    from medft.report.page import write_page

    out = Path(out)
    staging = out.parent / f".{out.name}.writing"
    shutil.rmtree(staging, ignore_errors=True)
    folders = []
    for evidence, metrics, protocol in items:
        folders.append(folder_name(evidence.dataset))
        dataset_artefacts(evidence, staging / folders[-1], metrics, protocol)
    summary_artefacts([item[0] for item in items], staging / "summary", blocks)
    written = []
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        final = out / path.relative_to(staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)
        written.append(final)
    shutil.rmtree(staging)
    _remove_stale([(out / f, DATASET) for f in folders] + [(out / "summary", SUMMARY)], written)
    written.append(write_page(out, out / "summary", [out / f for f in folders], title))
    return written


def _remove_stale(folders: list[tuple[Path, str]], written: list[Path]) -> None:
    """Artefact files an earlier report left in these folders that this one did not write —
    the missing cells of a provisional report, since finished; a table the evidence no longer
    allows — are removed: the page shows every artefact file it finds, and must not show an
    earlier report's. Only artefact names of the registry are touched, never another file."""
    kept = set(written)
    for folder, scope in folders:
        for entry in artefacts_of(scope):
            for path in (folder / name for name in entry.files):
                if path not in kept and path.exists():
                    path.unlink()


def docs_section() -> str:
    """docs/report.md's list of artefacts, from the registry."""
    folders = {DATASET: "<dataset>", SUMMARY: "summary"}
    lines = [DOCS_BEGIN, ""]
    for entry in (ARTEFACTS.get(name) for name in ARTEFACTS.names()):
        formats = (
            entry.formats[0] if len(entry.formats) == 1 else "{" + ",".join(entry.formats) + "}"
        )
        lines.append(f"- **`{folders[entry.scope]}/{entry.stem}.{formats}`** — {entry.description}")
    return "\n".join([*lines, "", DOCS_END])


def write_docs(path: str | Path) -> bool:
    """Replace the artefact list in ``path`` (docs/report.md); True when it changed."""
    path = Path(path)
    text = path.read_text()
    head, rest = text.split(DOCS_BEGIN, 1)
    tail = rest.split(DOCS_END, 1)[1]
    new = head + docs_section() + tail
    path.write_text(new)
    return new != text


if __name__ == "__main__":
    write_docs(sys.argv[1] if len(sys.argv) > 1 else "docs/report.md")
