"""Per-step cost of each strategy relative to FT, and LP on cached features vs full passes.

Run: ``python bench/strategy_overhead.py`` (or ``make bench``); writes ``bench/results.md``.
Uses the synthetic multi-class task and timm's efficientnet_lite0 with the offline ImageNet
weights, at 64 px, batch 64, on whatever device torch picks (the CPU here).
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from medft.data import synthetic
from medft.data.preprocess import Preprocess
from medft.engine import Cell, TrainConfig
from medft.strategies import EpochContext, StrategyOptions, strategy_names

MODEL, WEIGHTS, SIZE, BATCH = "efficientnet_lite0", "efficientnet-lite0-offline", 64, 64
STEPS, WARMUP = 12, 3


def make_cell(data: Path, out: Path, strategy: str, **overrides) -> Cell:
    return Cell(
        TrainConfig(
            data=str(data),
            model=MODEL,
            weights=WEIGHTS,
            strategy=strategy,
            lr=1e-4,
            seed=0,
            out=str(out),
            batch_size=BATCH,
            **overrides,
        )
    )


def step_times(cell: Cell) -> tuple[list[float], float]:
    """Seconds per optimizer step once every block a strategy will train is trainable, and the
    seconds its epoch-start hook takes (Auto-RGN's gradient probe)."""
    cell.build()
    epoch = 100  # past the last unfreezing epoch of G-LF / G-FL
    started = time.perf_counter()
    cell.strategy.on_epoch_start(EpochContext(epoch, cell.optimizer, cell.probe_gradients(epoch)))
    hook_seconds = time.perf_counter() - started
    cell.strategy.train_mode()
    train = cell.splits["train"]
    batches = list(train.batches(BATCH, shuffle_seed=0))
    times = []
    for i in range(WARMUP + STEPS):
        inputs, targets = batches[i % len(batches)]
        started = time.perf_counter()
        loss = cell.loss(inputs, targets)
        extra = cell.strategy.extra_loss()
        objective = loss if extra is None else loss + extra
        cell.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        cell.optimizer.step()
        if i >= WARMUP:
            times.append(time.perf_counter() - started)
    return times, hook_seconds


def main() -> None:
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="medft-bench-"))
    data = synthetic.prepare("synth-histology", Preprocess(SIZE, SIZE), work / "data", n_images=400)
    lp_init = make_cell(data, work / "lp", "LP", epochs=1)
    lp_init.run()
    lines = [
        f"# Benchmarks ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'})",
        "",
        f"## Per-step time relative to FT ({MODEL}, {SIZE} px, batch {BATCH}, "
        f"median of {STEPS} steps)",
        "",
        "| strategy | s/step | vs FT | epoch-start hook (s) |",
        "|---|---|---|---|",
    ]
    medians = {}
    for name in strategy_names():
        overrides = {"init": str(work / "lp" / "best.pt")} if name == "LP-FT" else {}
        # LP is timed by full passes here; the cached-feature path is the next table.
        options = StrategyOptions(lp_feature_cache=False)
        times, hook = step_times(make_cell(data, work / name, name, options=options, **overrides))
        medians[name] = statistics.median(times)
        ratio = medians[name] / medians["FT"]
        lines.append(f"| {name} | {medians[name]:.3f} | {ratio - 1:+.1%} | {hook:.2f} |")
        print(lines[-1], flush=True)

    lines += [
        "",
        "## LP over 10 epochs: cached features vs full forward passes",
        "",
        "| LP variant | seconds (10 epochs, incl. feature extraction) |",
        "|---|---|",
    ]
    seconds = {}
    for label, cache in (("cached features", True), ("full passes", False)):
        cell = make_cell(
            data,
            work / f"lp10-{cache}",
            "LP",
            epochs=10,
            patience=100,
            options=StrategyOptions(lp_feature_cache=cache),
        )
        started = time.perf_counter()
        cell.run()
        seconds[label] = time.perf_counter() - started
        lines.append(f"| {label} | {seconds[label]:.1f} |")
        print(lines[-1], flush=True)
    speedup = seconds["full passes"] / seconds["cached features"]
    lines += [
        "",
        f"Speed-up of cached features: {speedup:.1f}x",
        "",
        "Auto-RGN's epoch-start hook runs forward/backward on 5 extra batches per epoch "
        "(no step); relative to an epoch of N batches that is 5/N of an epoch.",
    ]
    out = Path(__file__).with_name("results.md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
