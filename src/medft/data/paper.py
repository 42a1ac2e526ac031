"""The paper's eight tasks (its Table 2): raw layouts → records → prepared datasets.

Each parser reads the layout the data provider ships (folder names, CSV columns, ``.mat``
structure) from ``options.root``. Data behind a signed agreement (CheXpert, MURA, CholecT50)
cannot be downloaded for the user: a missing file fails with what to download, from where, and
where to put it. BACH (Zenodo) and the T1w MRI set (figshare) are downloaded with the host's
MD5; ISIC 2020's host publishes no checksum, so its files are checked for their expected names
and columns after download. docs/data.md lists the split each parser makes beside Table 2.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

# scikit-learn is imported inside the parsers: the planner reads TABLE2 without it.
import numpy as np
import pandas as pd

from medft.data.download import fetch, figshare_files, zenodo_files
from medft.data.options import (
    BachOptions,
    ChexpertOptions,
    Cholect50Options,
    Isic2020Options,
    MuraOptions,
    T1wMriOptions,
)
from medft.errors import DataError

CHEXPERT_LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
# U-Ones for Atelectasis and Edema, U-Zeros for the rest (Irvin et al. 2019's best policies).
CHEXPERT_UNCERTAIN = {
    "Atelectasis": 1,
    "Cardiomegaly": 0,
    "Consolidation": 0,
    "Edema": 1,
    "Pleural Effusion": 0,
}
CHOLECT50_INSTRUMENTS = ["grasper", "bipolar", "hook", "scissors", "clipper", "irrigator"]
# Nwoye & Padoy 2022, the "cholect50" split: evaluation and validation videos.
CHOLECT50_TEST = [6, 51, 10, 73, 14, 74, 32, 80, 42, 111]
CHOLECT50_VAL = [8, 12, 29, 50, 78]
BACH_CLASSES = ["Normal", "Benign", "InSitu", "Invasive"]
T1W_CLASSES = ["meningioma", "glioma", "pituitary"]
# The paper's Table 2: (training, evaluation) images per task; keys are source[-part].
TABLE2 = {
    "chexpert": (64540, 200),
    "mura-shoulder": (2694, 173),
    "mura-wrist": (3267, 207),
    "mura-humerus": (587, 132),
    "t1w_mri": (2522, 542),
    "bach": (360, 40),
    "isic2020": (26160, 6541),
    "cholect50": (7980, 2129),
}
# Each task's labels: how many, and whether several may be present at once (what
# `max_images_per_class` caps apart, for medft plan's counts before the raw data exist).
LABELS = {
    "chexpert": (len(CHEXPERT_LABELS), True),
    "mura-shoulder": (2, False),
    "mura-wrist": (2, False),
    "mura-humerus": (2, False),
    "t1w_mri": (len(T1W_CLASSES), False),
    "bach": (len(BACH_CLASSES), False),
    "isic2020": (2, False),
    "cholect50": (len(CHOLECT50_INSTRUMENTS), True),
}
MURA_PARTS = {"shoulder": "XR_SHOULDER", "wrist": "XR_WRIST", "humerus": "XR_HUMERUS"}


def _mura_part(part: str) -> str:
    if part.lower() not in MURA_PARTS:
        raise DataError(f"MURA `part: {part}` is not one of {', '.join(MURA_PARTS)}")
    return MURA_PARTS[part.lower()]


def _require(path: Path, what: str, where_from: str) -> Path:
    if not path.exists():
        raise DataError(
            f"{path} not found. {what} needs a signed data-use agreement, so medft cannot "
            f"download it: request it at {where_from}, then unpack it so that {path} exists "
            "(or set `root:` in config.yaml to where it is)."
        )
    return path


def chexpert(options: ChexpertOptions) -> tuple[pd.DataFrame, list[str], str]:
    """CheXpert-v1.0(-small): train.csv / valid.csv with columns Path, Sex, Age, Frontal/Lateral,
    AP/PA, then the 14 observations (1 positive, 0 negative, -1 uncertain, blank unmentioned).
    Five labels; uncertain → ``uncertain`` policy (default U-Ones for Atelectasis and Edema,
    U-Zeros else), blank → 0. One image per patient (the first frontal view) in training and
    evaluation; the official validation patients are the evaluation set."""
    root = Path(options.root)
    url = "https://stanfordmlgroup.github.io/competitions/chexpert/"
    policy = {**CHEXPERT_UNCERTAIN, **options.uncertain}
    frames = []
    for csv, split in (("train.csv", ""), ("valid.csv", "test")):
        table = pd.read_csv(_require(root / csv, "CheXpert", url))
        table["split"] = split
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    table["patient"] = table["Path"].str.extract(r"(patient\d+)", expand=False)
    if options.one_image_per_patient:
        table["_lateral"] = table["Frontal/Lateral"].eq("Lateral")
        table = table.sort_values(["split", "patient", "_lateral", "Path"], kind="stable")
        table = table.drop_duplicates(["split", "patient"]).sort_index()
    labels = np.stack(
        [table[c].fillna(0).replace(-1, policy[c]).astype(int).to_numpy() for c in CHEXPERT_LABELS],
        axis=1,
    )
    # Paths in the CSVs start with the dataset folder name (e.g. CheXpert-v1.0-small/train/...).
    records = pd.DataFrame(
        {
            "path": [str(root.parent / p) for p in table["Path"]],
            "labels": list(labels),
            "group": table["patient"].to_numpy(),
            "split": table["split"].to_numpy(),
        }
    )
    return records, CHEXPERT_LABELS, "multilabel"


def mura(options: MuraOptions) -> tuple[pd.DataFrame, list[str], str]:
    """MURA-v1.1: {train,valid}_image_paths.csv (no header) list
    ``MURA-v1.1/{split}/XR_<PART>/patient<id>/study<n>_<positive|negative>/image<k>.png``; the
    label comes from the study folder name. Official train/valid split (valid = evaluation)."""
    root = Path(options.root)
    part = _mura_part(options.part)
    rows = []
    for csv, split in (("train_image_paths.csv", ""), ("valid_image_paths.csv", "test")):
        listed = pd.read_csv(
            _require(root / csv, "MURA", "https://stanfordmlgroup.github.io/competitions/mura/"),
            header=None,
        )[0]
        for relative in listed[listed.str.contains(f"/{part}/")]:
            parts = Path(relative).parts
            study = parts[-2]
            rows.append(
                {
                    "path": str(root.parent / relative),
                    "label": int(study.endswith("_positive")),
                    "group": parts[-3],
                    "study": f"{parts[-3]}/{study}",
                    "split": split,
                }
            )
    records = pd.DataFrame(rows)
    if options.one_image_per_study:
        records = records.drop_duplicates(["split", "study"])
    return records.drop(columns="study"), ["normal", "abnormal"], "binary"


def _unzip_all(folder: Path) -> None:
    for archive in sorted(folder.glob("*.zip")):
        done = folder / f".{archive.name}.unpacked"
        if not done.exists():
            with zipfile.ZipFile(archive) as z:
                z.extractall(folder)
            done.touch()


def _read_mat_v73(path: Path) -> dict:
    """The figshare brain-tumour files are MATLAB v7.3 (HDF5): struct ``cjdata`` with label,
    PID (uint16 character codes), image (int16, stored transposed), tumorBorder, tumorMask."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            data = f["cjdata"]
            return {
                "label": int(np.asarray(data["label"]).ravel()[0]),
                "pid": "".join(map(chr, np.asarray(data["PID"]).ravel())),
                "image": np.asarray(data["image"]).T,
            }
    except (OSError, KeyError) as error:
        raise DataError(
            f"{path}: not a brain-tumour .mat file with struct cjdata ({error}); re-download it"
        ) from None


def t1w_mri(options: T1wMriOptions) -> tuple[pd.DataFrame, list[str], str]:
    """Cheng et al.'s T1w CE-MRI brain tumours (figshare article 1512427): 3064 ``<n>.mat``
    files, labels 1 meningioma, 2 glioma, 3 pituitary. Patient-wise evaluation split of
    542/3064 images (``test_fraction``), or fold ``eval_fold`` of the shipped ``cvind.mat``."""
    from sklearn.model_selection import GroupShuffleSplit

    root = Path(options.root)
    if not any(root.glob("*.mat")) and options.download:
        for name, (url, md5) in figshare_files(1512427).items():
            fetch(url, root / name, md5)
        _unzip_all(root)
    files = sorted((p for p in root.rglob("*.mat") if p.stem.isdigit()), key=lambda p: int(p.stem))
    if not files:
        raise DataError(
            f"{root}: no <n>.mat files; download figshare article 1512427 and unzip "
            "its four brainTumorDataPublic_*.zip there"
        )
    rows = []
    for path in files:
        mat = _read_mat_v73(path)
        rows.append(
            {"path": str(path), "label": mat["label"] - 1, "group": mat["pid"], "split": ""}
        )
    records = pd.DataFrame(rows)
    splitter = GroupShuffleSplit(
        n_splits=1, test_size=options.test_fraction, random_state=options.split_seed
    )
    _, test = next(splitter.split(records, groups=records["group"]))
    records.loc[test, "split"] = "test"
    return records, T1W_CLASSES, "multiclass"


def read_t1w(path: str, where: str):
    """The ``read`` hook for ``write_records``: the MRI slice as an image array."""
    return _read_mat_v73(Path(path))["image"]


def bach(options: BachOptions) -> tuple[pd.DataFrame, list[str], str]:
    """BACH (ICIAR 2018) microscopy: ``ICIAR2018_BACH_Challenge/Photos/<Class>/*.tif``, 100 per
    class; 360/40 stratified split (``split_seed``). Downloaded from Zenodo record 3632035."""
    from sklearn.model_selection import train_test_split

    root = Path(options.root)
    photos = root / "ICIAR2018_BACH_Challenge" / "Photos"
    if not photos.exists() and options.download:
        for name, (url, md5) in zenodo_files(3632035).items():
            if name.endswith(".zip"):
                fetch(url, root / name, md5)
        _unzip_all(root)
    if not photos.exists():
        raise DataError(
            f"{photos} not found; download ICIAR2018_BACH_Challenge.zip from "
            "https://zenodo.org/records/3632035 and unzip it into {root}"
        )
    rows = [
        {"path": str(p), "label": i, "split": ""}
        for i, cls in enumerate(BACH_CLASSES)
        for p in sorted((photos / cls).glob("*.tif"))
    ]
    records = pd.DataFrame(rows)
    _, test = train_test_split(
        records.index,
        test_size=options.test_size,
        stratify=records["label"],
        random_state=options.split_seed,
    )
    records.loc[test, "split"] = "test"
    return records, BACH_CLASSES, "multiclass"


ISIC_URL = "https://isic-challenge-data.s3.amazonaws.com/2020/"
ISIC_FILES = ("ISIC_2020_Training_GroundTruth_v2.csv", "ISIC_2020_Training_Duplicates.csv")


def isic2020(options: Isic2020Options) -> tuple[pd.DataFrame, list[str], str]:
    """ISIC 2020: ``ISIC_2020_Training_GroundTruth_v2.csv`` (image_name, patient_id, lesion_id,
    sex, age_approx, anatom_site_general_challenge, diagnosis, benign_malignant, target),
    ``ISIC_2020_Training_Duplicates.csv`` (image_name_1, image_name_2; the second of each pair is
    dropped) and ``train/<image_name>.jpg``. Evaluation: 20 % of patients."""
    from sklearn.model_selection import GroupShuffleSplit

    root = Path(options.root)
    if options.download:
        for name in ISIC_FILES:
            fetch(ISIC_URL + name, root / name)
        if not (root / "train").exists():
            fetch(ISIC_URL + "ISIC_2020_Training_JPEG.zip", root / "ISIC_2020_Training_JPEG.zip")
            _unzip_all(root)
    truth = pd.read_csv(root / ISIC_FILES[0])
    duplicates = pd.read_csv(root / ISIC_FILES[1])
    for table, columns, name in (
        (truth, {"image_name", "patient_id", "target"}, ISIC_FILES[0]),
        (duplicates, {"image_name_2"}, ISIC_FILES[1]),
    ):
        if not columns <= set(table.columns):
            raise DataError(
                f"{root / name}: expected columns {sorted(columns)}, found "
                f"{list(table.columns)}; re-download it"
            )
    truth = truth[~truth["image_name"].isin(duplicates["image_name_2"])].reset_index(drop=True)
    records = pd.DataFrame(
        {
            "path": [str(root / "train" / f"{n}.jpg") for n in truth["image_name"]],
            "label": truth["target"].astype(int),
            "group": truth["patient_id"],
            "split": "",
        }
    )
    splitter = GroupShuffleSplit(
        n_splits=1,
        test_size=options.test_fraction,
        random_state=options.split_seed,
    )
    _, test = next(splitter.split(records, groups=records["group"]))
    records.loc[test, "split"] = "test"
    return records, ["benign", "malignant"], "binary"


def cholect50(options: Cholect50Options) -> tuple[pd.DataFrame, list[str], str]:
    """CholecT50: ``videos/VIDnn/<frame:06d>.png`` at 1 fps and ``labels/VIDnn.json`` whose
    ``annotations`` map frame id → triplet instances (15 values; index 1 = instrument id, -1 for
    none). Six instrument-presence labels; every ``stride``-th frame (10: 6 per minute); split
    by video (Nwoye & Padoy 2022: 10 evaluation videos, 5 validation videos)."""
    root = Path(options.root)
    labels_dir = _require(
        root / "labels", "CholecT50", "https://github.com/CAMMA-public/cholect50 (request form)"
    )
    stride = options.stride
    test, val = (
        set(CHOLECT50_TEST if options.test_videos is None else options.test_videos),
        set(CHOLECT50_VAL if options.val_videos is None else options.val_videos),
    )
    rows = []
    for label_file in sorted(labels_dir.glob("VID*.json")):
        video = int(label_file.stem[3:])
        annotations = json.loads(label_file.read_text())["annotations"]
        split = "test" if video in test else "val" if video in val else "train"
        for frame in sorted(map(int, annotations))[::stride]:
            present = np.zeros(len(CHOLECT50_INSTRUMENTS), dtype=int)
            for instance in annotations[str(frame)]:
                if 0 <= instance[1] < len(present):
                    present[int(instance[1])] = 1
            rows.append(
                {
                    "path": str(root / "videos" / label_file.stem / f"{frame:06d}.png"),
                    "labels": present,
                    "group": label_file.stem,
                    "split": split,
                }
            )
    return pd.DataFrame(rows), CHOLECT50_INSTRUMENTS, "multilabel"
