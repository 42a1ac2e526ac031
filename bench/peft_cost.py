"""Step time, peak memory and trainable share of the parameter-efficient strategies against FT,
on the paper's three CNNs and a ViT (issue 22).

Run: ``python bench/peft_cost.py [--device cpu|cuda] [--size 224] [--batch 8]``; writes
``bench/results_peft.md`` (``results_peft_gpu.md`` on a GPU). Each (model, strategy) runs in
its own process, so its peak resident memory (CPU) or peak allocated memory (CUDA) is its own:
the model built with random weights (timing does not depend on them) and a new 2-class head,
the strategy's epoch-start hook, then ``WARMUP`` steps and the median of ``STEPS`` timed
training steps (forward, loss, backward, Adam) on random images.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = ["resnet50", "densenet121", "vgg19", "vit_base_patch16_224"]
STRATEGIES = ["FT", "BitFit", "LoRA", "SSF"]
STEPS, WARMUP = 5, 1
OUT = Path(__file__).resolve().parent


def measure(model_name: str, strategy_name: str, device: str, size: int, batch: int) -> dict:
    import torch

    from medft.models import create_model
    from medft.strategies import STRATEGIES, StrategyOptions
    from medft.strategies.base import EpochContext

    torch.manual_seed(0)
    options = StrategyOptions()
    model = create_model(model_name, 2, "none")
    info = STRATEGIES.get(strategy_name)
    info.cls.extend_model(model, options)
    model.module.to(device)
    strategy = info.cls(model, 1e-4, options)
    optimizer = torch.optim.Adam(strategy.param_groups(), lr=1e-4)
    strategy.on_epoch_start(EpochContext(0, optimizer, lambda n: iter(())))
    strategy.train_mode()
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(WARMUP + STEPS):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model.module(images), labels)
        extra = strategy.extra_loss()
        (loss + extra if extra is not None else loss).backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= WARMUP:
            times.append(time.perf_counter() - started)
    params = list(model.module.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    peak_mb = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "model": model_name,
        "strategy": strategy_name,
        "step_s": statistics.median(times),
        "peak_mb": peak_mb,
        "trainable_share": trainable / sum(p.numel() for p in params),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "STRATEGY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.device, args.size, args.batch)))
        return
    rows = []
    for model in MODELS:
        for strategy in STRATEGIES:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--device",
                    args.device,
                    "--size",
                    str(args.size),
                    "--batch",
                    str(args.batch),
                    "--one",
                    model,
                    strategy,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    ft = {r["model"]: r for r in rows if r["strategy"] == "FT"}
    memory = "peak allocated (CUDA)" if args.device == "cuda" else "peak resident (process)"
    lines = [
        "# Parameter-efficient strategies against FT: step time, memory, trainable share",
        "",
        f"`python bench/peft_cost.py --device {args.device}`: {platform.processor() or 'cpu'},"
        f" {args.size} px, batch {args.batch}, random weights, median of {STEPS} steps after"
        f" {WARMUP} warm-up; each (model, strategy) in its own process. Memory: {memory}.",
        "",
        "| model | strategy | step s | × FT | memory MB | × FT | trainable share |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = ft[r["model"]]
        lines.append(
            f"| {r['model']} | {r['strategy']} | {r['step_s']:.3f} | "
            f"{r['step_s'] / base['step_s']:.2f} | {r['peak_mb']:.0f} | "
            f"{r['peak_mb'] / base['peak_mb']:.2f} | {r['trainable_share']:.2%} |"
        )
    name = "results_peft_gpu.md" if args.device == "cuda" else "results_peft.md"
    (OUT / name).write_text("\n".join(lines) + "\n")
    print((OUT / name).read_text())


if __name__ == "__main__":
    main()
