"""Corrupted copies of an evaluation split, in the spirit of MedMNIST-C (Di Salvo et al.,
2024) and ImageNet-C: Gaussian noise, Gaussian blur, lowered contrast and JPEG compression at
severities 1-5 (0: the images unchanged), deterministic given the seed. Applied to the stored
uint8 pixels before normalisation, as an acquisition or storage artefact would be."""

from __future__ import annotations

import io
import math

import numpy as np
import torch

from medft.data.shards import CPU

# Per corruption, its parameter at severities 1..5 (ImageNet-C's values where they exist;
# blur in pixels of a 64-pixel image, scaled up with larger images).
SEVERITIES = {
    "gaussian_noise": (0.04, 0.08, 0.12, 0.18, 0.26),  # σ, in units of the intensity range
    "gaussian_blur": (0.5, 0.75, 1.0, 1.5, 2.0),  # σ in pixels up to 64 px, then scaled
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.2),  # remaining fraction of the contrast
    "jpeg": (30, 20, 15, 10, 7),  # quality
}
CORRUPTIONS = tuple(SEVERITIES)


def _noise(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    return x + torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)) * sigma


def _blur(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    from torchvision.transforms.v2 import functional

    sigma = sigma * max(1.0, x.shape[-1] / 64)
    size = 2 * math.ceil(3 * sigma) + 1
    return functional.gaussian_blur(x, [size, size], [sigma, sigma])


def _contrast(x: torch.Tensor, kept: float, seed: int) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * kept + mean


def _jpeg(x: torch.Tensor, quality: int, seed: int) -> torch.Tensor:
    from PIL import Image

    pixels = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
            buffer, format="JPEG", quality=quality
        )
        decoded = np.asarray(Image.open(buffer)).reshape(image.shape)
        out.append(torch.from_numpy(decoded.copy()).permute(2, 0, 1))
    return torch.stack(out).float() / 255


APPLY = {"gaussian_noise": _noise, "gaussian_blur": _blur, "contrast": _contrast, "jpeg": _jpeg}


def corrupt(pixels: torch.Tensor, corruption: str, severity: int, seed: int) -> torch.Tensor:
    """``pixels`` (n, C, H, W) uint8 corrupted at ``severity`` (0: returned unchanged)."""
    if corruption not in SEVERITIES:
        raise ValueError(f"unknown corruption {corruption!r}; choose one of {CORRUPTIONS}")
    if severity == 0:
        return pixels
    x = APPLY[corruption](pixels.float() / 255, SEVERITIES[corruption][severity - 1], seed)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


class CorruptedSplit:
    """A split whose batches are corrupted: what ``engine.Cell.evaluate`` reads of a split
    (``batches``, ``targets``, its length), in the same order; ``rows``: only these of its
    images (None: all)."""

    def __init__(
        self, split, corruption: str, severity: int, seed: int, rows: np.ndarray | None = None
    ) -> None:
        self.split, self.corruption, self.severity, self.seed = split, corruption, severity, seed
        self.rows = np.arange(len(split)) if rows is None else np.asarray(rows)
        self.targets = split.targets[self.rows]
        self.ids = [split.ids[i] for i in self.rows]
        self.groups = [split.groups[i] for i in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, batch_size: int, shuffle_seed=None, device=CPU):
        from medft.data.shards import batch_indices

        for k, indices in enumerate(batch_indices(len(self.rows), batch_size, None)):
            pixels, targets = self.split[self.rows[indices]]
            # One stream per batch: the same images get the same noise whatever evaluates them.
            noisy = corrupt(pixels, self.corruption, self.severity, self.seed * 1_000_003 + k)
            yield self.split.normalise(noisy, device), targets.to(device)
