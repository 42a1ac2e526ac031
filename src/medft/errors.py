"""The errors a user can fix: each message names the file, row, key or cell and says what to do.

The command line and the workflow's jobs print them as one line, without a traceback.
"""


class DataError(ValueError):
    """Bad input data; the message names the file or row and says what to do."""


class ConfigError(DataError):
    """A config key or option that cannot work; the message names the key and the fix."""


class DivergedError(RuntimeError):
    """A run whose training loss became non-finite before any epoch could be kept."""


class DiskFullError(OSError):
    """A write that failed for lack of space; nothing half-written is left."""


USER_ERRORS = (DataError, DivergedError, DiskFullError, FileNotFoundError)
