"""Each data source on a tiny fixture that copies the real raw layout; nothing downloaded."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from imagefiles import marked_image
from medft.data.preprocess import Preprocess
from medft.data.records import DataError
from medft.data.shards import ShardDataset, read_meta
from medft.data.sources import SOURCES, prepare_dataset

PRE = Preprocess(16, 16)


def save_image(path, value=128, mode="L", size=(24, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    marked_image(mode, size, value if mode == "L" else (value, 0, 0), str(path)).save(path)


def manifest(out):
    return pd.read_parquet(out / "manifest.parquet")


def test_every_source_is_registered():
    assert set(SOURCES.names()) == {
        "synthetic",
        "medmnist",
        "imagefolder",
        "table",
        "chexpert",
        "mura",
        "t1w_mri",
        "bach",
        "isic2020",
        "cholect50",
    }


def chexpert_fixture(tmp_path):
    root = tmp_path / "CheXpert-v1.0-small"
    header = [
        "Path",
        "Sex",
        "Age",
        "Frontal/Lateral",
        "AP/PA",
        "No Finding",
        "Enlarged Cardiomediastinum",
        "Cardiomegaly",
        "Lung Opacity",
        "Lung Lesion",
        "Edema",
        "Consolidation",
        "Pneumonia",
        "Atelectasis",
        "Pneumothorax",
        "Pleural Effusion",
        "Pleural Other",
        "Fracture",
        "Support Devices",
    ]

    def row(split, patient, study, view, frontal, **labels):
        path = (
            f"CheXpert-v1.0-small/{split}/patient{patient:05d}/study{study}/view{view}_"
            f"{'frontal' if frontal else 'lateral'}.jpg"
        )
        save_image(tmp_path / path)
        values = {h: "" for h in header}
        values.update(
            Path=path,
            Sex="Female",
            Age="60",
            **{"Frontal/Lateral": "Frontal" if frontal else "Lateral"},
        )
        values.update({k.replace("_", " "): v for k, v in labels.items()})
        return values

    train = [
        row("train", 1, 1, 1, False, Edema="1.0"),
        row("train", 1, 1, 2, True, Edema="-1.0", Cardiomegaly="-1.0"),
        row("train", 2, 1, 1, True, Atelectasis="-1.0", Pleural_Effusion="1.0"),
    ]
    train += [row("train", p, 1, 1, True, Consolidation="1.0") for p in range(3, 12)]
    train.append(row("train", 12, 1, 1, True, Atelectasis="1.0", Edema="1.0"))
    # Every label positive somewhere in training, wherever the validation carve falls.
    every_label = dict.fromkeys(CHEXPERT_LABELS_ARGS, "1.0")
    train += [row("train", p, 1, 1, True, **every_label) for p in range(13, 17)]
    valid = [
        row("valid", 64541, 1, 1, True, Cardiomegaly="1.0", Edema="0.0"),
        row("valid", 64541, 1, 2, False),
        row("valid", 64542, 1, 1, True),
    ]
    pd.DataFrame(train, columns=header).to_csv(root / "train.csv", index=False)
    pd.DataFrame(valid, columns=header).to_csv(root / "valid.csv", index=False)
    return root


CHEXPERT_LABELS_ARGS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural_Effusion"]


def test_chexpert_uncertainty_policy_and_one_image_per_patient(tmp_path):
    root = chexpert_fixture(tmp_path)
    out = prepare_dataset(
        "chexpert", {"source": "chexpert", "root": str(root)}, PRE, tmp_path / "out"
    )
    rows = manifest(out).set_index("id")
    meta = read_meta(out)
    assert meta.classes == [
        "Atelectasis",
        "Cardiomegaly",
        "Consolidation",
        "Edema",
        "Pleural Effusion",
    ]
    assert meta.split_counts["test"] == 2  # the two validation patients, one image each
    assert meta.split_counts["train"] + meta.split_counts["val"] == 16
    first = rows.loc[[i for i in rows.index if "patient00001" in i]]
    assert len(first) == 1 and first.index[0].endswith("view2_frontal.jpg")  # frontal preferred
    # Edema -1 → 1 (U-Ones); Cardiomegaly -1 → 0 (U-Zeros)
    assert first.iloc[0]["labels"].tolist() == [0, 0, 0, 1, 0]
    second = rows.loc[[i for i in rows.index if "patient00002" in i]].iloc[0]
    assert second["labels"].tolist() == [1, 0, 0, 0, 1]  # Atelectasis -1 → 1
    assert set(rows[rows["split"] == "val"]["group"]).isdisjoint(
        rows[rows["split"] == "train"]["group"]
    )


def test_chexpert_policy_is_configurable(tmp_path):
    root = chexpert_fixture(tmp_path)
    out = prepare_dataset(
        "c",
        {"source": "chexpert", "root": str(root), "uncertain": {"Edema": 0}},
        PRE,
        tmp_path / "out",
    )
    rows = manifest(out)
    first = rows[rows["id"].str.contains("patient00001")].iloc[0]
    assert first["labels"].tolist() == [0, 0, 0, 0, 0]


def test_gated_dataset_missing_says_what_to_download(tmp_path):
    with pytest.raises(DataError, match=r"train.csv not found.*request it at https://stanford"):
        prepare_dataset(
            "c", {"source": "chexpert", "root": str(tmp_path / "nothing")}, PRE, tmp_path / "out"
        )
    with pytest.raises(DataError, match="CholecT50 needs a signed data-use agreement"):
        prepare_dataset("c", {"source": "cholect50", "root": str(tmp_path)}, PRE, tmp_path / "o")
    assert not (tmp_path / "out").exists()


def test_mura_labels_from_study_folders_and_official_split(tmp_path):
    root = tmp_path / "MURA-v1.1"
    lines = {"train": [], "valid": []}
    for split, part, patient, study, label, images in [
        ("train", "XR_SHOULDER", 1, 1, "positive", 2),
        ("train", "XR_SHOULDER", 2, 1, "negative", 1),
        ("train", "XR_SHOULDER", 3, 1, "negative", 1),
        ("train", "XR_SHOULDER", 4, 1, "positive", 1),
        ("train", "XR_WRIST", 5, 1, "positive", 1),
        # Patients with a normal and an abnormal study: the carved val split holds both classes.
        *[
            ("train", "XR_SHOULDER", p, s, label, 1)
            for p in range(11, 15)
            for s, label in ((1, "negative"), (2, "positive"))
        ],
        ("valid", "XR_SHOULDER", 9, 1, "negative", 2),
        ("valid", "XR_SHOULDER", 10, 2, "positive", 1),
    ]:
        for k in range(1, images + 1):
            rel = f"MURA-v1.1/{split}/{part}/patient{patient:05d}/study{study}_{label}/image{k}.png"
            save_image(tmp_path / rel)
            lines[split].append(rel)
    for split, paths in lines.items():
        (root / f"{split}_image_paths.csv").write_text("\n".join(paths) + "\n")
    out = prepare_dataset(
        "mura-shoulder",
        {"source": "mura", "root": str(root), "part": "shoulder"},
        PRE,
        tmp_path / "out",
    )
    rows = manifest(out)
    assert len(rows) == 16 and not rows["id"].str.contains("XR_WRIST").any()
    assert (rows["split"] == "test").sum() == 3
    positive = rows["id"].str.contains("_positive")
    assert (rows.loc[positive, "label"] == 1).all() and (rows.loc[~positive, "label"] == 0).all()
    per_study = prepare_dataset(
        "m",
        {"source": "mura", "root": str(root), "part": "shoulder", "one_image_per_study": True},
        PRE,
        tmp_path / "out2",
    )
    assert len(manifest(per_study)) == 14


def write_mat(path, label, pid, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        group = f.create_group("cjdata")
        group["label"] = np.array([[float(label)]])
        group["PID"] = np.array([[ord(c)] for c in pid], dtype=np.uint16)
        group["image"] = image.T.astype(np.int16)
        group["tumorMask"] = np.zeros(image.shape[::-1], np.uint8)


def test_t1w_mri_reads_v73_mat_files_and_splits_by_patient(tmp_path):
    rng = np.random.default_rng(0)
    for n in range(1, 21):
        write_mat(
            tmp_path / "mri" / f"{n}.mat",
            label=1 + n % 3,
            pid=f"{100 + n % 7}",
            image=rng.integers(0, 900, (30, 40)),
        )
    out = prepare_dataset(
        "t1w",
        {"source": "t1w_mri", "root": str(tmp_path / "mri"), "download": False},
        PRE,
        tmp_path / "out",
    )
    rows = manifest(out)
    assert len(rows) == 20 and read_meta(out).classes == ["meningioma", "glioma", "pituitary"]
    assert rows.set_index("id").loc[str(tmp_path / "mri" / "4.mat"), "label"] == 1  # 1 + 4 % 3 = 2
    by_patient = rows.groupby("group")["split"].nunique()
    assert (by_patient == 1).all() and (rows["split"] == "test").any()
    image = ShardDataset(out, "train", mean=(0, 0, 0), std=(1, 1, 1)).images(np.array([0]))
    assert 0.4 < image.mean() < 0.6  # int16 intensities 0..900 stretched to 0..255


def test_bach_stratified_split(tmp_path):
    photos = tmp_path / "ICIAR2018_BACH_Challenge" / "Photos"
    for cls in ["Normal", "Benign", "InSitu", "Invasive"]:
        for k in range(5):
            save_image(photos / cls / f"{cls.lower()}{k:03d}.tif", mode="RGB", value=40 * k)
    out = prepare_dataset(
        "bach",
        {
            "source": "bach",
            "root": str(tmp_path),
            "download": False,
            "test_size": 4,
            "val_fraction": 0.25,
        },
        PRE,
        tmp_path / "out",
    )
    rows = manifest(out)
    assert read_meta(out).channels == 3
    assert rows[rows["split"] == "test"]["label"].value_counts().tolist() == [1, 1, 1, 1]


def test_isic_2020_drops_listed_duplicates_and_splits_by_patient(tmp_path):
    names = [f"ISIC_{i:07d}" for i in range(12)]
    pd.DataFrame(
        {
            "image_name": names,
            "patient_id": [f"IP_{i // 2}" for i in range(12)],
            "lesion_id": "x",
            "sex": "male",
            "age_approx": 50,
            "anatom_site_general_challenge": "torso",
            "diagnosis": "nevus",
            "benign_malignant": "benign",
            "target": [1, 0] * 6,
        }
    ).to_csv(tmp_path / "ISIC_2020_Training_GroundTruth_v2.csv", index=False)
    pd.DataFrame({"image_name_1": [names[0]], "image_name_2": [names[1]]}).to_csv(
        tmp_path / "ISIC_2020_Training_Duplicates.csv", index=False
    )
    for name in names:
        save_image(tmp_path / "train" / f"{name}.jpg", mode="RGB")
    out = prepare_dataset(
        "isic",
        {"source": "isic2020", "root": str(tmp_path), "download": False},
        PRE,
        tmp_path / "out",
    )
    rows = manifest(out)
    assert len(rows) == 11 and not rows["id"].str.contains(names[1]).any()
    assert (rows.groupby("group")["split"].nunique() == 1).all()


def test_cholect50_instrument_presence_sampled_and_split_by_video(tmp_path):
    for video in (1, 6, 8):
        annotations = {}
        for frame in range(25):
            instances = [[17, 2, 1, 0.1, 0.1, 0.2, 0.2, 2, 0, 1, -1, -1, -1, -1, 1]]
            if frame == 10:
                instances = [
                    [0, i, 1, 0.3, 0.3, 0.1, 0.1, 1, 0, 1, -1, -1, -1, -1, 1] for i in range(6)
                ]
            if frame == 20:
                instances = [[-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1]]
            annotations[str(frame)] = instances
            save_image(tmp_path / "videos" / f"VID{video:02d}" / f"{frame:06d}.png", mode="RGB")
        (tmp_path / "labels").mkdir(exist_ok=True)
        (tmp_path / "labels" / f"VID{video:02d}.json").write_text(
            json.dumps(
                {
                    "video": video,
                    "fps": 1,
                    "num_frames": 25,
                    "categories": {},
                    "annotations": annotations,
                }
            )
        )
    out = prepare_dataset(
        "cholect50", {"source": "cholect50", "root": str(tmp_path)}, PRE, tmp_path / "out"
    )
    rows = manifest(out)
    assert len(rows) == 9  # frames 0, 10, 20 of three videos: 6 per minute at 1 fps
    assert dict(rows.groupby("group")["split"].first()) == {
        "VID01": "train",
        "VID06": "test",
        "VID08": "val",
    }
    labels = rows.set_index("id")["labels"]
    frame0 = labels[str(tmp_path / "videos" / "VID01" / "000000.png")]
    frame10 = labels[str(tmp_path / "videos" / "VID01" / "000010.png")]
    frame20 = labels[str(tmp_path / "videos" / "VID01" / "000020.png")]
    assert frame0.tolist() == [0, 0, 1, 0, 0, 0] and frame20.tolist() == [0] * 6
    assert frame10.tolist() == [1] * 6
    assert read_meta(out).classes == [
        "grasper",
        "bipolar",
        "hook",
        "scissors",
        "clipper",
        "irrigator",
    ]


def test_fetch_checks_the_md5_and_leaves_nothing_half_written(tmp_path):
    import hashlib

    from medft.data.download import fetch

    payload = b"raw medical data" * 1000
    (tmp_path / "host.bin").write_bytes(payload)
    url = (tmp_path / "host.bin").as_uri()
    dest = tmp_path / "raw" / "data.bin"

    with pytest.raises(OSError, match="does not match the published 0+"):
        fetch(url, dest, md5="0" * 32)
    assert list((tmp_path / "raw").iterdir()) == []  # neither the file nor a .partial

    good = hashlib.md5(payload).hexdigest()
    assert fetch(url, dest, md5=good).read_bytes() == payload
    (tmp_path / "host.bin").unlink()  # a file that is already there and matches is kept
    assert fetch(url, dest, md5=good) == dest
