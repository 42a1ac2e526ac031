"""Reading the image of one records row, whatever its file: ordinary images through Pillow,
DICOM (a multi-frame file's frame included) through pydicom (``medft.data.dicom``), a NIfTI
volume's slice through nibabel (``medft.data.volumes``). Every failure is a ``DataError``
naming the file and the row."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps

from medft.data import dicom, volumes
from medft.data.preprocess import grey_palette
from medft.errors import reading

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".j2k")


def file_kind(path: str | Path) -> str | None:
    """ "volume", "dicom" or "image" (Pillow): by the name, and for a name that no reader
    claims, by the content (a DICOM file named without a suffix); None for any other file."""
    name = str(path).lower()
    if volumes.is_volume(name):
        return "volume"
    if dicom.is_dicom(name):
        return "dicom"
    if name.endswith(PIL_SUFFIXES):
        return "image"
    return "dicom" if dicom.is_part10(str(path)) else None


def is_image_file(path: str | Path) -> bool:
    """A file the folder source lists: an image Pillow reads, a DICOM file or a volume."""
    return file_kind(path) is not None


def printable(path: str) -> str:
    """A path that can be written to UTF-8 text (names in other encodings keep their bytes as
    escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@contextmanager
def opened(path: str, where: str) -> Iterator[Image.Image]:
    """``Image.open``, with any failure to read the file as a ``DataError`` naming it."""
    with reading(where, f"image {printable(path)}"), Image.open(path) as image:
        yield image


def image_channels(path: str, where: str) -> int:
    """3 for a colour image, 1 for grey (a palette of greys included), from the file header."""
    with opened(path, where) as image:
        if image.mode in ("P", "PA"):
            return 1 if grey_palette(image) else 3
        return 3 if image.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV") else 1


def read_image(path: str, where: str) -> Image.Image:
    """The image as a viewer shows it: a photo's EXIF orientation (a phone or dermatoscope
    camera held sideways) applied, which Pillow leaves to the caller."""
    with opened(path, where) as image:
        image.load()
        return ImageOps.exif_transpose(image)


class FileReader:
    """The image of a records row (``path``, and ``slice`` ≥ 0 for a volume's slice or a
    multi-frame DICOM file's frame) and its description before preprocessing; the dataset's
    options carry the DICOM window and the volumes' slicing."""

    def __init__(self, options) -> None:
        self.window = getattr(options, "window", None)
        self.presentation_lut = getattr(options, "presentation_lut", True)
        self.volumes = volumes.VolumeReader(options)
        self.frames = dicom.FrameReader(self.window, self.presentation_lut)

    def channels(self, path: str, where: str) -> int:
        """From the header alone (volumes are grey)."""
        kind = file_kind(path)
        if kind == "volume":
            return 1
        if kind == "dicom":
            return dicom.header(path, where).channels
        return image_channels(path, where)

    def __call__(self, path: str, slice_index: int, where: str):
        kind = file_kind(path)
        if slice_index >= 0 and kind == "dicom":
            return self.frames.frame(path, slice_index, where)
        if slice_index >= 0:
            return self.volumes.slice(path, slice_index, where)
        if kind == "dicom":
            return dicom.read(path, where, self.window, self.presentation_lut)
        # Here, not at the top: the folder source lists files while planning, without torch.
        from medft.data.shards import describe_raw

        image = read_image(path, where)
        return image, describe_raw(image)
