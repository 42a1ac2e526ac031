"""A table as the report writes it: Markdown, a standalone HTML page, booktabs LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medft.report.tables import NO_VALUE


def write_markdown(path: Path, title: str, caption: str, frame: pd.DataFrame) -> None:
    path.write_text(f"# {title}\n\n{caption}\n\n{frame.to_markdown(index=False)}\n")


HTML_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body {{ font-family: sans-serif; margin: 1em; }} p {{ max-width: 60em; color: #333; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
</style></head><body><h3>{title}</h3><p>{caption}</p>{table}</body></html>
"""


def inline_markup(text: str) -> str:
    """Markdown's bold (``**``) and code (backticks: option names, ``key: value``) as HTML, in
    text that is already HTML: the Markdown files and the pages say the same."""
    import re

    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`([^`<>\n]+)`", r"<code>\1</code>", text)


def write_html(path: Path, title: str, caption: str, frame: pd.DataFrame, index=False) -> None:
    """A standalone page (the Snakemake report embeds it); ``frame``'s cells may hold HTML
    (``inline_markup``)."""
    import html

    table = inline_markup(frame.to_html(index=index, border=0, escape=False, na_rep=NO_VALUE))
    path.write_text(
        HTML_PAGE.format(
            title=html.escape(title), caption=inline_markup(html.escape(caption)), table=table
        )
    )


def write_table(stem: Path, title: str, caption: str, frame: pd.DataFrame) -> list[Path]:
    """``stem``.md and ``stem``.html; returns both paths."""
    paths = [stem.with_suffix(".md"), stem.with_suffix(".html")]
    write_markdown(paths[0], title, caption, frame)
    write_html(paths[1], title, caption, frame)
    return paths


# Characters of captions and cells that LaTeX (pdflatex) cannot set as they are.
LATEX_SYMBOLS = {
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "▲": r"$\blacktriangle$",
    "▼": r"$\blacktriangledown$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "κ": r"$\kappa$",
    "×": r"$\times$",
    "±": r"$\pm$",
    "≥": r"$\geq$",
    "–": "--",
    "†": r"\dag{}",
}


def latex_escape(text: str) -> str:
    for char in "\\&%$#_{}":
        text = text.replace(char, "\\" + char)
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def to_latex(frame: pd.DataFrame, caption: str, label: str, index: bool = True) -> str:
    """A booktabs table (``\\toprule``, ``\\midrule``, ``\\bottomrule``) via pandas' Styler;
    the cells already hold their LaTeX markup."""
    styler = frame.style
    if not index:
        styler = styler.hide(axis="index")
    styler = styler.format_index(escape="latex", axis=1)
    if index:
        styler = styler.format_index(escape="latex", axis=0)
    return styler.to_latex(
        hrules=True,
        multicol_align="c",
        caption=latex_escape(caption),
        label=label,
        position_float="centering",
    )
