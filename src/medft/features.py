"""Frozen-backbone features: what LP trains its head on instead of images.

LP's backbone is frozen and in eval mode, and there is no augmentation, so what enters the
head is a fixed function of the image. It is computed once per split. In the workflow it is
computed once per (dataset, model) into a file that all LP cells of that pair share — the
lrs and seeds only change the head — and ``medft train --features FILE`` reads such a file.
A file records what it was made from and is refused by a run that would have made other
features.
"""

from __future__ import annotations

from pathlib import Path

import torch

from medft.data.shards import CPU, MEMORY_FORMAT, ShardDataset, batch_indices, read_meta
from medft.models import BuiltModel, create_model
from medft.runtime import (
    atomic_save,
    autocast,
    default_device,
    progress,
    seed_everything,
)

SPLITS = ("train", "val", "test")


class FeatureSet:
    """Cached head inputs of one split, batched like ``ShardDataset``."""

    def __init__(self, features: torch.Tensor, images: ShardDataset) -> None:
        """``features`` of ``images``, row by row; their targets, ids and groups."""
        self.features = features
        self.targets, self.ids, self.groups = images.targets, images.ids, images.groups

    def __len__(self) -> int:
        return len(self.ids)

    def batches(self, batch_size: int, shuffle_seed: int | None = None, device=CPU):
        for indices in batch_indices(len(self), batch_size, shuffle_seed):
            yield (
                self.features[indices].to(device, non_blocking=True),
                self.targets[indices].to(device, non_blocking=True),
            )

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)


@torch.inference_mode()
def head_inputs(model: BuiltModel, split: ShardDataset, batch_size: int, device) -> FeatureSet:
    """Run the frozen backbone once over ``split`` and keep what enters the head, under the
    same precision as training's forward passes, so that both ways of LP compute the same."""
    captured: list[torch.Tensor] = []
    hook = model.head_module.register_forward_hook(
        lambda module, inputs, output: captured.append(inputs[0].float().cpu())
    )
    model.module.eval()
    try:
        for images, _ in progress(
            split.batches(batch_size, device=device),
            split.num_batches(batch_size),
            f"features {split.split}",
            unit="batches",
        ):
            with autocast(device):
                model.module(images)
    finally:
        hook.remove()
    return FeatureSet(torch.cat(captured), split)


def provenance(data: str | Path, model: str, weights: str, seed: int) -> dict:
    """What the features depend on (besides the images, whose ids are checked one by one).
    A randomly initialised backbone depends on the seed."""
    meta = read_meta(data)
    return {
        "dataset": meta.name,
        "image_size": meta.image_size,
        "model": model,
        "weights": weights,
        "backbone_seed": seed if weights == "none" else None,
    }


def extract(
    data: str | Path,
    model: str,
    weights: str,
    out: str | Path,
    batch_size: int = 64,
    seed: int = 0,
    workers: int = 0,
    backbone: dict | None = None,
) -> Path:
    """Write every split's features of ``data`` under ``model``/``weights`` to ``out``."""
    meta = read_meta(data)
    seed_everything(seed)  # as a training run does, so that weights 'none' give its backbone
    built = create_model(model, len(meta.classes), weights, seed=seed, backbone=backbone)
    device = default_device()
    built.module.to(device, memory_format=MEMORY_FORMAT)
    splits = {}
    for split in (s for s in SPLITS if meta.split_counts.get(s)):
        images = ShardDataset(data, split, built.mean, built.std, workers=workers)
        cached = head_inputs(built, images, batch_size, device)
        splits[split] = {"ids": cached.ids, "features": cached.features}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save({"provenance": provenance(data, model, weights, seed), "splits": splits}, out)
    return out


def load(path: str | Path, expected: dict, images: dict[str, ShardDataset]) -> dict:
    """The ``FeatureSet`` per split from ``path``; refuses features of anything else."""
    path = Path(path)
    data = next(iter(images.values())).root
    if not path.exists():
        raise FileNotFoundError(f"features file {path} not found (make it with `medft features`)")
    # Memory-mapped: the LP cells on one node share the file's pages instead of copies.
    saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(saved, dict) or "provenance" not in saved:
        raise ValueError(f"{path} is not a features file (make one with `medft features`)")
    seed = "" if expected["backbone_seed"] is None else f" --seed {expected['backbone_seed']}"
    remake = (
        f"make it again with `medft features --data {data} "
        f"--model {expected['model']} --weights {expected['weights']}{seed} --out {path}`"
    )
    differs = sorted(k for k in expected if saved["provenance"].get(k) != expected[k])
    if differs:
        got = {k: saved["provenance"].get(k) for k in differs}
        want = {k: expected[k] for k in differs}
        raise ValueError(f"{path} holds features for {got}, this run needs {want}; {remake}")
    sets = {}
    for split, split_images in images.items():
        stored = saved["splits"][split]
        if stored["ids"] != split_images.ids:
            raise ValueError(
                f"{path}: the {split} images are not those of {data} "
                f"(was the dataset prepared again?); {remake}"
            )
        sets[split] = FeatureSet(stored["features"], split_images)
    return sets
