"""The field of a typed option, for strategies' options and data sources' alike: its default,
the line of help the command line shows for it, and what values it accepts."""

from __future__ import annotations

from dataclasses import MISSING, field
from typing import Any


def option(
    default: Any = MISSING,
    help: str = "",  # noqa: A002 (argparse's word, read by the command line)
    *,
    factory: Any = MISSING,
    choices: tuple | None = None,
    minimum: float | None = None,
):
    """A dataclass field with ``help``, ``choices`` and ``min`` in its metadata; no default
    (and no ``factory``) makes the option required."""
    return field(
        default=default,
        default_factory=factory,
        metadata={"help": help, "choices": choices, "min": minimum},
    )
