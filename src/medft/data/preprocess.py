"""The preprocessing of docs/protocol.md: shorter side resized, centre crop, no augmentation.

Stored images keep their own channel count (grey stays one channel, to keep shards small);
grey → 3 channels and ImageNet normalisation happen at load time (``medft.data.shards``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to ``resize`` (aspect kept), then centre-crop ``crop`` × ``crop``."""

    resize: int
    crop: int

    def __post_init__(self) -> None:
        if not 0 < self.crop <= self.resize:
            raise ValueError(f"need 0 < crop <= resize, got resize={self.resize}, crop={self.crop}")

    @property
    def tag(self) -> str:
        """A folder name for shards made with these settings, e.g. ``r256_c224``."""
        return f"r{self.resize}_c{self.crop}"

    def __call__(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """An (H, W) grey or (H, W, 3) RGB uint8 image → (crop, crop, channels) uint8."""
        # Imported here so that planning a workflow (which names sizes) does not load torch.
        import torch
        from torchvision.transforms.v2 import functional as F

        pixels = as_uint8_array(image)
        # PIL's arrays are read-only: torch would warn and share them (copied only then)
        hwc = np.require(pixels.reshape(*pixels.shape[:2], -1), requirements="CW")
        chw = torch.from_numpy(hwc)
        chw = chw.permute(2, 0, 1)
        chw = F.resize(chw, [self.resize], antialias=True)
        chw = F.center_crop(chw, [self.crop, self.crop])
        return chw.permute(1, 2, 0).numpy()


def grey_palette(image: Image.Image) -> bool:
    """A palette image whose colours are all greys (how some tools save grey images)."""
    palette = np.asarray(image.getpalette() or [0, 0, 0]).reshape(-1, 3)
    return bool((palette == palette[:, :1]).all())


def as_uint8_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """Grey images as (H, W), colour as (H, W, 3), uint8; wider integer ranges are rescaled."""
    if isinstance(image, Image.Image):
        if image.mode in ("L", "RGB"):
            return np.asarray(image)
        if image.mode == "LA" or (image.mode in ("P", "PA") and grey_palette(image)):
            return np.asarray(image.convert("L"))
        if image.mode in ("I", "I;16", "I;16B", "F", "1"):
            image = np.asarray(image.convert("F"))
        else:
            return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"expected a grey (H, W) or RGB (H, W, 3) image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    # MRI and 16-bit radiographs: stretch the image's own range to 0..255.
    array = array.astype(np.float64)
    low, high = float(array.min()), float(array.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.round((array - low) * scale).astype(np.uint8)
