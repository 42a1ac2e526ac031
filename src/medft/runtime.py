"""What every job shares: seeding, the device, atomic writes, progress-bar pacing."""

from __future__ import annotations

import errno
import logging
import os
import pickle
import random
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from medft.errors import DataError, DiskFullError

T = TypeVar("T")
log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """Mixed precision on CUDA (bf16: no loss scaling needed), full precision on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that becomes ``path`` only when written completely; a
    failed write (a full disk) removes it and names ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except (OSError, RuntimeError) as error:
        tmp.unlink(missing_ok=True)
        if getattr(error, "errno", None) == errno.ENOSPC:
            free = shutil.disk_usage(path.parent).free
            raise DiskFullError(
                errno.ENOSPC,
                f"no space left writing {path} ({free / 2**20:.0f} MiB free); free space "
                "and run again: the run resumes from its last checkpoint",
            ) from None
        raise
    os.replace(tmp, path)


def atomic_save(obj, path: Path) -> None:
    # Through a Python file, so that a full disk surfaces as ENOSPC rather than as the zip
    # writer's RuntimeError.
    with _replacing(path) as tmp, open(tmp, "wb") as file:
        torch.save(obj, file)


def atomic_write_text(text: str, path: Path) -> None:
    with _replacing(path) as tmp:
        tmp.write_text(text)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint read as tensors and plain values only: unpickling arbitrary objects
    would run any code a planted file holds."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise DataError(
            f"{path} is not a medft checkpoint (it holds objects other than tensors and plain "
            f"values: {str(error).splitlines()[0]}); delete it to start the run afresh"
        ) from None


# Seconds between progress lines in a log file.
LOG_PROGRESS_EVERY_S = 60.0


def progress(iterable: Iterable[T], total: int, desc: str, unit: str = "it") -> Iterator[T]:
    """A live progress bar on a terminal; elsewhere (a job's log file, a pipe), one plain line
    per minute: a bar's carriage-return redraws would fill the log."""
    if sys.stderr.isatty():
        yield from tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)
        return
    started = last = time.monotonic()
    for done, item in enumerate(iterable, 1):
        yield item
        now = time.monotonic()
        if now - last >= LOG_PROGRESS_EVERY_S and done < total:
            last = now
            log.info(
                "%s: %d/%d %s (%.0f%%, %.0f s)",
                desc,
                done,
                total,
                unit,
                100 * done / total,
                now - started,
            )
