"""Users' own data: ImageFolder trees and CSV tables, and one clear error per kind of bad input."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imagefiles import marked_image
from medft.data.preprocess import Preprocess
from medft.data.records import DataError
from medft.data.shards import read_meta
from medft.data.sources import prepare_dataset

PRE = Preprocess(16, 16)


def save_image(path, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    marked_image("L", (20, 24), value, str(path)).save(path)


def make_table(tmp_path, rows, name="labels.csv"):
    for row in rows:
        if not row.get("_skip_image"):
            save_image(tmp_path / "images" / row["path"])
    frame = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def table_rows(n=24, **extra):
    return [
        {
            "path": f"img{i:03d}.png",
            "diagnosis": ["benign", "malignant"][i % 2],
            "patient": f"P{i // 2}",
            **extra,
        }
        for i in range(n)
    ]


def prepare(tmp_path, **options):
    return prepare_dataset(
        "mine",
        {"source": "table", "image_root": str(tmp_path / "images"), **options},
        PRE,
        tmp_path / "out",
    )


def test_imagefolder_without_split_folders_is_carved_stratified(tmp_path):
    for cls in ("glioma", "meningioma", "pituitary"):
        for k in range(10):
            save_image(tmp_path / "root" / cls / f"{k}.png")
    out = prepare_dataset(
        "mri", {"source": "imagefolder", "root": str(tmp_path / "root")}, PRE, tmp_path / "out"
    )
    meta = read_meta(out)
    assert meta.task == "multiclass" and meta.classes == ["glioma", "meningioma", "pituitary"]
    rows = pd.read_parquet(out / "manifest.parquet")
    assert rows[rows["split"] == "test"]["label"].value_counts().tolist() == [2, 2, 2]
    assert meta.split_counts["val"] >= 2


def test_webp_and_jpeg_2000_images_read_as_their_png_twins(tmp_path):
    """Kaggle sets ship WebP, slide scanners and archives JPEG 2000: both lossless here, so
    their prepared pixels equal the same images' as PNG."""
    for k in range(8):
        for root, suffixes in (("png", (".png", ".png")), ("other", (".webp", ".jp2"))):
            for cls, suffix in zip(("benign", "malignant"), suffixes, strict=True):
                path = tmp_path / root / cls / f"{k}{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                marked_image("RGB", (20, 24), (90, 120, 150), f"{cls}{k}").save(path, lossless=True)
    hashes = {}
    for root in ("png", "other"):
        entry = {"source": "imagefolder", "root": str(tmp_path / root)}
        out = prepare_dataset(root, entry, PRE, tmp_path / f"out-{root}")
        hashes[root] = sorted(pd.read_parquet(out / "manifest.parquet")["pixel_hash"])
    assert len(hashes["other"]) == 16 and hashes["other"] == hashes["png"]


def test_imagefolder_with_split_folders_keeps_them(tmp_path):
    for split, n in (("train", 6), ("test", 2)):
        for cls in ("normal", "abnormal"):
            for k in range(n):
                save_image(tmp_path / "root" / split / cls / f"{k}.png")
    out = prepare_dataset(
        "x", {"source": "imagefolder", "root": str(tmp_path / "root")}, PRE, tmp_path / "out"
    )
    counts = read_meta(out).split_counts
    assert counts["test"] == 4 and counts["train"] + counts["val"] == 12
    assert read_meta(out).task == "binary"


def test_imagefolder_with_only_a_train_folder_gets_test_and_val_carved(tmp_path):
    for cls in ("normal", "abnormal"):
        for k in range(10):
            save_image(tmp_path / "root" / "train" / cls / f"{k}.png")
    out = prepare_dataset(
        "x", {"source": "imagefolder", "root": str(tmp_path / "root")}, PRE, tmp_path / "out"
    )
    assert read_meta(out).split_counts == {"train": 14, "test": 4, "val": 2}


def test_table_with_groups_carves_validation_by_patient(tmp_path):
    table = make_table(tmp_path, table_rows())
    out = prepare(tmp_path, table=str(table), label_column="diagnosis", group_column="patient")
    rows = pd.read_parquet(out / "manifest.parquet")
    assert (rows.groupby("group")["split"].nunique() == 1).all()
    assert set(rows["split"]) == {"train", "val", "test"}
    assert read_meta(out).classes == ["benign", "malignant"]


def test_multilabel_table_with_split_column(tmp_path):
    rows = [
        {
            "path": f"f{i}.png",
            "edema": i % 2,
            "effusion": int(i % 3 == 0),
            "split": "test" if i >= 16 else "train",
        }
        for i in range(20)
    ]
    out = prepare(
        tmp_path,
        table=str(make_table(tmp_path, rows)),
        label_columns=["edema", "effusion"],
        split_column="split",
    )
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert read_meta(out).task == "multilabel"
    assert manifest.set_index("id").loc[str(tmp_path / "images" / "f3.png"), "labels"].tolist() == [
        1,
        1,
    ]
    assert read_meta(out).split_counts["test"] == 4


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", r"labels.csv, row 5: image file .*img003.png does not exist"),
        ("unknown_label", r"labels.csv, row 4: label 'benigm' is not one of the classes"),
        ("empty_class", r"class 'borderline' has no images"),
        ("duplicate", r"img001.png is listed twice \(rows \[3, 4\]\)"),
        ("two_splits", r"patient/group 'P0' is in splits \['test', 'train'\]"),
        ("truncated", r"labels.csv, row 7: cannot read image .*img005.png"),
        ("not_an_image", r"labels.csv, row 8: cannot read image .*img006.png"),
    ],
)
def test_bad_input_names_the_file_or_row_and_leaves_nothing(tmp_path, case, message):
    rows = table_rows()
    options = {"label_column": "diagnosis", "group_column": "patient"}
    if case == "missing":
        rows[3]["_skip_image"] = True
    if case == "unknown_label":
        rows[2]["diagnosis"] = "benigm"
        options["classes"] = ["benign", "malignant"]
    if case == "empty_class":
        options["classes"] = ["benign", "borderline", "malignant"]
    if case == "duplicate":
        rows[2]["path"] = rows[1]["path"]
    if case == "two_splits":
        options["split_column"] = "split"
        for i, row in enumerate(rows):
            row["split"] = "test" if i == 0 else "train"
    table = make_table(tmp_path, rows)
    if case == "truncated":
        path = tmp_path / "images" / "img005.png"
        Image.new("L", (64, 64), 7).save(path)
        path.write_bytes(path.read_bytes()[:60])
    if case == "not_an_image":
        (tmp_path / "images" / "img006.png").write_text("this is not a PNG")
    with pytest.raises(DataError, match=message):
        prepare(tmp_path, table=str(table), **options)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_table_with_missing_column_lists_what_it_has(tmp_path):
    table = make_table(tmp_path, table_rows())
    with pytest.raises(DataError, match=r"column\(s\) \['label'\] not found; it has \['path'"):
        prepare(tmp_path, table=str(table))


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        (
            "labels.csv",
            lambda text: text.replace(",", ";").encode(),
            r"one column, 'path;diagnosis;patient': separated by semicolons.*save it with commas",
        ),
        ("labels.csv", lambda text: text.replace(",", "\t").encode(), r"separated by tabs"),
        (
            "labels.xlsx",
            lambda text: b"PK\x03\x04 a zipped workbook",
            "labels.xlsx: a spreadsheet workbook; save the sheet as CSV UTF-8",
        ),
        (
            "labels.csv",
            lambda text: text.replace("img003.png", "imgé03.png").encode("cp1252"),
            r"labels.csv, line 5: not UTF-8 text \(byte 0xe9\); save the table as UTF-8",
        ),
    ],
)
def test_a_spreadsheets_table_in_another_format_names_the_fix(tmp_path, name, write, message):
    text = make_table(tmp_path, table_rows()).read_text()
    table = tmp_path / name
    table.write_bytes(write(text))
    with pytest.raises(DataError, match=message):
        prepare(tmp_path, table=str(table))


def test_planned_counts_hold_a_capped_folder_before_it_is_prepared(tmp_path):
    """``medft plan`` counts a folder before preparing it: with ``max_images_per_class`` the
    split counts are the cap's, not the folder's (six times too many GPU-hours before)."""
    from medft.data.sources import SOURCES, parse_options

    for cls, n in (("glioma", 30), ("meningioma", 30), ("pituitary", 6)):
        for k in range(n):
            save_image(tmp_path / "root" / cls / f"{k}.png", value=k)
    entry = {"name": "mri", "source": "imagefolder", "root": str(tmp_path / "root")}
    source = SOURCES.get("imagefolder")
    uncapped = source.planned_counts(parse_options(entry))
    assert uncapped["train"] > 30
    capped = {**entry, "max_images_per_class": 3}
    planned = source.planned_counts(parse_options(capped))
    held = read_meta(prepare_dataset("mri", capped, PRE, tmp_path / "out")).split_counts
    # three per class in each split: exact where every class fills it; the evaluation splits
    # are estimates either way (carving's rounding; the rare class's one or two images)
    assert planned == {split: min(n, 9) for split, n in uncapped.items()}
    assert planned["train"] == held["train"] == 9
    assert all(abs(planned[split] - held[split]) <= 2 for split in ("val", "test"))


def test_a_paper_task_is_planned_capped_before_its_raw_data_exist():
    """Counted from the paper's Table 2 (nothing downloaded yet), capped by its classes."""
    from medft.data.sources import SOURCES, parse_options

    entry = {"name": "wrist", "source": "mura", "root": "/not/there", "part": "wrist"}
    whole = SOURCES.get("mura").planned_counts(parse_options(entry))
    capped = SOURCES.get("mura").planned_counts(
        parse_options({**entry, "max_images_per_class": 50})
    )
    assert whole["train"] > 2000
    assert capped == {"train": 100, "val": 100, "test": 100}  # two classes, 50 each


def patient_folders(root, classes=("benign", "malignant"), patients=8, images=3, split=""):
    """``root/[split/]<class>/<patient>/<j>.png``: a patient's images in its own sub-folder,
    patients named by id (``b0``, ``m0``)."""
    for cls in classes:
        for k in range(patients):
            for j in range(images):
                save_image(root / split / cls / f"{cls[0]}{k}" / f"{j}.png")


def test_a_class_folders_sub_folders_are_patients_no_split_divides(tmp_path):
    patient_folders(tmp_path / "root")
    entry = {"source": "imagefolder", "root": str(tmp_path / "root")}
    rows = pd.read_parquet(prepare_dataset("x", entry, PRE, tmp_path / "out") / "manifest.parquet")
    assert rows["group"].nunique() == 16
    assert (rows.groupby("group")["split"].nunique() == 1).all()
    assert set(rows["split"]) == {"train", "val", "test"}
    assert (rows.groupby("group").size() == 3).all()
    loose = {**entry, "folder_groups": False}
    rows = pd.read_parquet(prepare_dataset("x", loose, PRE, tmp_path / "o2") / "manifest.parquet")
    assert (rows["group"] == "").all()  # each image its own: patients divided, as asked


def test_patients_numbered_within_each_class_are_asked_about_then_grouped(tmp_path):
    """benign/1 and malignant/1 look like splits holding classes 1, 2, ... until the user says
    they are patients; then benign/1 and malignant/1 are two patients."""
    for cls in ("benign", "malignant"):
        for k in range(8):
            for j in range(3):
                save_image(tmp_path / "root" / cls / str(k) / f"{j}.png")
    entry = {"source": "imagefolder", "root": str(tmp_path / "root")}
    with pytest.raises(DataError, match="set `folder_groups: true`"):
        prepare_dataset("x", entry, PRE, tmp_path / "out")
    told = {**entry, "folder_groups": True}
    rows = pd.read_parquet(prepare_dataset("x", told, PRE, tmp_path / "o2") / "manifest.parquet")
    assert rows["group"].nunique() == 16
    assert (rows.groupby("group")["split"].nunique() == 1).all()


def test_one_patient_folder_in_two_split_folders_is_named(tmp_path):
    root = tmp_path / "root"
    patient_folders(root, split="train")
    patient_folders(root, patients=3, split="test")
    with pytest.raises(DataError) as error:
        prepare_dataset("x", {"source": "imagefolder", "root": str(root)}, PRE, tmp_path / "out")
    message = str(error.value)
    assert "patient/group 'benign/b0' is in splits ['test', 'train']" in message
    assert f"test: {root}/test/benign/b0/" in message
    assert f"train: {root}/train/benign/b0/" in message
    assert "`folder_groups: false`" in message
    assert not (tmp_path / "out").exists()


def test_a_lone_wrapper_folder_is_not_a_patient(tmp_path):
    """``benign/images/*.png`` (one folder per class, as Kaggle sets ship): not two patients
    holding every image, but images of their own; ``malignant/scans/<patient>/`` below a
    wrapper: the patients."""
    for k in range(12):
        save_image(tmp_path / "root" / "benign" / "images" / f"{k}.png")
        save_image(tmp_path / "root" / "malignant" / "scans" / f"m{k // 3}" / f"{k}.png")
    entry = {"source": "imagefolder", "root": str(tmp_path / "root")}
    rows = pd.read_parquet(prepare_dataset("x", entry, PRE, tmp_path / "out") / "manifest.parquet")
    groups = rows.groupby(rows["id"].str.contains("benign"))["group"]
    assert set(groups.get_group(True)) == {""}
    assert sorted(set(groups.get_group(False))) == [f"malignant/scans/m{k}" for k in range(4)]
    assert set(rows["split"]) == {"train", "val", "test"}


def test_a_patient_column_left_unset_is_named(tmp_path, caplog):
    table = make_table(tmp_path, table_rows())
    prepare(tmp_path, table=str(table), label_column="diagnosis")
    assert "column 'patient' looks like a patient id (12 values for 24 rows)" in caplog.text
    assert "set `group_column: patient`" in caplog.text
    caplog.clear()
    prepare_dataset(
        "mine",
        {
            "source": "table",
            "image_root": str(tmp_path / "images"),
            "table": str(table),
            "label_column": "diagnosis",
            "group_column": "patient",
        },
        PRE,
        tmp_path / "o2",
    )
    assert "looks like a patient id" not in caplog.text


@pytest.mark.parametrize(("mode", "channels"), [("P", 1), ("LA", 1), ("RGB-P", 3)])
def test_palette_images_prepare_grey_where_their_palette_is_grey(tmp_path, mode, channels):
    """Some tools save grey images with a palette of greys: such a folder is a grey dataset.
    Before, the header check called it grey and the pixels came out RGB, so its first image
    stopped as "a colour image in a set whose first image is grey"."""
    for cls in ("a", "b"):
        for k in range(6):
            grey = marked_image("L", (20, 24), 40 * k, f"{cls}{k}")
            image = (
                Image.merge("RGB", (grey, grey.point(lambda v: 255 - v), grey)).convert("P")
                if mode == "RGB-P"
                else grey.convert(mode)
            )
            path = tmp_path / "root" / cls / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
    entry = {"name": "pal", "source": "imagefolder", "root": str(tmp_path / "root")}
    meta = read_meta(prepare_dataset("pal", entry, PRE, tmp_path / "out"))
    assert meta.channels == channels


def test_a_folder_unzipped_from_macos_keeps_its_classes_and_images_only(tmp_path):
    """A macOS zip unpacks `__MACOSX/` beside the classes and `._name.png` beside each image
    (resource forks named like images); Jupyter leaves `.ipynb_checkpoints/`. None is a class
    or an image: before, `__MACOSX` stopped the folder as a class of 0 images."""
    root = tmp_path / "root"
    for cls in ("a", "b"):
        for k in range(6):
            save_image(root / cls / f"{k}.png", value=20 * k + (cls == "b"))
            fork = b"\x00\x05\x16\x07Mac OS X resource fork"
            (root / cls / f"._{k}.png").write_bytes(fork)
            (root / "__MACOSX" / cls).mkdir(parents=True, exist_ok=True)
            (root / "__MACOSX" / cls / f"._{k}.png").write_bytes(fork)
        save_image(root / cls / ".ipynb_checkpoints" / "0-checkpoint.png", value=250)
    entry = {"name": "mac", "source": "imagefolder", "root": str(root)}
    meta = read_meta(prepare_dataset("mac", entry, PRE, tmp_path / "out"))
    assert meta.classes == ["a", "b"]
    assert sum(meta.split_counts.values()) == 12


def test_a_spreadsheets_paths_read_with_backslashes_and_stray_spaces(tmp_path):
    rows = [{**row, "path": f"sub/{row['path']}"} for row in table_rows()]
    table = make_table(tmp_path, rows)
    table.write_text(table.read_text().replace("sub/", "sub\\").replace(".png,", ".png ,"))
    meta = read_meta(prepare(tmp_path, table=str(table), label_column="diagnosis"))
    assert sum(meta.split_counts.values()) == 24


def test_a_photo_is_read_as_a_viewer_shows_it_with_its_exif_orientation(tmp_path):
    """A camera held sideways stores the pixels unturned and an EXIF Orientation (6: turn 90°
    clockwise) that viewers apply; Pillow does not, so medft read such photos sideways."""
    from medft.data.readers import FileReader

    pixels = np.zeros((20, 40), np.uint8)
    pixels[:, :10] = 255  # the stored image's left band: the top band once turned
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    shown, raw = FileReader(None)(str(tmp_path / "photo.jpg"), -1, "row 2")
    assert shown.size == (20, 40) and raw.startswith("20×40")
    turned = np.asarray(shown)
    assert turned[:10].mean() > 200 and turned[-10:].mean() < 50
