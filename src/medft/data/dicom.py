"""DICOM images through pydicom (the optional ``dicom`` extra): one frame → an 8-bit image.

The stored values become what a radiologist's viewer shows: the modality rescale
(slope/intercept, so CT values are Hounsfield units) first, then a window — the dataset's
``window`` option (a preset name or ``[centre, width]``), else the file's own window
(WindowCenter/WindowWidth, the first where several are given), else the image's full range —
and MONOCHROME1 (white is low) inverted so that every grey image is MONOCHROME2. Signed and
unsigned pixels of 8 to 16 bits follow from the header (PixelRepresentation, BitsStored).
Compressed transfer syntaxes decode where pydicom has a decoder (RLE always; JPEG family
through the packages it names); a missing decoder, a multi-frame file or a broken file is a
``DataError`` naming the file.

pydicom is imported on use: planning a workflow and reading other formats never need it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medft.errors import DataError, reading

SUFFIXES = (".dcm", ".dicom")
# (centre, width) in Hounsfield units: the usual CT presets (Radiopaedia, "Windowing (CT)").
WINDOWS = {
    "soft_tissue": (40.0, 400.0),
    "mediastinum": (50.0, 350.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "liver": (60.0, 160.0),
}
INSTALL = "pip install 'medft[dicom]' (or: pip install pydicom)"


def is_dicom(path: str) -> bool:
    return str(path).lower().endswith(SUFFIXES)


def window_bounds(window) -> tuple[float, float] | None:
    """A ``window`` option (preset name or ``[centre, width]``) as (low, high); None: unset."""
    if window is None:
        return None
    centre, width = WINDOWS[window] if isinstance(window, str) else window
    return centre - width / 2, centre + width / 2


def check_window(window) -> str | None:
    """What is wrong with a ``window`` option, or None."""
    if window is None:
        return None
    if isinstance(window, str):
        return None if window in WINDOWS else f"must be one of {', '.join(WINDOWS)}"
    if len(window) != 2 or window[1] <= 0:
        return "must be a preset name or [centre, width] with width > 0"
    return None


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise DataError(f"reading DICOM files needs pydicom: {INSTALL}") from None
    return pydicom


def _open(path: str, where: str, header_only: bool):
    pydicom = _pydicom()
    with reading(where, f"DICOM file {path}"):
        return pydicom.dcmread(path, stop_before_pixels=header_only)


def channels(path: str, where: str) -> int:
    """3 for a colour file, else 1, from the header alone."""
    return 3 if int(_open(path, where, header_only=True).get("SamplesPerPixel", 1)) == 3 else 1


def describe(dataset) -> str:
    """ "W×H DICOM MONOCHROME2 12-bit signed" — the data card's size and mode."""
    sign = "signed" if int(dataset.get("PixelRepresentation", 0)) else "unsigned"
    bits = dataset.get("BitsStored", dataset.get("BitsAllocated", "?"))
    kind = dataset.get("PhotometricInterpretation", "?")
    return f"{dataset.Columns}×{dataset.Rows} DICOM {kind} {bits}-bit {sign}"


def read(path: str, where: str, window=None) -> tuple[np.ndarray, str]:
    """The file's one frame as (H, W) or (H, W, 3) uint8, and its description."""
    from pydicom.pixels import apply_modality_lut, get_decoder

    dataset = _open(path, where, header_only=False)
    name = Path(path).name
    if "PixelData" not in dataset:
        raise DataError(f"{where}: DICOM file {name} holds no image (no PixelData); remove its row")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(
            f"{where}: DICOM file {name} has {frames} frames; medft reads one image per file — "
            "export the frames as separate files (one row each)"
        )
    syntax = dataset.file_meta.TransferSyntaxUID
    if syntax.is_compressed and not get_decoder(syntax).is_available:
        needs = "; or ".join(get_decoder(syntax).missing_dependencies)
        raise DataError(
            f"{where}: DICOM file {name} is compressed as {syntax.name} ({syntax}), and no "
            f"decoder for it is installed: install {needs}"
        )
    with reading(where, f"the pixels of DICOM file {name}"):
        pixels = dataset.pixel_array
    if pixels.ndim == 3:  # colour: pydicom has converted YBR to RGB
        return _stretch(pixels, None), describe(dataset)
    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    image = _stretch(values, window_bounds(window) or _file_window(dataset))
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        image = 255 - image
    return image, describe(dataset)


def _file_window(dataset) -> tuple[float, float] | None:
    centre, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if centre is None or width is None:
        return None
    centre, width = _first(centre), _first(width)
    return (centre - width / 2, centre + width / 2) if width > 0 else None


def _first(value) -> float:
    """A DICOM number that may hold several values (one per window the file offers)."""
    return float(value[0] if hasattr(value, "__len__") else value)


def _stretch(values: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    """``values`` clipped to ``bounds`` (default: their own range) and scaled to 0..255."""
    values = np.asarray(values, dtype=np.float64)
    low, high = bounds if bounds else (float(values.min()), float(values.max()))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round(np.clip((values - low) / (high - low), 0, 1) * 255).astype(np.uint8)
