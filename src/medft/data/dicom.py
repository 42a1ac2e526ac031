"""DICOM images through pydicom (the optional ``dicom`` extra): each frame → an 8-bit image.

The stored values become what a radiologist's viewer shows, by pydicom's implementation of the
standard's pipeline (PS3.3 C.11), never a hand-written copy of it: the modality LUT or rescale
(``apply_modality_lut``: CT values become Hounsfield units), then the VOI transform
(``apply_voi_lut``): the file's VOI LUT Sequence, else its window with its VOI LUT Function
(LINEAR, LINEAR_EXACT or SIGMOID), the first where several are given — or, where the dataset
sets ``window`` (a preset name or ``[centre, width]``), that window, LINEAR, on Hounsfield
units only (CT, or a RescaleType of HU; anything else stops naming the file and its modality);
with neither, the file's full range (over all of its frames). Its output range (the LUT's bits,
or the window's) maps to 0–255. Then the Presentation LUT (``apply_presentation_lut``): where
the file has one (a Presentation LUT Shape of IDENTITY or INVERSE, or a Presentation LUT
Sequence) it decides the polarity, as DCMTK and viewers decide it; where it has none,
MONOCHROME1 (white is low) is inverted, so that every grey image reads as MONOCHROME2. A
dataset whose files carry a wrong Shape sets ``presentation_lut: false``. Padding (Pixel Padding
Value, which pydicom leaves to the viewer) is black and outside the full range. Colour is kept
as stored: 8-bit RGB unchanged (YBR converted to RGB by pydicom), deeper RGB scaled by its bits,
PALETTE COLOR through its colour LUT (``apply_color_lut``).

A multi-frame file (an enhanced CT or MR, an ultrasound cine) gives one image per frame
(``medft.data.stacks`` makes its row one per frame). An enhanced file keeps each frame's
rescale and window in its functional groups, which pydicom's functions do not read: each frame
gets a header with them at the top level (``frame_header``), then the same pipeline.

Files without the 128-byte preamble (older archives) are read when they are DICOM
(``force=True``). A missing transfer syntax, a missing decoder (naming the package) or a
broken file is a one-line ``DataError`` naming the file.

pydicom is imported on use: planning a workflow and reading other formats never need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
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
INSTALL = (
    "pip install 'medft[dicom]' (or: pip install pydicom pylibjpeg pylibjpeg-libjpeg "
    "pylibjpeg-openjpeg)"
)


def is_dicom(path: str) -> bool:
    """Named as DICOM (.dcm, .dicom)."""
    return str(path).lower().endswith(SUFFIXES)


def is_part10(path: str) -> bool:
    """A DICOM file by its content, whatever its name: PACS and CD exports name files
    IM000001 or by their UID, without a suffix (PS3.10's file IDs have none). pydicom's own
    check (the preamble's 'DICM'), once per version of the file; False without pydicom, for
    a bare data set, or for a file that cannot be read."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return _part10(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2**16)
def _part10(path: str, _mtime_ns: int, _size: int) -> bool:
    try:
        from pydicom.misc import is_dicom as part10
    except ImportError:
        return False
    try:
        return part10(path)
    except OSError:
        return False


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
    from pydicom.errors import InvalidDicomError

    name = Path(path).name
    with reading(where, f"DICOM file {name}"):
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=header_only)
        except InvalidDicomError:
            # No preamble: older archives wrote bare data sets. Accept one only where it
            # reads as an image's header, so that a stray non-DICOM file still fails.
            dataset = pydicom.dcmread(path, stop_before_pixels=header_only, force=True)
            if "Rows" not in dataset or "Columns" not in dataset:
                raise DataError(
                    f"{where}: {name} has no DICOM preamble and no image header (Rows, "
                    "Columns): not an image medft can read; remove its row"
                ) from None
            _bare_syntax(dataset)
    return dataset


def _bare_syntax(dataset) -> None:
    """A bare data set (no preamble, no file meta) is uncompressed by definition: its transfer
    syntax is the encoding pydicom found it in."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = dataset.original_encoding
    dataset.file_meta = meta if meta is not None else FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian
        if implicit
        else ExplicitVRLittleEndian
        if little
        else ExplicitVRBigEndian
    )


@dataclass(frozen=True)
class Header:
    """What preparing a dataset asks of a DICOM file's header."""

    frames: int
    channels: int  # 3 for colour (palette colour included), else 1
    patient: str  # Patient ID, or ""
    not_an_image: str | None  # the SOP class of a file that holds no image; None for an image

    @property
    def is_image(self) -> bool:
        return self.not_an_image is None


# Headers read so far, by (path, modification time, size): the folder listing, the frame
# count, the colour check and the patient grouping each ask, and a file is opened once.
_HEADERS: dict[tuple, Header] = {}
_HEADERS_KEPT = 2**16


def header(path: str, where: str) -> Header:
    """The file's ``Header``, read once per version of the file; failures name ``where``."""
    with reading(where, f"DICOM file {Path(path).name}"):
        stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _HEADERS:
        dataset = _open(path, where, header_only=True)
        # pydicom parses a value when it is first read: a malformed one ("1A" frames) fails here.
        with reading(where, f"DICOM file {Path(path).name}"):
            colour = int(dataset.get("SamplesPerPixel", 1)) == 3
            found = Header(
                frames=_frame_count(dataset),
                channels=3
                if colour or dataset.get("PhotometricInterpretation") == "PALETTE COLOR"
                else 1,
                patient=str(dataset.get("PatientID", "") or "").strip(),
                not_an_image=None if "Rows" in dataset else _sop_class(dataset),
            )
        if len(_HEADERS) >= _HEADERS_KEPT:
            _HEADERS.clear()
        _HEADERS[key] = found
    return _HEADERS[key]


def _sop_class(dataset) -> str:
    meta = getattr(dataset, "file_meta", None)
    uid = dataset.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    return uid.name if uid else "an object of no SOP class"


def describe(dataset) -> str:
    """ "W×H DICOM MONOCHROME2 12-bit signed" — the data card's size and mode, with a
    Presentation LUT that the Photometric Interpretation does not imply ("…, Presentation LUT
    Shape INVERSE"), so that files shown in the other polarity are counted apart."""
    sign = "signed" if int(dataset.get("PixelRepresentation", 0)) else "unsigned"
    bits = dataset.get("BitsStored", dataset.get("BitsAllocated", "?"))
    kind = dataset.get("PhotometricInterpretation", "?")
    count = _frame_count(dataset)
    frames = f", {count} frames" if count > 1 else ""
    return (
        f"{dataset.Columns}×{dataset.Rows} DICOM {kind} {bits}-bit {sign}{frames}"
        f"{_unexpected_presentation(dataset)}"
    )


PRESENTATION_SHAPES = ("IDENTITY", "INVERSE")


def _presentation_shape(dataset) -> str:
    return str(dataset.get("PresentationLUTShape", "") or "").strip().upper()


def _has_presentation_lut(dataset) -> bool:
    """A Presentation LUT pydicom applies: a Sequence, or a Shape of a softcopy kind (a
    printer's LIN OD, or an unknown value, is left out, as DCMTK leaves it)."""
    return (
        "PresentationLUTSequence" in dataset or _presentation_shape(dataset) in PRESENTATION_SHAPES
    )


def _unexpected_presentation(dataset) -> str:
    """ ", Presentation LUT Shape INVERSE" where the Shape contradicts the Photometric
    Interpretation (PS3.3 C.7.6.1.1: INVERSE goes with MONOCHROME1, IDENTITY with MONOCHROME2),
    ", a Presentation LUT" for a Sequence; "" otherwise."""
    kind = dataset.get("PhotometricInterpretation", "")
    if kind not in ("MONOCHROME1", "MONOCHROME2"):
        return ""
    if "PresentationLUTSequence" in dataset:
        return ", a Presentation LUT"
    shape = _presentation_shape(dataset)
    if shape in PRESENTATION_SHAPES and (shape == "INVERSE") != (kind == "MONOCHROME1"):
        return f", Presentation LUT Shape {shape}"
    return ""


def read(
    path: str, where: str, window=None, presentation_lut: bool = True
) -> tuple[np.ndarray, str]:
    """The file's one frame as (H, W) or (H, W, 3) uint8, and its description."""
    frames, raw = read_frames(path, where, window, presentation_lut)
    if len(frames) > 1:
        raise DataError(
            f"{where}: DICOM file {Path(path).name} has {len(frames)} frames where one image "
            "was expected; list it in a folder or table, whose rows become one per frame"
        )
    return frames[0], raw


def _frame_count(dataset) -> int:
    return int(dataset.get("NumberOfFrames", 1) or 1)


def read_frames(
    path: str, where: str, window=None, presentation_lut: bool = True
) -> tuple[list[np.ndarray], str]:
    """Every frame of the file as (H, W) or (H, W, 3) uint8, and the file's description.

    A frame of a multi-frame file is read with its own header (``frame_header``: the file's
    attributes and its functional groups), so an enhanced CT's per-frame rescale and window
    apply as the standard defines them. A file without a window takes its full range over all
    of its frames, so that a frame keeps its brightness relative to its neighbours.
    ``presentation_lut=False`` leaves the file's Presentation LUT out: the Photometric
    Interpretation alone decides the polarity."""
    dataset = _open(path, where, header_only=False)
    name = Path(path).name
    if not _has_pixels(dataset) and header(path, where).is_image:
        # A file that ends inside its pixels (a copy cut short) reads, with a warning only, as
        # a data set without them — or without anything: its header alone reads whole.
        raise DataError(
            f"{where}: DICOM file {name} has an image header but ends before its pixels do: "
            "the file is cut short (an interrupted copy or download); copy it again from the "
            "archive"
        )
    # pydicom parses a value when it is first read: a malformed one ("1A" frames) fails here.
    with reading(where, f"DICOM file {name}"):
        return _frames(dataset, name, where, window, presentation_lut)


def _frames(
    dataset, name: str, where: str, window, presentation_lut: bool
) -> tuple[list[np.ndarray], str]:
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    _check_decodable(dataset, name, where)
    count = _frame_count(dataset)
    stack = _pixels(dataset, name, where)
    stack = stack if count > 1 else stack[None]
    raw = describe(dataset)
    kind = dataset.get("PhotometricInterpretation", "")
    if kind == "PALETTE COLOR":
        with reading(where, f"the colour palette of DICOM file {name}"):
            rgb = apply_color_lut(stack, dataset)
        bits = int(dataset.RedPaletteColorLookupTableDescriptor[2])
        return list(_scale(rgb, 0, 2**bits - 1)), raw
    if stack.ndim == 4:  # colour: pydicom has converted YBR to RGB
        bits = int(dataset.get("BitsStored", 8))
        colour = stack if bits <= 8 else _scale(stack, 0, 2**bits - 1)
        return list(colour.astype(np.uint8)), raw
    headers = [frame_header(dataset, i) for i in range(count)] if count > 1 else [dataset]
    if window is not None:
        for header in headers:
            _check_hounsfield(header, name, where, window)

    def modality(k: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``k``'s modality values in pydicom's own dtype (integers unless a rescale made
        floats, so that a VOI LUT Sequence indexes its table as pydicom does for a file it
        reads itself), and where it is padding. One frame at a time: an enhanced CT's
        hundreds of frames as floats would take gigabytes."""
        values = np.asarray(apply_modality_lut(stack[k], headers[k]))
        return values, _padding(headers[k], stack[k])

    bare = [k for k, h in enumerate(headers) if window is None and not _has_voi(h)]
    low, high = _full_range(modality(k) for k in bare) if bare else (0.0, 0.0)
    frames = []
    for k, header in enumerate(headers):
        values, padding = modality(k)
        if window is not None:
            image = _voi(values, _with_window(header, window))
        elif _has_voi(header):
            with reading(where, f"the VOI LUT of DICOM file {name}"):
                image = _voi(values, header)
        else:
            image = _scale(values, low, high)
        if presentation_lut and _has_presentation_lut(header):
            with reading(where, f"the Presentation LUT of DICOM file {name}"):
                image = _presentation(image, header)
        elif kind == "MONOCHROME1":
            image = 255 - image
        image[padding] = 0
        frames.append(image)
    return frames, raw


def _has_voi(header) -> bool:
    return "VOILUTSequence" in header or "WindowCenter" in header


def _full_range(frames) -> tuple[float, float]:
    """The lowest and highest value of (values, padding) frames, padding left out (unless
    there is nothing else)."""
    low, high, padded = np.inf, -np.inf, []
    for values, padding in frames:
        shown = values[~padding]
        if shown.size:
            low, high = min(low, float(shown.min())), max(high, float(shown.max()))
        else:
            padded.append((float(values.min()), float(values.max())))
    if low > high:
        low, high = min(p[0] for p in padded), max(p[1] for p in padded)
    return low, high


FUNCTIONAL_GROUPS = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
# Where the pixels are: integers, or floats (a parametric map: ADC, T1, perfusion).
PIXEL_DATA = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _has_pixels(dataset) -> bool:
    return any(keyword in dataset for keyword in PIXEL_DATA)


def frame_header(dataset, index: int):
    """The header of frame ``index`` of a multi-frame file: its attributes with those of its
    functional groups (PS3.3 C.7.6.16) — the shared ones, then the frame's own, which take
    precedence — at the top level, where pydicom's ``apply_modality_lut`` and
    ``apply_voi_lut`` look (an enhanced CT keeps its rescale and window only there)."""
    from pydicom.dataset import Dataset

    header = Dataset()
    for element in dataset:
        if element.keyword not in (*FUNCTIONAL_GROUPS, *PIXEL_DATA):
            header[element.tag] = element
    shared = dataset.get("SharedFunctionalGroupsSequence") or []
    own = dataset.get("PerFrameFunctionalGroupsSequence") or []
    groups = [*shared[:1], *own[index : index + 1]]
    for group in groups:
        for macro in group:
            if macro.VR == "SQ" and len(macro.value):
                for element in macro.value[0]:
                    header[element.tag] = element
    return header


def _padding(dataset, pixels: np.ndarray) -> np.ndarray:
    """Where the frame holds no image: its stored values equal to Pixel Padding Value, or
    between it and Pixel Padding Range Limit (PS3.3 C.7.5.1.1.2; a CT's area outside the
    scanned circle). pydicom leaves padding to the viewer; a viewer shows it as background,
    so it is black here and left out of the full range of a file without a window."""
    if "PixelPaddingValue" not in dataset:
        return np.zeros(pixels.shape, dtype=bool)
    bounds = [int(dataset.PixelPaddingValue)]
    if "PixelPaddingRangeLimit" in dataset:
        bounds.append(int(dataset.PixelPaddingRangeLimit))
    return (pixels >= min(bounds)) & (pixels <= max(bounds))


def _check_decodable(dataset, name: str, where: str) -> None:
    from pydicom.pixels import get_decoder

    if not _has_pixels(dataset):
        raise DataError(
            f"{where}: DICOM file {name} holds no image ({_sop_class(dataset)}, no Pixel "
            "Data); remove its row"
        )
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        raise DataError(
            f"{where}: DICOM file {name} names no Transfer Syntax UID in its file meta, so its "
            "pixels cannot be decoded; rewrite it with one (e.g. dcmconv from DCMTK, or "
            "pydicom: ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian; ds.save_as(...))"
        )
    if syntax.is_compressed and not get_decoder(syntax).is_available:
        needs = "; or ".join(get_decoder(syntax).missing_dependencies)
        raise DataError(
            f"{where}: DICOM file {name} is compressed as {syntax.name} ({syntax}), and no "
            f"decoder for it is installed: install {needs}"
        )
    if syntax in _ended_by_ffd9():
        _check_streams_end(dataset, name, where)


@lru_cache(maxsize=1)
def _ended_by_ffd9() -> frozenset:
    """The JPEG, JPEG-LS and JPEG 2000 transfer syntaxes: their streams end with the marker
    FF D9 (EOI; JPEG 2000's EOC), which their coded data cannot hold (it stuffs every FF that
    could start a marker)."""
    from pydicom import uid

    return frozenset(
        (*uid.JPEGTransferSyntaxes, *uid.JPEGLSTransferSyntaxes, *uid.JPEG2000TransferSyntaxes)
    )


def _check_streams_end(dataset, name: str, where: str) -> None:
    """Each frame's stream reaches its end marker (padding after it aside). libjpeg and
    OpenJPEG may decode a stream cut short without a word, filling what is missing: the first
    third of a 12-bit JPEG decoded, 71 % of its pixels unlike the whole file's."""
    from pydicom.encaps import generate_frames

    frames = generate_frames(dataset.PixelData, number_of_frames=_frame_count(dataset))
    for index, stream in enumerate(frames):
        if not stream.rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
            which = f"frame {index} of " if _frame_count(dataset) > 1 else ""
            raise DataError(
                f"{where}: the compressed pixels of {which}DICOM file {name} end before their "
                "end-of-image marker: the file is cut short or damaged (its decoder would fill "
                "the rest without a word); copy it again from the archive"
            )


def _pixels(dataset, name: str, where: str) -> np.ndarray:
    """The frame; a compressed one that the installed decoders cannot decode says what they
    said, and names the decoders not installed (12-bit JPEG Extended with only Pillow, say,
    without the ``dicom`` extra's pylibjpeg) — or that the file may be damaged."""
    from pydicom.pixels import get_decoder

    syntax = dataset.file_meta.TransferSyntaxUID
    try:
        return dataset.pixel_array
    except Exception as error:
        missing = get_decoder(syntax).missing_dependencies if syntax.is_compressed else []
        if not missing:
            with reading(where, f"the pixels of DICOM file {name}"):
                raise
        said = " ".join(str(error).split())
        bits = dataset.get("BitsStored", "?")
        raise DataError(
            f"{where}: DICOM file {name} ({syntax.name}, {bits}-bit) cannot be decoded by the "
            f"installed decoders ({said}): the file may be damaged (re-export it), or need one "
            f"not installed: {'; or '.join(missing)}"
        ) from None


def _check_hounsfield(dataset, name: str, where: str, window) -> None:
    """A ``window`` is in Hounsfield units: it only means something on data that is."""
    modality = str(dataset.get("Modality", "")) or "unknown"
    rescale_type = str(dataset.get("RescaleType", "")).upper()
    if rescale_type == "HU" or (modality == "CT" and rescale_type in ("", "HU")):
        return
    units = f", RescaleType {rescale_type}" if rescale_type else ""
    raise DataError(
        f"{where}: DICOM file {name} is {modality}{units}, not in Hounsfield units, so the "
        f"dataset's window {window!r} does not apply; remove `window:` to use each file's own "
        "window (or its full range)"
    )


def _with_window(dataset, window):
    """A copy of ``dataset``'s header whose VOI transform is ``window``, LINEAR."""
    centre, width = WINDOWS[window] if isinstance(window, str) else window
    header = dataset.copy()
    for keyword in ("VOILUTSequence", "VOILUTFunction", "WindowCenter", "WindowWidth"):
        if keyword in header:
            delattr(header, keyword)
    header.WindowCenter, header.WindowWidth = float(centre), float(width)
    return header


def _voi(values: np.ndarray, dataset) -> np.ndarray:
    """pydicom's VOI transform of modality values, its output range mapped to 0..255."""
    from pydicom.pixels import apply_voi_lut

    if "VOILUTSequence" in dataset:
        bits = int(dataset.VOILUTSequence[0].LUTDescriptor[2])
        low, high = 0.0, float(2**bits - 1)
    else:
        # The window's output range, as pydicom derives it (from BitsStored and the rescale):
        # what the far ends of any input map to.
        with np.errstate(over="ignore"):
            low, high = apply_voi_lut(np.array([-1e300, 1e300]), dataset.copy(), prefer_lut=True)
    return _scale(apply_voi_lut(values, dataset.copy(), prefer_lut=True), low, high)


# The VOI transform's whole output range, as 0..255: what the Presentation LUT takes in.
_VOI_OUTPUT = np.arange(256)


def _presentation(image: np.ndarray, dataset) -> np.ndarray:
    """pydicom's Presentation LUT (``apply_presentation_lut``) of an 8-bit VOI output, as
    P-values 0..255. pydicom scales its input's own minimum and maximum to the LUT, and inverts
    about the input's maximum: given one frame, a dark frame would brighten. So it is given the
    whole output range, and the table it returns is looked up per pixel."""
    from pydicom.pixels import apply_presentation_lut

    table = np.asarray(apply_presentation_lut(_VOI_OUTPUT, dataset))
    top = (
        2 ** int(dataset.PresentationLUTSequence[0].LUTDescriptor[2]) - 1
        if "PresentationLUTSequence" in dataset
        else 255
    )
    return _scale(table, 0, top)[image]


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` from ``low``..``high`` to 0..255."""
    values = np.asarray(values, dtype=np.float64)
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round(np.clip((values - low) / (high - low), 0, 1) * 255).astype(np.uint8)


class FrameReader:
    """Frames of multi-frame files as uint8 images, each file read once (a file's frames are
    written one after another)."""

    def __init__(self, window=None, presentation_lut: bool = True) -> None:
        self.window = window
        self.presentation_lut = presentation_lut
        self._path: str | None = None
        self._frames: list[np.ndarray] = []
        self._raw = ""

    def frame(self, path: str, index: int, where: str) -> tuple[np.ndarray, str]:
        if path != self._path:
            self._frames, self._raw = read_frames(path, where, self.window, self.presentation_lut)
            self._path = path
        return self._frames[index], self._raw
