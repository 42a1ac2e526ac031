"""The errors a user can fix: each message names the file, row, key or cell and says what to do.

The command line and the workflow's jobs print them as one line, without a traceback.
"""

from collections.abc import Iterator
from contextlib import contextmanager


class DataError(ValueError):
    """Bad input data; the message names the file or row and says what to do."""


class ConfigError(DataError):
    """A config key or option that cannot work; the message names the key and the fix."""


class DivergedError(RuntimeError):
    """A run whose training loss became non-finite before any epoch could be kept."""


class DiskFullError(OSError):
    """A write that failed for lack of space; nothing half-written is left."""


USER_ERRORS = (DataError, DivergedError, DiskFullError, FileNotFoundError)


@contextmanager
def reading(where: str, what: str) -> Iterator[None]:
    """Any failure to read inside as a ``DataError`` naming the row (``where``) and the file
    (``what``, e.g. "DICOM file x.dcm"): image libraries raise many types for broken files."""
    try:
        yield
    except DataError:
        raise
    except Exception as error:
        reason = " ".join(str(error).split())  # one line, whatever the library printed
        raise DataError(
            f"{where}: cannot read {what} ({reason}); re-export the file or remove its row"
        ) from None
