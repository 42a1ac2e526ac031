"""How long `snakemake -n` of the paper's grid (config.yaml: 1,728 train jobs) takes, against
the same dry run of an earlier commit, measured in one run on this machine.

Run: ``python bench/dry_run.py [--against REF] [--rounds 5]``; writes
``bench/results_dry_run.md``. REF (default: 916aa00, before the planner stopped importing
torch) is checked out into a temporary git worktree and run with its own ``src`` first on
``PYTHONPATH``; the two are timed in alternation, so load on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results_dry_run.md"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
NOTES = """\
Where the rest goes (cProfile of one dry run): medft's own planning (Snakefile, common.smk, the
Grid, the cost model) is about 0.3 s; the remainder is Snakemake's per-job work (about 1 ms per
job for evaluating input, resource and params functions, each through `inspect.signature`, and
re-reading the job's script to check it exists) and its imports (about 1 s, a third of it
pandas through the SLURM executor plugin). That is why a train job has one input function.
Both checkouts vary by ±20 % between runs on this machine; compare within one run.
A leftover `/etc/slurm/slurm.conf` without a running controller makes the SLURM plugin's
import wait 9 s: measure without it.
"""


def dry_run(checkout: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    started = time.perf_counter()
    result = subprocess.run(
        [str(SNAKEMAKE), "--dry-run", "--quiet", "rules", "--nolock"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0 or "train" not in result.stdout:
        raise RuntimeError(f"dry run in {checkout} failed:\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="916aa00")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.against],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        try:
            times: dict[str, list[float]] = {"now": [], args.against: []}
            dry_run(REPO), dry_run(base)  # warm the file cache for both
            for _ in range(args.rounds):
                times["now"].append(dry_run(REPO))
                times[args.against].append(dry_run(base))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO)
    now, before = statistics.median(times["now"]), statistics.median(times[args.against])
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    OUT.write_text(
        "# Dry run of the paper's grid (`snakemake -n --quiet rules`, 1,728 train jobs)\n\n"
        f"`python bench/dry_run.py --against {args.against} --rounds {args.rounds}`, "
        f"{os.cpu_count()} cores; the two checkouts timed in alternation, median of "
        f"{args.rounds} rounds each.\n\n"
        "| checkout | median s | each round (s) |\n|---|---|---|\n"
        f"| {head} (this one) | {now:.2f} | {', '.join(f'{t:.2f}' for t in times['now'])} |\n"
        f"| {args.against} | {before:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in times[args.against])} |\n\n"
        f"Ratio: {now / before:.2f} of {args.against}'s time.\n\n{NOTES}"
    )
    print(OUT.read_text())


if __name__ == "__main__":
    main()
