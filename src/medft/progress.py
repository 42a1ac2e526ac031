"""A compact view of a Snakemake run for a person at the terminal: ``snakemake ... 2>&1 |
python -m medft.progress``. One line when a job starts (at most every ``--every`` seconds),
at least once a minute while a long one runs, and at the end: the elapsed time, steps done
of the total with a percentage, and what is running (rule, dataset, strategy, lr, seed) —
instead of Snakemake's scheduler lines for every job. Errors pass through whole: from the
first line that reports one, everything is printed as Snakemake wrote it. The exit status is
the caller's (``set -o pipefail``); nothing is lost, since Snakemake keeps its full log under
``.snakemake/log/``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import threading
import time
from typing import TextIO

STEPS = re.compile(r"(\d+) of (\d+) steps \((\d+%)\) done")
RULE = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):")
JOBID = re.compile(r"^\s*jobid: (\d+)")
WILDCARDS = re.compile(r"^\s*wildcards: (.*)")
FINISHED = re.compile(r"Finished jobid: (\d+)")
ERROR = re.compile(r"Error|Exception|Traceback|Exiting because|MissingInput")
SHOWN = ("dataset", "model", "strategy", "evaluation", "lr", "seed")


class Progress:
    # The heartbeat is checked every 5 s: 50 s keeps a line at least once a minute.
    def __init__(self, out: TextIO, every_s: float = 10.0, heartbeat_s: float = 50.0) -> None:
        self.out, self.every_s, self.heartbeat_s = out, every_s, heartbeat_s
        self.started = time.monotonic()
        self.printed_at = -math.inf  # the first job's start is always shown
        self.done, self.total, self.percent = 0, 0, "0%"
        self.running: dict[str, str] = {}  # jobid -> what it is
        self.rule = self.jobid = ""
        self.failed = False
        self.last = ""
        self.lock = threading.Lock()

    def feed(self, line: str) -> None:
        with self.lock:
            if self.failed or ERROR.search(line):
                self.failed = True
                self.out.write(line)
                self.out.flush()
                return
            if match := RULE.match(line):
                self.rule, self.jobid = match.group(1), ""
            elif match := JOBID.match(line):
                self.jobid = match.group(1)
                self.running[self.jobid] = self.rule
            elif (match := WILDCARDS.match(line)) and self.jobid:
                self.running[self.jobid] = f"{self.rule} {_shown(match.group(1))}"
                self._maybe_print()
            elif match := FINISHED.search(line):
                self.running.pop(match.group(1), None)
            elif match := STEPS.search(line):
                self.done, self.total = int(match.group(1)), int(match.group(2))
                self.percent = match.group(3)
                if self.done == self.total:
                    self._print()

    def _maybe_print(self) -> None:
        if time.monotonic() - self.printed_at >= self.every_s:
            self._print()

    def heartbeat(self) -> None:
        with self.lock:
            if not self.failed and time.monotonic() - self.printed_at >= self.heartbeat_s:
                self._print()

    def finish(self) -> None:
        with self.lock:
            if not self.failed and self.total:
                self._print()

    def _print(self) -> None:
        jobs = list(self.running.values())
        now = "; ".join(jobs[:3]) + (f"; +{len(jobs) - 3} more" if len(jobs) > 3 else "")
        steps = f"{self.done}/{self.total} steps ({self.percent})" if self.total else "starting"
        state = steps + (f" — running: {now}" if now else "")
        self.printed_at = time.monotonic()
        if state == self.last and self.done == self.total:
            return  # the end, already said
        self.last = state
        elapsed = int(self.printed_at - self.started)
        self.out.write(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {state}\n")
        self.out.flush()


def _shown(wildcards: str) -> str:
    """``dataset=d, model=m, strategy=FT, lr=0.001, seed=0`` as ``d m FT lr0.001 seed0``."""
    values = dict(item.split("=", 1) for item in wildcards.split(", ") if "=" in item)
    prefix = {"lr": "lr", "seed": "seed"}
    return " ".join(f"{prefix.get(k, '')}{values[k]}" for k in SHOWN if k in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=10.0, help="seconds between lines")
    args = parser.parse_args(argv)
    progress = Progress(sys.stdout, args.every)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(5):
            progress.heartbeat()

    threading.Thread(target=beat, daemon=True).start()
    for line in sys.stdin:
        progress.feed(line)
    stop.set()
    progress.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
