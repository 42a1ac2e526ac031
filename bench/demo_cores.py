"""How many cores `make demo` keeps busy, and whether its jobs ever run more threads than
it may (issue 35).

Run on a quiet machine: ``python bench/demo_cores.py``; to check a limit below the
machine's, run it under that limit — ``taskset -c 0-3 python bench/demo_cores.py`` or inside
a container started with ``--cpus 4``. It runs the demo's workflow with the command
``make -n demo`` prints (so with the cores the Makefile counts), into a temporary folder, and
samples every second the threads of the demo's processes that are running or ready to run
(state R): Snakemake's, its job scripts', and the warm worker's with the children it forks
for the jobs. *Jobs' threads* leave out Snakemake's own process (the scheduler between
jobs); more of them ready than the cores is oversubscription by the demo's design (a job
running more threads than its ``threads:``). Per second it also reads the machine's busy
cores (``/proc/stat``, machine-wide: hence the quiet machine). Each run adds or replaces its
row (keyed by the cores the demo may use) in ``bench/results_demo_cores.md``.

On a machine with fewer CPUs than a limit to check, ``CORES=4 python bench/demo_cores.py``
runs the demo as ``make demo CORES=4`` would: four one-thread jobs share the CPUs there are.
Busy cores then say nothing about four, but the threads ready do — a thread waiting for a
CPU is still ready — so their mean shows whether the demo keeps four threads in work and
their maximum whether it ever asks for more.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).parent
REPO = HERE.parent
# Once a second: sampled every 0.2 s, the 5-seed demo ran 4 min 53 s against 3 min 8 s
# unsampled (reading every thread's state slowed its jobs on this machine); every second,
# 3 min 5 s.
SAMPLE_S = 1.0
HEADER = [
    "| cores it may use | machine's CPUs | date | wall | cores busy, mean | "
    "seconds with every core busy | jobs' threads ready, mean | "
    "jobs' threads ready > cores: samples (max) | with Snakemake's: samples (max) |",
    "|---|---|---|---|---|---|---|---|---|",
]


def demo_command(results: Path) -> tuple[list[str], int]:
    """``make demo``'s snakemake command, writing under ``results``, and its ``--cores``."""
    plan = subprocess.run(
        ["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in plan.splitlines() if "snakemake --configfile config/demo.yaml" in x)
    words = shlex.split(line.split("2>&1")[0])
    cores = int(words[words.index("--cores") + 1])
    overrides = [f"results={results}", f"data={results / 'data'}"]
    return [*words, "--quiet", "--config", *overrides], cores


def busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def ready_threads(pid: int) -> int:
    count = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread or its process has ended
            continue
        count += text[text.rindex(")") + 2] == "R"
    return count


def demo_pids(scheduler: psutil.Process) -> list[int]:
    """The scheduler's descendants and the warm worker with its children (a daemon, so not
    a descendant; its children carry its command line)."""
    pids = {child.pid for child in scheduler.children(recursive=True)}
    for process in psutil.process_iter(["cmdline"]):
        if "medft.warm" in " ".join(process.info["cmdline"] or []):
            pids.add(process.pid)
    pids.discard(scheduler.pid)
    return sorted(pids)


class Sampler(threading.Thread):
    def __init__(self, scheduler_pid: int) -> None:
        super().__init__(daemon=True)
        self.scheduler = psutil.Process(scheduler_pid)
        self.demo: list[int] = []  # the demo's threads ready, per sample
        self.jobs: list[int] = []  # the same without the scheduler's
        self.busy_per_second: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        window_start, window_busy = time.monotonic(), busy_seconds()
        while not self.stop.wait(SAMPLE_S):
            try:
                jobs = sum(ready_threads(pid) for pid in demo_pids(self.scheduler))
                scheduler = ready_threads(self.scheduler.pid)
            except psutil.NoSuchProcess:  # Snakemake has just finished
                break
            self.jobs.append(jobs)
            self.demo.append(jobs + scheduler)
            now = time.monotonic()
            if now - window_start >= 1.0:
                busy = busy_seconds()
                self.busy_per_second.append((busy - window_busy) / (now - window_start))
                window_start, window_busy = now, busy


def measure() -> dict:
    with tempfile.TemporaryDirectory(prefix="medft-demo-cores-") as folder:
        command, cores = demo_command(Path(folder) / "demo")
        started, busy_before = time.monotonic(), busy_seconds()
        demo = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
        sampler = Sampler(demo.pid)
        sampler.start()
        if demo.wait() != 0:
            raise SystemExit(f"the demo failed (exit {demo.returncode}): {shlex.join(command)}")
        sampler.stop.set()
        sampler.join()
        wall = time.monotonic() - started
        busy = (busy_seconds() - busy_before) / wall
    demo_ready, jobs_ready = np.array(sampler.demo), np.array(sampler.jobs)
    per_second = np.array(sampler.busy_per_second)
    cpus = len(psutil.Process().cpu_affinity())
    return {
        "cores": cores,
        "cpus": psutil.cpu_count(),
        "jobs_mean": float(jobs_ready.mean()),
        "wall": wall,
        "busy": busy,
        "all_busy": float((per_second >= 0.9 * min(cores, cpus)).mean()),
        "jobs_over": float((jobs_ready > cores).mean()),
        "jobs_max": int(jobs_ready.max()),
        "demo_over": float((demo_ready > cores).mean()),
        "demo_max": int(demo_ready.max()),
    }


def row(result: dict) -> str:
    minutes, seconds = divmod(round(result["wall"]), 60)
    return (
        f"| {result['cores']} | {result['cpus']} | {datetime.date.today()} | "
        f"{minutes} min {seconds:02d} s | {result['busy']:.2f} | {result['all_busy']:.0%} | "
        f"{result['jobs_mean']:.2f} | "
        f"{result['jobs_over']:.1%} ({result['jobs_max']}) | "
        f"{result['demo_over']:.1%} ({result['demo_max']}) |"
    )


def write(out: Path, result: dict) -> None:
    rows = {}
    if out.exists():
        for line in out.read_text().splitlines():
            # a row from before a column was added is dropped: rerun it
            if re.match(r"\| \d+ \|", line) and line.count("|") == HEADER[0].count("|"):
                rows[int(line.split("|")[1])] = line
    rows[result["cores"]] = row(result)
    text = [
        "# `make demo`: the cores it uses and the threads it runs",
        "",
        "`python bench/demo_cores.py` (under `taskset` or a container's CPU limit for fewer "
        "cores than the machine's), on a quiet machine; what it samples: its docstring. "
        "*Cores busy*: the machine's busy CPU time over the wall time; *every core busy*: the "
        "share of one-second windows with at least 90 % of the allowed cores (or of the CPUs, "
        "where fewer) busy (the serial start and the report at the end are not); "
        "*threads ready*: running or ready to run, "
        f"sampled every {SAMPLE_S} s — the jobs' (training, post-hoc, reports: the warm "
        "worker's children and the job scripts), then with Snakemake's scheduler added. "
        "A row with more cores than CPUs ran `CORES=N` on this machine: its threads show "
        "what the demo asks of N cores, its busy cores only what the CPUs could give.",
        "",
        *HEADER,
        *(rows[k] for k in sorted(rows)),
        "",
    ]
    out.write_text("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results_demo_cores.md")
    args = parser.parse_args()
    result = measure()
    write(args.out, result)
    print(row(result), file=sys.stderr)


if __name__ == "__main__":
    main()
