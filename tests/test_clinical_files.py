"""DICOM files (written here with pydicom) and NIfTI volumes (written with nibabel), read the way
a viewer shows them and prepared through the table and folder sources."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from medft.cli import main
from medft.data import dicom
from medft.data.card import data_card
from medft.data.preprocess import Preprocess
from medft.data.readers import FileReader, file_kind
from medft.data.shards import read_meta
from medft.data.sources import prepare_dataset
from medft.errors import ConfigError, DataError

pydicom = pytest.importorskip("pydicom", reason="the dicom extra (make installs it)")
nibabel = pytest.importorskip("nibabel", reason="the nifti extra (make installs it)")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import (  # noqa: E402
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

PRE = Preprocess(16, 16)


def phantom_hu(key: int, size: int = 32) -> np.ndarray:
    """A CT-like slice in Hounsfield units: air around a water body, a soft-tissue disc and a
    bone ring whose position depends on ``key`` (so no two slices are equal)."""
    y, x = np.mgrid[:size, :size]
    r = np.hypot(y - size / 2, x - size / 2)
    hu = np.full((size, size), -1000.0)
    hu[r < size * 0.45] = 0
    cy, cx = size / 2 + (key % 5) - 2, size / 2 + (key // 5) % 5 - 2
    hu[np.hypot(y - cy, x - cx) < size * 0.15] = 60
    hu[(r > size * 0.35) & (r < size * 0.42)] = 700
    return hu


def new_dataset(sop_class, syntax=ExplicitVRLittleEndian) -> Dataset:
    """An empty instance of ``sop_class`` with the file meta that saving it needs."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    return ds


def write_dicom(
    path,
    hu: np.ndarray,
    *,
    signed: bool,
    syntax=ExplicitVRLittleEndian,
    photometric="MONOCHROME2",
    window=(40, 400),
    frames: int = 1,
    patient: str | None = None,
):
    """``hu`` stored as CT does: 12-bit unsigned with intercept −1024, or 16-bit signed."""
    # RLE is compressed after the pixels are in place; the others are written as they are.
    ds = new_dataset(
        CTImageStorage,
        ImplicitVRLittleEndian if syntax is ImplicitVRLittleEndian else ExplicitVRLittleEndian,
    )
    ds.Modality, ds.PatientID = "CT", patient or path.stem
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = 16
    ds.BitsStored, ds.HighBit = (16, 15) if signed else (12, 11)
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0 if signed else -1024
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    stored = hu if signed else hu + 1024
    pixels = np.repeat(stored[None], frames, 0) if frames > 1 else stored
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    if syntax is RLELossless:
        ds.compress(RLELossless)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def read(path, window=None):
    return dicom.read(str(path), "test", window)[0]


def linear(x, centre, width):
    """PS3.3 C.11.2.1.2.1's LINEAR window to 8 bits, written out from the standard."""
    return round(np.clip((x - (centre - 0.5)) / (width - 1) + 0.5, 0, 1) * 255)


def test_ct_stored_unsigned_with_intercept_or_signed_reads_the_same(tmp_path):
    hu = phantom_hu(0)
    unsigned = write_dicom(tmp_path / "u.dcm", hu, signed=False, syntax=ImplicitVRLittleEndian)
    signed = write_dicom(tmp_path / "s.dcm", hu, signed=True)
    assert pydicom.dcmread(unsigned).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert np.array_equal(read(unsigned), read(signed))
    # The file's window (40, 400): air black, bone white, water and soft tissue in between.
    image = read(signed)
    assert image[0, 0] == 0 and image[hu == 700].min() == 255
    assert image[hu == 0].mean() == linear(0, 40, 400)
    assert image[hu == 60].mean() == linear(60, 40, 400)


def test_the_window_option_beats_the_files_and_the_range_is_the_fallback(tmp_path):
    hu = phantom_hu(1)
    path = write_dicom(tmp_path / "a.dcm", hu, signed=True)
    lung = read(path, "lung")  # centre -600, width 1500: -1350..150 HU
    assert lung[hu == -1000].mean() == linear(-1000, -600, 1500)
    assert lung[hu == 700].min() == 255
    custom = read(path, [0, 100])  # -50..50 HU
    assert custom[hu == 0].mean() == linear(0, 0, 100) and custom[hu == 60].min() == 255
    no_window = write_dicom(tmp_path / "b.dcm", hu, signed=True, window=None)
    full = read(no_window)
    assert full.min() == 0 and full.max() == 255
    assert full[hu == 0].mean() == round(1000 / 1700 * 255)


def test_monochrome1_is_inverted_and_rle_decodes(tmp_path):
    hu = phantom_hu(2)
    plain = read(write_dicom(tmp_path / "m2.dcm", hu, signed=True))
    inverted = read(write_dicom(tmp_path / "m1.dcm", hu, signed=True, photometric="MONOCHROME1"))
    assert np.array_equal(inverted, 255 - plain)
    rle = write_dicom(tmp_path / "rle.dcm", hu, signed=False, syntax=RLELossless)
    assert pydicom.dcmread(rle).file_meta.TransferSyntaxUID == RLELossless
    assert np.array_equal(read(rle), plain)


def with_presentation(path, shape=None, lut=None):
    """The file at ``path`` given a Presentation LUT Shape, or a Presentation LUT Sequence of
    12-bit P-values ``lut`` over the 8-bit input."""
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(path)
    if shape:
        ds.PresentationLUTShape = shape
    if lut is not None:
        item = Dataset()
        item.LUTDescriptor = [len(lut), 0, 12]
        item.add_new(0x00283006, "US", [int(v) for v in lut])
        ds.PresentationLUTSequence = Sequence([item])
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(
    ("photometric", "shape", "inverted"),
    [
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME2", "INVERSE", True),
        ("MONOCHROME1", "INVERSE", True),
        ("MONOCHROME1", "IDENTITY", False),
    ],
)
def test_the_presentation_lut_shape_decides_the_polarity(tmp_path, photometric, shape, inverted):
    """Where a file has a Presentation LUT Shape, it decides, as DCMTK decides (inverted iff
    INVERSE, or MONOCHROME1 without a Shape); the inversion is about the window's output range,
    not the frame's brightest pixel (pydicom's on a frame alone)."""
    hu = phantom_hu(4)
    plain = read(write_dicom(tmp_path / "plain.dcm", hu, signed=True), "bone")
    assert plain[hu == -1000].max() == 0 and plain.max() < 200  # bone's window: nothing white
    path = write_dicom(tmp_path / "f.dcm", hu, signed=True, photometric=photometric)
    image = read(with_presentation(path, shape), "bone")
    assert np.array_equal(image, 255 - plain if inverted else plain)
    by_photometric = dicom.read(str(path), "test", "bone", presentation_lut=False)[0]
    assert np.array_equal(by_photometric, 255 - plain if photometric == "MONOCHROME1" else plain)
    described = dicom.read(str(path), "test")[1]
    contradicts = inverted != (photometric == "MONOCHROME1")
    assert described.endswith(f", Presentation LUT Shape {shape}") == contradicts, described


def test_a_presentation_lut_sequence_maps_the_window_output_to_p_values(tmp_path):
    hu = phantom_hu(6)
    plain = read(write_dicom(tmp_path / "plain.dcm", hu, signed=True))
    lut = np.round(np.sqrt(np.arange(256) / 255) * 4095)
    path = with_presentation(write_dicom(tmp_path / "p.dcm", hu, signed=True), lut=lut)
    image, described = dicom.read(str(path), "test")
    assert np.array_equal(image, np.round(lut[plain] / 4095 * 255))
    assert described.endswith(", a Presentation LUT")


def test_a_table_whose_files_disagree_in_polarity_shows_them_apart_on_the_card(tmp_path):
    """Half the slices say INVERSE against their MONOCHROME2: shown inverted (as a viewer shows
    them), counted apart on the data card; `presentation_lut: false` shows them as the rest."""
    table = ct_table(tmp_path)
    rows = pd.read_csv(table)
    for name in rows["path"][::2]:
        with_presentation(table.parent / name, "INVERSE")
    for follow in (True, False):
        out = tmp_path / f"out-{follow}"
        options = {"source": "table", "table": str(table), "presentation_lut": follow}
        prepare_dataset("ct", options, PRE, out)
        manifest = pd.read_parquet(out / "manifest.parquet")
        shards = np.concatenate([np.load(p) for p in sorted((out / "shards").glob("*.npy"))])
        inverse = manifest["raw"].str.endswith("Presentation LUT Shape INVERSE").to_numpy()
        assert inverse.sum() == len(rows) // 2
        # The phantom's corner is air: black as a viewer shows it, white where inverted.
        white_air = shards.reshape(len(shards), -1)[:, 0] > 128
        assert white_air.tolist() == (inverse & follow).tolist()
        card = dict(data_card(out).sections)
        sizes = card["Before preprocessing (most common size and mode per split)"]
        assert "Presentation LUT Shape INVERSE" in sizes.to_string()


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_padding_is_background_and_out_of_the_range(tmp_path, photometric):
    """A CT's area outside the scanned circle holds Pixel Padding Value (−2000 here): black,
    whatever the photometric, and not the bottom of a windowless file's range."""
    hu = phantom_hu(3)
    y, x = np.mgrid[:32, :32]
    outside = np.hypot(y - 16, x - 16) > 15
    hu[outside] = -2000
    path = write_dicom(tmp_path / "p.dcm", hu, signed=True, photometric=photometric, window=None)
    ds = pydicom.dcmread(path)
    ds.add_new(0x00280120, "SS", -2000)  # Pixel Padding Value, signed as the pixels are
    ds.save_as(path, enforce_file_format=True)
    image = read(path)
    assert (image[outside] == 0).all()
    inside = image[~outside & (hu == -1000)], image[hu == 700]
    dark, bright = (0, 255) if photometric == "MONOCHROME2" else (255, 0)
    assert (inside[0] == dark).all() and (inside[1] == bright).all()  # air to bone: 0..255


def without_decoders(monkeypatch):
    """pydicom as on a machine without the ``dicom`` extra's decoders: no compressed syntax
    decodable, its plugins listed as pydicom lists the missing ones."""
    from types import SimpleNamespace

    none = SimpleNamespace(
        is_available=False,
        missing_dependencies=[
            "gdcm - requires gdcm>=3.0.10",
            "pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1",
        ],
    )
    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda syntax: none)


def test_a_compressed_file_without_its_decoder_names_syntax_and_package(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "ls.dcm", phantom_hu(3), signed=True)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + bytes(64)])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    ds.save_as(path, enforce_file_format=True)
    without_decoders(monkeypatch)
    with pytest.raises(DataError) as error:
        read(path)
    message = str(error.value)
    assert "ls.dcm" in message and "JPEG-LS Lossless" in message
    assert "1.2.840.10008.1.2.4.80" in message and "pylibjpeg" in message


def _item(**attributes):
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def write_enhanced_ct(path, frames, *, intercepts=None, windows=None, modality="CT"):
    """An enhanced CT (or, with ``modality="MR"``, a file of that modality) whose rescale and
    windows live where the enhanced IODs keep them: the functional groups (PS3.3 C.7.6.16),
    each macro shared by all frames or given per frame, never both. ``frames``: Hounsfield
    units per frame; ``intercepts`` (the stored values shift with them) and ``windows``: one
    per frame, in the per-frame groups; else intercept 0 and window 40/400, shared."""
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedCTImageStorage

    ds = new_dataset(EnhancedCTImageStorage)
    ds.Modality, ds.PatientID = modality, path.stem
    ds.Rows, ds.Columns = frames[0].shape
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    units = "HU" if modality == "CT" else "US"

    def rescale(intercept):
        return Sequence([_item(RescaleIntercept=intercept, RescaleSlope=1, RescaleType=units)])

    def window(centre_width):
        return Sequence([_item(WindowCenter=centre_width[0], WindowWidth=centre_width[1])])

    shared = _item()
    if intercepts is None:
        shared.PixelValueTransformationSequence = rescale(0)
    if windows is None:
        shared.FrameVOILUTSequence = window((40, 400))
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for k in range(len(frames)):
        group = _item(FrameContentSequence=Sequence([_item(FrameAcquisitionNumber=1)]))
        if intercepts is not None:
            group.PixelValueTransformationSequence = rescale(intercepts[k])
        if windows is not None:
            group.FrameVOILUTSequence = window(windows[k])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    shifts = intercepts or [0] * len(frames)
    stored = [hu - shift for hu, shift in zip(frames, shifts, strict=True)]
    ds.PixelData = np.stack(stored).astype(np.int16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_an_enhanced_ct_reads_each_frame_with_its_functional_groups(tmp_path):
    """Each frame as its own single-frame CT with the same values and window reads, whether
    the window or the rescale is the frame's own — none of them at the top level where
    pydicom's functions look."""
    hu = [phantom_hu(k) for k in range(3)]
    windows = [(40, 400), (-600, 1500), (60, 160)]
    own_windows = write_enhanced_ct(tmp_path / "windows.dcm", hu, windows=windows)
    own_rescales = write_enhanced_ct(tmp_path / "rescales.dcm", hu, intercepts=[0, -1024, 512])
    by_window, raw = dicom.read_frames(str(own_windows), "test")
    by_rescale = dicom.read_frames(str(own_rescales), "test")[0]
    for k, window in enumerate(windows):
        single = write_dicom(tmp_path / f"single{k}.dcm", hu[k], signed=True, window=window)
        assert np.array_equal(by_window[k], read(single)), k
        shared = write_dicom(tmp_path / f"shared{k}.dcm", hu[k], signed=True, window=(40, 400))
        assert np.array_equal(by_rescale[k], read(shared)), k
    assert raw == "32×32 DICOM MONOCHROME2 16-bit signed, 3 frames"
    # A file with a window in both groups (the standard allows one): the frame's own wins.
    both = pydicom.dcmread(own_windows)
    both.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence = pydicom.sequence.Sequence(
        [_item(WindowCenter=500, WindowWidth=10)]
    )
    both.save_as(tmp_path / "both.dcm", enforce_file_format=True)
    assert np.array_equal(dicom.read_frames(str(tmp_path / "both.dcm"), "test")[0], by_window)
    # The dataset's window replaces every frame's; the rescale type in the groups says HU.
    lung = dicom.read_frames(str(own_windows), "test", "lung")[0]
    for k, frame in enumerate(lung):
        assert np.array_equal(frame, read(tmp_path / f"single{k}.dcm", "lung")), k
    mr = write_enhanced_ct(tmp_path / "mr.dcm", hu, modality="MR")
    with pytest.raises(DataError, match="mr.dcm is MR, RescaleType US, not in Hounsfield"):
        dicom.read_frames(str(mr), "test", "lung")


def test_a_multi_frame_file_without_a_window_keeps_its_frames_relative_brightness(tmp_path):
    hu = phantom_hu(4)
    path = write_dicom(tmp_path / "cine.dcm", hu, signed=True, window=None, frames=2)
    ds = pydicom.dcmread(path)
    ds.PixelData = np.stack([hu, hu / 2]).astype(np.int16).tobytes()  # the second one dimmer
    ds.save_as(path, enforce_file_format=True)
    bright, dim = dicom.read_frames(str(path), "test")[0]
    assert bright.min() == 0 and bright.max() == 255
    assert dim.max() == round((350 + 1000) / 1700 * 255)  # bone at 350 HU of −1000..700
    with pytest.raises(DataError, match="cine.dcm has 2 frames where one image was expected"):
        read(path)


def test_a_real_ultrasound_cine_gives_its_frames_in_colour():
    path = real_file("examples_ybr_color.dcm")  # 30 frames, YBR_FULL_422, JPEG baseline
    from pydicom.uid import JPEGBaseline8Bit

    if not pydicom.pixels.get_decoder(JPEGBaseline8Bit).is_available:
        pytest.skip("no JPEG baseline decoder is installed here")
    frames, raw = dicom.read_frames(str(path), "test")
    expected = pydicom.dcmread(path).pixel_array  # pydicom converts YBR to RGB
    assert len(frames) == 30 and raw.endswith("YBR_FULL_422 8-bit unsigned, 30 frames")
    assert all(np.array_equal(f, e) for f, e in zip(frames, expected, strict=True))


def test_a_multi_frame_file_in_a_table_is_one_image_per_frame_in_one_group(tmp_path):
    rows = []
    for i in range(16):
        name = f"series{i}.dcm"
        hu = [phantom_hu(i) + 20 * k for k in range(3)]
        write_enhanced_ct(tmp_path / "images" / name, hu)
        rows.append({"path": f"images/{name}", "label": ["normal", "lesion"][i % 2]})
    write_dicom(tmp_path / "images" / "one.dcm", phantom_hu(24), signed=True)
    rows.append({"path": "images/one.dcm", "label": "lesion"})
    pd.DataFrame(rows).to_csv(tmp_path / "ct.csv", index=False)
    options = {"source": "table", "table": str(tmp_path / "ct.csv"), "val_fraction": 0.3}
    out = prepare_dataset("ct", options, PRE, tmp_path / "out")
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert len(manifest) == 16 * 3 + 1 and manifest["group"].nunique() == 17
    assert manifest.groupby("group")["split"].nunique().max() == 1
    assert set(manifest["split"]) == {"train", "val", "test"}
    frames = manifest[~manifest["id"].str.endswith("one.dcm")]
    assert len(frames) == 48 and frames["id"].str.contains(r"/series\d+\.dcm#frame[0-2]$").all()
    assert frames["raw"].str.endswith(", 3 frames").all()
    central = prepare_dataset("ct", {**options, "central_slices": 0.4}, PRE, tmp_path / "c")
    ids = pd.read_parquet(central / "manifest.parquet")["id"]
    assert len(ids) == 17 and set(ids.str[-1]) == {"1", "m"}  # the middle frame; one.dcm
    thinned = prepare_dataset("ct", {**options, "slice_step": 2}, PRE, tmp_path / "step")
    ids = pd.read_parquet(thinned / "manifest.parquet")["id"]
    assert len(ids) == 16 * 2 + 1 and set(ids.str[-1]) == {"0", "2", "m"}


def ct_table(tmp_path, n=16):
    rows = []
    for i in range(n):
        name = f"ct{i:02d}.dcm"
        write_dicom(
            tmp_path / "images" / name,
            phantom_hu(i),
            signed=(i // 2) % 2 == 0,
            syntax=ImplicitVRLittleEndian if (i // 4) % 2 else ExplicitVRLittleEndian,
        )
        rows.append({"path": f"images/{name}", "label": ["normal", "lesion"][i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "ct.csv", index=False)
    return tmp_path / "ct.csv"


def test_a_table_of_ct_slices_prepares_with_contrast(tmp_path):
    table = ct_table(tmp_path)
    out = prepare_dataset("ct", {"source": "table", "table": str(table)}, PRE, tmp_path / "out")
    meta = read_meta(out)
    assert meta.channels == 1 and sum(meta.split_counts.values()) == 16
    manifest = pd.read_parquet(out / "manifest.parquet")
    raw = set(manifest["raw"])
    assert raw == {
        "32×32 DICOM MONOCHROME2 16-bit signed",
        "32×32 DICOM MONOCHROME2 12-bit unsigned",
    }
    shards = np.concatenate([np.load(p) for p in sorted((out / "shards").glob("*.npy"))])
    # Every slice shows black air, white bone and grey tissue, not a flat or saturated image.
    assert all(image.min() <= 5 and image.max() >= 200 for image in shards), [
        (i.min(), i.max()) for i in shards
    ]
    assert all(image.std() > 40 for image in shards)
    card = dict(data_card(out).sections)
    assert "DICOM" in card["Before preprocessing (most common size and mode per split)"].to_string()


def slices_of_patients(tmp_path, patients: int, per_patient: int, name=lambda p: f"PT{p:03d}"):
    """A table of CT slices, ``per_patient`` per patient, their headers naming the patient
    (``name(p)``), and no patient column."""
    rows = []
    for p in range(patients):
        for k in range(per_patient):
            key = p * per_patient + k
            hu = phantom_hu(key)
            hu[0, : key % 32], hu[1, : key // 32] = 700, 700
            path = write_dicom(tmp_path / "ct" / f"{key}.dcm", hu, signed=True, patient=name(p))
            rows.append({"path": path.name, "label": ["clear", "nodule"][k % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "ct" / "slices.csv", index=False)
    return tmp_path / "ct" / "slices.csv"


def test_dicom_slices_without_a_patient_column_are_grouped_by_their_patient_id(tmp_path):
    table = slices_of_patients(tmp_path, patients=10, per_patient=4)
    out = prepare_dataset("ct", {"source": "table", "table": str(table)}, PRE, tmp_path / "o")
    rows = pd.read_parquet(out / "manifest.parquet")
    assert sorted(rows["group"].unique()) == [f"PatientID PT{p:03d}" for p in range(10)]
    assert (rows.groupby("group")["split"].nunique() == 1).all()
    assert set(rows["split"]) == {"train", "val", "test"}


def test_one_patient_id_in_every_file_is_not_taken_for_one_patient(tmp_path, caplog):
    table = slices_of_patients(tmp_path, patients=10, per_patient=4, name=lambda p: "ANONYMOUS")
    out = prepare_dataset("ct", {"source": "table", "table": str(table)}, PRE, tmp_path / "o")
    assert (pd.read_parquet(out / "manifest.parquet")["group"] == "").all()
    assert "every DICOM file names one patient ('ANONYMOUS'; anonymised?)" in caplog.text


def test_a_patient_id_in_two_given_splits_is_named(tmp_path):
    table = slices_of_patients(tmp_path, patients=10, per_patient=4)
    frame = pd.read_csv(table)
    frame["split"] = ["test" if i in (3, 8) else "train" for i in range(len(frame))]  # PT000, PT002
    frame.to_csv(table, index=False)
    entry = {"source": "table", "table": str(table), "split_column": "split"}
    with pytest.raises(
        DataError,
        match=r"patient/group 'PatientID PT000' is in splits \['test', "
        r"'train'\] \(rows \[2, 3, 4, 5\]; test: .*ct/[0-9]+\.dcm; train: .*\.dcm and 2 more\)"
        r".*give a patient column \(`group_column`\)",
    ):
        prepare_dataset("ct", entry, PRE, tmp_path / "o")


def test_a_truncated_dicom_stops_naming_file_and_row_without_traceback(tmp_path, capsys):
    table = ct_table(tmp_path)
    broken = tmp_path / "images" / "ct05.dcm"
    broken.write_bytes(broken.read_bytes()[:-700])
    # The colour check reads headers only, so it passes; the pixels then fail by name.
    assert FileReader(None).channels(str(broken), "test") == 1
    code = main(
        ["prepare", "table", "--table", str(table), "--size", "16", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "ct.csv, row 7" in err and "ct05.dcm" in err and "re-export" in err  # file line 7
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


def test_a_malformed_header_value_stops_naming_file_and_row(tmp_path):
    """pydicom parses a value when it is read: a Number of Frames of "1A" (pydicom's own
    test file badVR.dcm has one) failed with a bare ValueError from the colour check and the
    pixels alike."""
    path = write_dicom(tmp_path / "bad.dcm", phantom_hu(1), signed=True, frames=2)
    stored = path.read_bytes()
    assert stored.count(b"IS\x02\x002 ") == 1  # explicit VR: tag, "IS", length 2, "2 "
    path.write_bytes(stored.replace(b"IS\x02\x002 ", b"IS\x02\x001A"))
    for reader in (dicom.header, dicom.read_frames):
        with pytest.warns(UserWarning, match="Invalid value for VR IS"):
            with pytest.raises(DataError, match=r"rows.csv, row 3: cannot read DICOM file bad.dcm"):
                reader(str(path), "rows.csv, row 3")


def test_every_file_pydicom_ships_reads_or_stops_naming_itself():
    """pydicom's own test files: odd syntaxes, big-endian, 1-bit, palette, RLE, truncated,
    compressed without a decoder here, non-image objects, a malformed value. Each reads, or
    fails as a ``DataError`` naming the file — never another exception."""
    folder = real_file("CT_small.dcm").parent
    files = sorted(p for p in folder.iterdir() if p.is_file())
    read = 0
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the odd ones as it reads
            try:
                frames, _ = dicom.read_frames(str(path), "test")
            except DataError as error:
                assert path.name in str(error)
                continue
        assert all(f.dtype == np.uint8 and f.ndim in (2, 3) for f in frames)
        read += 1
    assert read >= 20, f"only {read} of {len(files)} files read"


def test_the_folder_source_reads_dicom_and_the_cli_takes_a_window(tmp_path, capsys):
    for i in range(12):
        write_dicom(tmp_path / "root" / ["a", "b"][i % 2] / f"{i}.dcm", phantom_hu(i), signed=True)
    out = tmp_path / "out"
    args = ["prepare", "imagefolder", "--root", str(tmp_path / "root"), "--size", "16"]
    assert main([*args, "--out", str(out), "--window", "-600", "1500"]) == 0
    assert read_meta(out).source["window"] == [-600.0, 1500.0]
    assert main([*args, "--out", str(tmp_path / "o2"), "--window", "lung"]) == 0
    shards = [np.load(p) for p in (out / "shards").glob("*.npy")]
    assert np.array_equal(shards, [np.load(p) for p in (tmp_path / "o2" / "shards").glob("*.npy")])
    assert main([*args, "--out", str(tmp_path / "o3"), "--window", "lungs"]) == 2
    assert "must be one of soft_tissue" in capsys.readouterr().err


def write_file_set(folder, series: dict, scratch):
    """A CD or PACS export as PS3.10 defines it, written by pydicom's ``FileSet``: per patient
    (``series``: Patient ID → slice keys) one CT series as ``PT000000/ST000000/SE000000/IM000000``,
    ... (no suffix), and one ``DICOMDIR`` beside them (the instances written first to
    ``scratch``)."""
    from pydicom.fileset import FileSet

    file_set = FileSet()
    for patient, keys in series.items():
        study, series_uid = generate_uid(), generate_uid()
        for n, key in enumerate(keys):
            hu = phantom_hu(key)
            hu[0, : key % 32], hu[1, : key // 32] = 700, 700  # no two slices alike
            ds = pydicom.dcmread(write_dicom(scratch / f"{key}.dcm", hu, signed=True))
            ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, study, series_uid
            ds.StudyDate, ds.StudyTime, ds.StudyID = "20260101", "120000", "1"
            ds.SeriesNumber, ds.InstanceNumber = 1, n + 1
            file_set.add(ds)
    file_set.write(folder)


def test_a_cd_export_is_read_by_content_and_what_holds_no_image_is_named(
    tmp_path, caplog, monkeypatch
):
    """Files named IM000000 are DICOM by their content; the DICOMDIR, a structured report and a
    note are left out, named in one warning; a patient's slices stay in one split."""
    root = tmp_path / "root"
    for c, cls in enumerate(("normal", "nodule")):
        for patient in range(6):
            keys = range(18 * c + 3 * patient, 18 * c + 3 * patient + 3)
            folder = root / cls / f"{cls}{patient}"
            write_file_set(folder, {f"{cls}{patient}": keys}, tmp_path / "written")
    report = new_dataset("1.2.840.10008.5.1.4.1.1.88.11")  # Basic Text SR
    report.Modality = "SR"
    report.save_as(root / "normal" / "normal0" / "SR000001", enforce_file_format=True)
    (root / "nodule" / "notes.txt").write_text("read me")
    headers = []
    opened = dicom._open
    monkeypatch.setattr(
        dicom, "_open", lambda path, *a, **k: headers.append(path) or opened(path, *a, **k)
    )
    out = prepare_dataset("cd", {"source": "imagefolder", "root": str(root)}, PRE, tmp_path / "o")
    # listing, frames, colour, patient: one header read per file, then one pixel read
    assert len(headers) == 2 * 36 + 13 and len(set(headers)) == 49
    rows = pd.read_parquet(out / "manifest.parquet")
    assert len(rows) == 36 and rows["id"].str.endswith(("IM000000", "IM000001", "IM000002")).all()
    assert rows["raw"].str.startswith("32×32 DICOM MONOCHROME2").all()
    assert rows["group"].nunique() == 12
    assert (rows.groupby("group")["split"].nunique() == 1).all()
    warning = next(r.getMessage() for r in caplog.records if "left out" in r.getMessage())
    assert "14 file(s) in the class folders are not images and were left out" in warning
    assert "12 DICOM Media Storage Directory Storage object(s) without an image" in warning
    assert "1 DICOM Basic Text SR Storage object(s) without an image" in warning
    left_out = dict(data_card(out).sections)["Files left out (no image medft reads)"]
    listed = dict(zip(left_out[""], left_out["files"], strict=True))
    assert listed["'.txt' file(s)"] == "1: nodule/notes.txt"
    assert listed["DICOM Media Storage Directory Storage object(s) without an image"].startswith(
        "12: nodule/nodule0/DICOMDIR, nodule/nodule1/DICOMDIR"
    )
    assert "normal/normal0/SR000001" in warning and "1 '.txt' file(s) (nodule/notes.txt)" in warning


def test_class_folders_each_one_cd_export_are_asked_about(tmp_path):
    """One file set per class: its DICOMDIR beside PT000000/, PT000001/, ... — folders named
    alike in every class, as split folders holding classes would be. The DICOMDIR is no image
    of the class folder, so medft asks which they are; told, each is a patient."""
    root = tmp_path / "root"
    for c, cls in enumerate(("normal", "nodule")):
        series = {f"{cls}{p}": range(24 * c + 3 * p, 24 * c + 3 * p + 3) for p in range(8)}
        write_file_set(root / cls, series, tmp_path / "written")
    assert (root / "normal" / "DICOMDIR").is_file() and (root / "nodule" / "PT000007").is_dir()
    entry = {"source": "imagefolder", "root": str(root)}
    with pytest.raises(DataError, match=r"all hold the same folders \(PT000000, PT000001"):
        prepare_dataset("cd", entry, PRE, tmp_path / "o")
    told = {**entry, "folder_groups": True}
    rows = pd.read_parquet(prepare_dataset("cd", told, PRE, tmp_path / "o") / "manifest.parquet")
    assert rows["group"].nunique() == 16 and (rows.groupby("group")["split"].nunique() == 1).all()


def test_a_table_row_of_a_dicom_object_without_an_image_is_named(tmp_path):
    write_dicom(tmp_path / "IM000001", phantom_hu(1), signed=True)
    report = new_dataset("1.2.840.10008.5.1.4.1.1.88.11")
    report.save_as(tmp_path / "SR000001", enforce_file_format=True)
    reader = FileReader(None)
    assert reader(str(tmp_path / "IM000001"), -1, "t.csv, row 2")[0].shape == (32, 32)
    with pytest.raises(
        DataError,
        match=r"t.csv, row 3: DICOM file SR000001 holds no image "
        r"\(Basic Text SR Storage, no Pixel Data\); remove its row",
    ):
        reader(str(tmp_path / "SR000001"), -1, "t.csv, row 3")


def test_a_file_rewritten_as_dicom_under_the_same_name_is_found_again(tmp_path):
    """The content check is remembered per version of a file, as the header is: a notebook
    that lists a folder, then writes the export into it, sees the new file."""
    path = tmp_path / "IM000001"
    path.write_text("not yet")
    assert file_kind(path) is None
    write_dicom(path, phantom_hu(1), signed=True)
    assert file_kind(path) == "dicom"


def write_volume(path, key: int, shape=(12, 12, 8), scale=1.0, pad=0):
    """A volume whose slices all differ (a block that moves with the slice index and ``key``),
    with ``pad`` blank slices at each end."""
    z = np.arange(shape[2])
    data = np.zeros(shape, dtype=np.float32)
    for k in z:
        data[2 + (k + key) % 6 : 6 + (k + key) % 6, 1 + key % 7 : 5 + key % 7, k] = 10 + k
        data[0, 0, k] = 1  # a faint marker: no slice is blank
    data = np.concatenate([np.zeros((*shape[:2], pad)), data, np.zeros((*shape[:2], pad))], 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image((data * scale).astype(np.float32), np.eye(4)), path)
    return path


def test_volumes_become_slices_and_no_volume_spans_two_splits(tmp_path):
    for i in range(20):
        suffix = ".nii.gz" if i % 3 else ".nii"
        write_volume(tmp_path / "root" / ["glioma", "healthy"][i % 2] / f"v{i}{suffix}", i)
    options = {"source": "imagefolder", "root": str(tmp_path / "root"), "val_fraction": 0.2}
    out = prepare_dataset("mri", options, PRE, tmp_path / "out")
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert len(manifest) == 20 * 8 and manifest["group"].nunique() == 20
    assert manifest.groupby("group")["split"].nunique().max() == 1
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert manifest["id"].str.contains(r"v\d+\.nii(?:\.gz)?#slice[0-7]$").all()
    assert manifest["raw"].str.endswith("NIfTI float32 volume").all()
    central = prepare_dataset("mri", {**options, "central_slices": 0.5}, PRE, tmp_path / "central")
    ids = pd.read_parquet(central / "manifest.parquet")["id"]
    assert len(ids) == 20 * 4 and set(ids.str[-1]) == {"2", "3", "4", "5"}
    both = {**options, "central_slices": 0.5, "slice_step": 2}
    ids = pd.read_parquet(prepare_dataset("mri", both, PRE, tmp_path / "both") / "manifest.parquet")
    assert len(ids) == 20 * 2 and set(ids["id"].str[-1]) == {"2", "4"}
    with pytest.raises(ConfigError, match=r"`slice_step: 0` must be a whole number >= 1"):
        prepare_dataset("mri", {**options, "slice_step": 0}, PRE, tmp_path / "zero")


def test_a_nifti_slice_is_shown_as_the_dicom_slice_it_was_converted_from(tmp_path):
    """An axial CT slice (rows towards the patient's back, columns towards the left, as DICOM
    stores an axial slice), converted to NIfTI as dcm2niix converts it — the voxels as stored,
    the affine mapping them to RAS — and read back: the same picture, not turned or mirrored.
    Stored the other way round (a RAS affine, the voxels flipped to match), the same again."""
    hu = np.zeros((32, 32))
    hu[4:10, 3:6] = 1000  # an L: a turn or a mirror image of it is not itself
    hu[8:10, 3:12] = 1000
    hu[20:28, 24:26] = 1000  # and a bar, so that the picture is not symmetric in any way
    shown = read(write_dicom(tmp_path / "axial.dcm", hu, signed=True, window=(500, 1000)))
    assert np.array_equal(shown > 128, hu > 500)

    class Options:
        slice_axis = central_slices = intensity_percentiles = None

    reader = FileReader(Options())
    # Voxel (i, j) is pixel (row j, column i): x and y of LPS are -x and -y of RAS.
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    stored = np.repeat(hu.T[:, :, None], 3, axis=2).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(stored, lps), tmp_path / "from_dicom.nii.gz")
    nibabel.save(nibabel.Nifti1Image(stored[::-1, ::-1].copy(), np.eye(4)), tmp_path / "ras.nii.gz")
    for name in ("from_dicom.nii.gz", "ras.nii.gz"):
        assert np.array_equal(reader(str(tmp_path / name), 1, "t")[0], shown), name


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_every_plane_of_a_volume_is_shown_with_the_patients_right_or_front_on_the_left(
    tmp_path, axis
):
    """One bright voxel at the volume's right, anterior, superior corner (RAS+ voxel axes):
    in an axial slice it is at the top (anterior) left (the patient's right, radiological
    convention); in a coronal one at the top (superior) left (right); in a sagittal one at the
    top (superior) left (anterior)."""
    data = np.zeros((6, 7, 8), dtype=np.float32)
    data[-1, -1, -1] = 100
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), tmp_path / "v.nii.gz")

    class Options:
        slice_axis, central_slices, intensity_percentiles = axis, None, (0, 100)

    image = FileReader(Options())(str(tmp_path / "v.nii.gz"), data.shape[axis] - 1, "t")[0]
    planes = {0: (8, 7), 1: (8, 6), 2: (7, 6)}  # (rows, columns): S or A down, R or A across
    assert image.shape == planes[axis] and image[0, 0] == 255 and image.sum() == 255


def test_intensity_is_scaled_per_volume_and_blank_slices_are_not_leaks(tmp_path):
    class Options:
        slice_axis = central_slices = intensity_percentiles = None

    reader = FileReader(Options())
    one = write_volume(tmp_path / "one.nii.gz", 3)
    bright = write_volume(tmp_path / "bright.nii.gz", 3, scale=1000.0)
    for k in range(8):
        assert np.array_equal(reader(str(one), k, "t")[0], reader(str(bright), k, "t")[0])
    for i in range(16):
        write_volume(tmp_path / "root" / ["a", "b"][i % 2] / f"v{i}.nii.gz", i, pad=2)
    out = prepare_dataset(
        "padded", {"source": "imagefolder", "root": str(tmp_path / "root")}, PRE, tmp_path / "o"
    )
    found = read_meta(out).duplicates
    assert found["across_splits"] == 0 and sum(found["blank"].values()) == 16 * 4


def test_a_4d_series_is_refused_by_name(tmp_path):
    path = tmp_path / "root" / "a" / "bold.nii.gz"
    path.parent.mkdir(parents=True)
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4, 5), np.float32), np.eye(4)), path)
    with pytest.raises(DataError, match=r"bold.nii.gz has shape \(4, 4, 4, 5\)"):
        prepare_dataset(
            "x",
            {
                "source": "table",
                "table": str(_one_row_table(tmp_path, path)),
                "min_class_images": 1,
            },
            PRE,
            tmp_path / "out",
        )


def _one_row_table(tmp_path, path):
    other = write_volume(tmp_path / "root" / "b" / "ok.nii.gz", 0)
    table = tmp_path / "t.csv"
    pd.DataFrame({"path": [str(path), str(other)], "label": ["a", "b"]}).to_csv(table, index=False)
    return table


def real_file(name: str):
    """One of the real DICOM files pydicom ships (CT and MR slices, kept in its package)."""
    from pathlib import Path

    path = Path(pydicom.__file__).parent / "data" / "test_files" / name
    if not path.is_file():
        pytest.skip(f"this pydicom installation does not ship {name}")
    return path


def test_real_ct_and_mr_slices_read_with_contrast(tmp_path):
    ct = real_file("CT_small.dcm")  # 16-bit signed, intercept -1024, explicit VR
    restored = pydicom.dcmread(ct)  # the same CT, stored 12-bit unsigned, implicit VR
    hu = restored.pixel_array.astype(np.int32) + int(restored.RescaleIntercept)
    restored.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    restored.BitsStored, restored.HighBit, restored.PixelRepresentation = 12, 11, 0
    restored.PixelData = (hu + 1024).clip(0, 4095).astype(np.uint16).tobytes()
    unsigned = tmp_path / "ct12.dcm"
    restored.save_as(unsigned, enforce_file_format=True)
    assert np.array_equal(read(ct), read(unsigned))
    for path in (ct, real_file("MR_small_implicit.dcm"), real_file("MR_small_RLE.dcm")):
        image = read(path)
        assert image.std() > 20 and len(np.unique(image)) > 100, path.name
    assert np.array_equal(read(real_file("MR_small_RLE.dcm")), read(real_file("MR_small.dcm")))


def test_real_broken_and_undecodable_files_are_named(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="MR_truncated.dcm"):
        read(real_file("MR_truncated.dcm"))
    without_decoders(monkeypatch)
    with pytest.raises(DataError, match=r"MR_small_jpeg_ls_lossless.dcm is compressed as JPEG-LS"):
        read(real_file("MR_small_jpeg_ls_lossless.dcm"))


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")
def test_a_compressed_file_cut_short_is_named_as_cut_not_as_holding_no_image(tmp_path):
    """pydicom drops the pixels of a file that ends inside them, warning only: it is a copy
    cut short, to be copied again, not an object without an image, to be removed."""
    data = real_file("MR_small_jpeg_ls_lossless.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as error:
        read(tmp_path / "cut.dcm")
    message = str(error.value)
    assert "cut.dcm has an image header but ends before its pixels do" in message
    assert "cut short" in message and "copy it again" in message and "remove" not in message


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "MR_small_jp2klossless.dcm"])
def test_a_compressed_stream_cut_short_is_named_not_filled_in(tmp_path, name):
    """A stream whose end is missing, which libjpeg and OpenJPEG decode without a word (the
    rest filled in), stops naming the file."""
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(real_file(name))
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([stream[: len(stream) * 2 // 3]])
    ds.save_as(tmp_path / "cut.dcm", enforce_file_format=True)
    with pytest.raises(DataError, match="pixels of DICOM file cut.dcm end before their end-of"):
        read(tmp_path / "cut.dcm")


def test_floating_point_pixels_read_over_their_range(tmp_path):
    """A parametric map (an ADC map, say) keeps its pixels as floats (Float Pixel Data):
    read, and with no window, over its full range."""
    from pydicom.uid import MRImageStorage

    adc = np.linspace(0.0, 3.0e-3, 32 * 32, dtype=np.float32).reshape(32, 32)  # mm²/s
    ds = new_dataset(MRImageStorage)
    ds.Modality, ds.PatientID = "MR", "p"
    ds.Rows, ds.Columns = adc.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME2", 32
    ds.FloatPixelData = adc.tobytes()
    ds.save_as(tmp_path / "adc.dcm", enforce_file_format=True)
    image = read(tmp_path / "adc.dcm")
    assert np.array_equal(image, np.round(adc / adc.max() * 255).astype(np.uint8))


@pytest.mark.parametrize(
    "name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"]
)
def test_real_files_compressed_as_archives_export_them_read_as_the_uncompressed(name):
    """JPEG-LS and JPEG 2000 (mammography and PACS exports), decoded by the ``dicom`` extra's
    decoders, read exactly as the same MR slice uncompressed."""
    assert np.array_equal(read(real_file(name)), read(real_file("MR_small.dcm")))


def _pydicom_view(ds, bits_range):
    """What pydicom's own pipeline shows, its output range mapped to 0..255: the reference
    medft's reader must match."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    low, high = bits_range
    out = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    return np.clip((out - low) / (high - low), 0, 1) * 255


# pydicom warns when a VOI LUT indexes float values: a reader that floats pydicom's integers
@pytest.mark.filterwarnings("error::UserWarning")
def test_a_voi_lut_sequence_is_applied_as_pydicom_applies_it(tmp_path):
    from pydicom.sequence import Sequence

    path = write_dicom(tmp_path / "lut.dcm", phantom_hu(5), signed=False, window=None)
    ds = pydicom.dcmread(path)
    del ds.RescaleSlope, ds.RescaleIntercept  # the LUT maps the stored 12-bit values
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.add_new(0x00283006, "US", (np.sqrt(np.arange(4096) / 4095) * 65535).astype(int).tolist())
    ds.VOILUTSequence = Sequence([item])
    ds.save_as(path, enforce_file_format=True)
    expected = _pydicom_view(pydicom.dcmread(path), (0, 65535))
    image = read(path)
    assert np.abs(image - expected).max() <= 1
    # Non-linear: a plain linear map of the same range would not give this.
    assert np.abs(image - np.round(ds.pixel_array / 4095 * 255)).max() > 20


@pytest.mark.parametrize(
    ("function", "centre", "width"),
    [("SIGMOID", 40, 400), ("LINEAR", 40, 2), ("LINEAR_EXACT", 40, 80)],
)
def test_the_files_window_function_is_the_standards(tmp_path, function, centre, width):
    hu = phantom_hu(6) + np.arange(32)[None, :] - 16  # a ramp, so every part of the curve shows
    path = write_dicom(tmp_path / "w.dcm", hu, signed=True, window=(centre, width))
    ds = pydicom.dcmread(path)
    ds.VOILUTFunction = function
    ds.save_as(path, enforce_file_format=True)
    # 16-bit signed, no rescale: the window's output range is −32768..32767.
    expected = _pydicom_view(pydicom.dcmread(path), (-32768, 32767))
    image = read(path)
    assert np.abs(image - expected).max() <= 1
    if (function, width) == ("LINEAR", 2):
        # The standard's LINEAR with width 2 is a threshold, not a grey band.
        assert set(np.unique(image)) == {0, 255}


def test_8_bit_rgb_is_kept_as_stored(tmp_path):
    from pydicom.uid import SecondaryCaptureImageStorage

    rgb = np.random.default_rng(0).integers(30, 200, (24, 32, 3)).astype(np.uint8)
    ds = new_dataset(SecondaryCaptureImageStorage)
    ds.Modality = "XC"
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()
    path = tmp_path / "derm.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert np.array_equal(read(path), rgb)  # not stretched to 0..255


def test_palette_colour_comes_out_in_colour(tmp_path):
    from pydicom.pixels import apply_color_lut

    path = real_file("examples_palette.dcm")
    ds = pydicom.dcmread(path)
    image = read(path)
    bits = ds.RedPaletteColorLookupTableDescriptor[2]
    expected = apply_color_lut(ds.pixel_array, ds) / (2**bits - 1) * 255
    assert image.shape == (*ds.pixel_array.shape, 3)
    assert np.abs(image - expected).max() <= 1
    assert dicom.header(str(path), "test").channels == 3


def test_multi_frame_colour_reads_each_frame_as_its_single_frame_file(tmp_path):
    """A palette cine and a 16-bit RGB cine: colour is scaled by the file's bits, never by a
    frame's own range, so a frame must read exactly as a file holding only it."""
    from pydicom.uid import SecondaryCaptureImageStorage

    palette = pydicom.dcmread(real_file("examples_palette.dcm"))
    deep = new_dataset(SecondaryCaptureImageStorage)
    deep.Modality, deep.Rows, deep.Columns = "XC", 20, 24
    deep.SamplesPerPixel, deep.PhotometricInterpretation, deep.PlanarConfiguration = 3, "RGB", 0
    deep.BitsAllocated, deep.BitsStored, deep.HighBit, deep.PixelRepresentation = 16, 12, 11, 0
    rng = np.random.default_rng(3)
    for name, ds, frames in [
        ("palette", palette, [palette.pixel_array, palette.pixel_array[::-1]]),
        ("deep", deep, [rng.integers(0, 4096, (20, 24, 3)).astype(np.uint16) for _ in range(3)]),
    ]:
        singles = []
        for k, frame in enumerate(frames):
            ds.PixelData = frame.tobytes()
            ds.save_as(tmp_path / f"{name}{k}.dcm", enforce_file_format=True)
            singles.append(read(tmp_path / f"{name}{k}.dcm"))
        ds.NumberOfFrames, ds.PixelData = len(frames), np.stack(frames).tobytes()
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
        read_frames, _ = dicom.read_frames(str(tmp_path / f"{name}.dcm"), "test")
        assert len(read_frames) == len(frames) and read_frames[0].shape[-1] == 3
        assert all(np.array_equal(f, s) for f, s in zip(read_frames, singles, strict=True))
        assert not np.array_equal(read_frames[0], read_frames[1])


def test_a_hounsfield_window_on_mr_stops_in_one_line_naming_file_and_modality():
    with pytest.raises(DataError) as error:
        read(real_file("MR_small.dcm"), "brain")
    message = str(error.value)
    assert "MR_small.dcm is MR" in message and "not in Hounsfield units" in message
    assert "remove `window:`" in message and "\n" not in message
    read(real_file("CT_small.dcm"), "brain")  # CT is in Hounsfield units


def test_a_missing_transfer_syntax_is_one_line_naming_the_file():
    with pytest.raises(DataError) as error:
        read(real_file("meta_missing_tsyntax.dcm"))
    message = str(error.value)
    assert "meta_missing_tsyntax.dcm names no Transfer Syntax UID" in message
    assert "\n" not in message


def test_a_file_without_preamble_is_read_as_the_dicom_it_is(tmp_path):
    original = real_file("CT_small.dcm")
    ds = pydicom.dcmread(original)
    del ds.file_meta
    ds.preamble = None
    bare = tmp_path / "bare.dcm"
    ds.save_as(bare, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[128:132] != b"DICM"
    assert np.array_equal(read(bare), read(original))
    (tmp_path / "notes.dcm").write_text("not an image at all\n")
    with pytest.raises(DataError, match="notes.dcm"):
        read(tmp_path / "notes.dcm")


def test_twelve_bit_jpeg_extended_reads_and_a_damaged_one_says_what_the_decoder_said(tmp_path):
    """12-bit JPEG Extended, which Pillow cannot decode, reads through the ``dicom`` extra's
    libjpeg as its decompressed copy does; its tables cut short, the message gives the decoder's
    words, that the file may be damaged, and the decoders not installed — in one line."""
    from pydicom.encaps import generate_frames

    path = real_file("JPGExtended.dcm")
    ds = pydicom.dcmread(path)
    image = read(path)
    plain = pydicom.dcmread(path)
    plain.decompress()
    plain.save_as(tmp_path / "plain.dcm", enforce_file_format=True)
    assert np.array_equal(image, read(tmp_path / "plain.dcm")) and image.std() > 20
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[:100] + b"\xff\xd9"])  # its tables cut: refused
    ds.save_as(tmp_path / "cut.dcm", enforce_file_format=True)
    with pytest.raises(DataError) as error:
        read(tmp_path / "cut.dcm")
    message = str(error.value)
    assert "cut.dcm" in message and "12-bit" in message and "may be damaged" in message
    assert "\n" not in message


def test_the_plan_counts_slices_and_frames_not_files(tmp_path):
    """``medft plan`` (its GPU-hours and disk) before preparation: 10 volumes of 8 slices and
    4 files of 3 frames are 92 images, not 14."""
    from medft.data.sources import SOURCES, parse_options

    for i in range(10):
        write_volume(tmp_path / "root" / ["a", "b"][i % 2] / f"v{i}.nii.gz", i)
    for i in range(4):
        frames = [phantom_hu(i) + 20 * k for k in range(3)]
        write_enhanced_ct(tmp_path / "root" / ["a", "b"][i % 2] / f"s{i}.dcm", frames)
    entry = {"name": "mixed", "source": "imagefolder", "root": str(tmp_path / "root")}
    planned = SOURCES.get("imagefolder").planned_counts(parse_options(entry))
    prepared = read_meta(prepare_dataset("mixed", entry, PRE, tmp_path / "out")).split_counts
    assert sum(planned.values()) == sum(prepared.values()) == 10 * 8 + 4 * 3
