"""Users' CSV tables (a dataset's labels, results from elsewhere), read with the two mistakes
a spreadsheet's export makes named by line and fix: another separator (semicolons where the
locale's decimal mark is the comma, tabs) and another encoding (Windows-1252)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medft.errors import DataError

OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs"}
SPREADSHEETS = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")


def read_csv(path: Path, **options) -> pd.DataFrame:
    """``pd.read_csv(path, **options)`` of a UTF-8, comma-separated table, or a ``DataError``
    that says what the file is instead and how to save it."""
    if path.suffix.lower() in SPREADSHEETS:
        raise DataError(
            f"{path}: a spreadsheet workbook; save the sheet as CSV UTF-8 (comma delimited) or "
            "as .parquet and give that file"
        )
    _check_utf8(path)
    try:
        table = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the table is empty (no header row)") from None
    except (pd.errors.ParserError, OSError) as error:
        raise DataError(f"{path}: cannot read the table ({error})") from None
    if len(table.columns) == 1:
        header = str(table.columns[0])
        for separator, name in OTHER_SEPARATORS.items():
            if separator in header:
                raise DataError(
                    f"{path}: one column, {header!r}: separated by {name}, and medft reads "
                    "comma-separated CSV; save it with commas (a spreadsheet's 'CSV (comma "
                    "delimited)') or as .parquet"
                )
    return table


def _check_utf8(path: Path) -> None:
    """Another encoding stops at the line of its first such character, not at a byte offset
    of a parser's buffer."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the "
            "table as UTF-8 (a spreadsheet's 'CSV UTF-8')"
        ) from None
