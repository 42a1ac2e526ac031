"""One self-contained HTML page of a ``medft report`` folder (the workflow's page is
Snakemake's ``--report``): every table and figure, across datasets first, then per dataset,
in the artefact registry's order; figures embedded, so the page travels alone."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from medft.report.formats import HTML_PAGE

BODY = re.compile(r"<body>(.*)</body>", re.S)


def section(folder: Path, stems: list[str]) -> str:
    parts = [f"<h2>{html.escape(folder.name)}</h2>"]
    for stem in stems:
        table, figure = folder / f"{stem}.html", folder / f"{stem}.png"
        if table.exists():
            parts.append(BODY.search(table.read_text()).group(1))
        elif figure.exists():
            data = base64.b64encode(figure.read_bytes()).decode()
            parts.append(
                f'<figure><img style="max-width:100%" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(stem.replace('_', ' '))} "
                f"({html.escape(figure.name)}; PDF beside it where written)</figcaption></figure>"
            )
    return "\n".join(parts)


def write_page(out: Path, summary: Path, datasets: list[Path], title: str) -> Path:
    """``out/report.html`` from the summary folder and each dataset's folder."""
    from medft.report.artefacts import DATASET, SUMMARY, artefacts_of

    body = [section(summary, [a.stem for a in artefacts_of(SUMMARY)])]
    body += [section(folder, [a.stem for a in artefacts_of(DATASET)]) for folder in datasets]
    page = HTML_PAGE.format(title=html.escape(title), caption="", table="\n".join(body))
    path = out / "report.html"
    partial = path.with_suffix(".html.partial")  # a browser open on the page never sees half
    partial.write_text(page)
    partial.replace(path)
    return path
