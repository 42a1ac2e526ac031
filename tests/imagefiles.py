"""Test images that differ from one another: identical pixels in two splits are refused as
leakage (medft.data.duplicates), so every helper that writes a plain image marks it."""

from __future__ import annotations

import zlib

from PIL import Image


def marked_image(mode: str, size: tuple[int, int], color, key: str) -> Image.Image:
    """A ``color`` image of ``mode`` and ``size`` with three 4×4 corner blocks whose shades
    come from ``key`` (one image per key; 2²⁴ keys apart)."""
    image = Image.new(mode, size, color)
    code = zlib.crc32(key.encode())
    bands = len(image.getbands())
    for k in range(3):
        shade = (code >> (8 * k)) & 0xFF
        block = Image.new(mode, (4, 4), shade if bands == 1 else (shade,) * bands)
        image.paste(block, (4 * k, 0))
    return image
