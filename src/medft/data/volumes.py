"""NIfTI volumes (``.nii``, ``.nii.gz``) through nibabel (the optional ``nifti`` extra): each
volume becomes 2D slices.

A records row whose file is a volume expands into one row per slice along ``slice_axis`` of
the volume in its closest canonical (RAS+) orientation (0: sagittal, 1: coronal, 2: axial;
default 2) — every slice, or the central ``central_slices`` fraction of them
(``medft.data.stacks``, which expands multi-frame DICOM files alike). A slice is shown as a
DICOM slice of the same plane is (PS3.3 C.7.6.2.1.1, radiological convention): anterior or
superior at the top, the patient's right on the image's left — not as the array's axes lie,
which turns an axial brain on its side and sets NIfTI slices apart from DICOM ones.
Intensities are scaled per volume, not per slice: the volume's ``intensity_percentiles``
(default 0.5 and 99.5) map to 0 and 255, so a slice's brightness still means what it means in
its neighbours, and a few hot voxels do not flatten the rest.

nibabel is imported on use; reading a volume once serves all of its slices (they are written
one after another).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medft.errors import DataError, reading

SUFFIXES = (".nii", ".nii.gz")
DEFAULT_AXIS = 2
DEFAULT_PERCENTILES = (0.5, 99.5)
INSTALL = "pip install 'medft[nifti]' (or: pip install nibabel)"


def is_volume(path: str) -> bool:
    return str(path).lower().endswith(SUFFIXES)


def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise DataError(f"reading NIfTI volumes needs nibabel: {INSTALL}") from None
    return nibabel


def _load(path: str, where: str):
    """The volume's image in canonical orientation (header read; voxels on demand)."""
    nibabel = _nibabel()
    with reading(where, f"NIfTI file {path}"):
        image = nibabel.as_closest_canonical(nibabel.load(path))
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) not in (2, 3):
        raise DataError(
            f"{where}: NIfTI file {Path(path).name} has shape {image.shape}; medft reads 3D "
            "volumes (and 2D images): split a 4D series into one volume per file"
        )
    return image, shape


def _axis(options) -> int:
    """The options' slice axis; sources without volume options slice none."""
    axis = getattr(options, "slice_axis", None)
    return DEFAULT_AXIS if axis is None else axis


def slices_in(path: str, options, where: str) -> int:
    """How many slices the volume has along the options' axis, from its header."""
    _, shape = _load(path, where)
    axis = _axis(options)
    return shape[axis] if axis < len(shape) else 1


def as_viewed(plane: np.ndarray) -> np.ndarray:
    """A RAS+ slice as a viewer shows its plane. Whichever axis was cut, the slice's two axes
    run in RAS order (x before y before z), each towards R, A or S; a viewer's columns run
    towards the patient's left or back, and its rows downwards (towards P in an axial slice,
    towards I otherwise). Both reversed, then rows and columns exchanged."""
    return np.ascontiguousarray(plane[::-1, ::-1].T)


class VolumeReader:
    """Slices of volumes as uint8 images, each volume read and scaled once."""

    def __init__(self, options) -> None:
        self.axis = _axis(options)
        self.percentiles = getattr(options, "intensity_percentiles", None) or DEFAULT_PERCENTILES
        self._path: str | None = None
        self._volume: np.ndarray | None = None
        self._raw = ""

    def slice(self, path: str, index: int, where: str) -> tuple[np.ndarray, str]:
        """Slice ``index`` as (H, W) uint8, and the volume's description for the data card."""
        if path != self._path:
            self._volume, self._raw = self._read(path, where)
            self._path = path
        volume = self._volume
        plane = volume if volume.ndim == 2 else np.take(volume, index, axis=self.axis)
        return as_viewed(plane), self._raw

    def _read(self, path: str, where: str) -> tuple[np.ndarray, str]:
        image, shape = _load(path, where)
        with reading(where, f"the voxels of NIfTI file {Path(path).name}"):
            voxels = np.asarray(image.dataobj, dtype=np.float64).reshape(shape)
        finite = voxels[np.isfinite(voxels)]
        low, high = np.percentile(finite, self.percentiles) if finite.size else (0.0, 0.0)
        scaled = np.zeros(shape, dtype=np.uint8)
        if high > low:
            clipped = np.clip((np.nan_to_num(voxels, nan=low) - low) / (high - low), 0, 1)
            scaled = np.round(clipped * 255).astype(np.uint8)
        size = "×".join(str(n) for n in shape)
        return scaled, f"{size} NIfTI {image.get_data_dtype()} volume"
