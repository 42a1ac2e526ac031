"""Sizes and modes that go with a class (medft.data.shortcuts), as the data card and the
preparation's warning report them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from medft.data.card import data_card
from medft.data.preprocess import Preprocess
from medft.data.shortcuts import kinds_by_class, kinds_by_label, shortcuts
from medft.data.sources import prepare_dataset

CLASSES = ["benign", "malignant"]


def test_a_kind_found_in_one_class_only_is_named_and_a_kind_spread_like_the_rest_is_not():
    # 200 images, half malignant; 12 of the malignant come from another scanner (another
    # size), and 20 images of both classes alike are grey scale.
    raw = ["512×512 RGB"] * 168 + ["600×450 RGB"] * 12 + ["512×512 L"] * 20
    labels = [0] * 84 + [1] * 84 + [1] * 12 + [0, 1] * 10
    table = kinds_by_class(pd.Series(raw), pd.Series(labels), CLASSES)
    assert shortcuts(table) == ["600×450 RGB"]
    row = table.set_index("kind").loc["600×450 RGB"]
    assert row["images"] == 12 and row["by class"] == "malignant 12"
    grey = table.set_index("kind").loc["512×512 L", "unlike the rest (Holm p)"]
    assert grey.startswith("no (") and float(grey[4:-1]) > 0.5


def test_one_patient_scanned_elsewhere_is_one_unit_not_twenty_images():
    """A patient's images share a scanner and a diagnosis: twenty images of one malignant
    patient from another scanner are one patient, no evidence of a cue; counted image by image
    they would be. Ten such patients, all malignant, are."""
    raw = ["512×512 L"] * 200 + ["600×450 L"] * 20
    labels = [0, 1] * 100 + [1] * 20
    groups = [f"p{i % 100}" for i in range(200)] + ["scanned elsewhere"] * 20  # 2 images each
    by_image = kinds_by_class(pd.Series(raw), pd.Series(labels), CLASSES)
    by_patient = kinds_by_class(pd.Series(raw), pd.Series(labels), CLASSES, pd.Series(groups))
    assert shortcuts(by_image) == ["600×450 L"] and shortcuts(by_patient) == []
    assert by_patient.set_index("kind").loc["600×450 L", ["images", "patients"]].tolist() == [20, 1]
    ten = [f"elsewhere {i // 2}" for i in range(20)]
    by_patient = kinds_by_class(
        pd.Series(raw), pd.Series(labels), CLASSES, pd.Series(groups[:200] + ten)
    )
    assert shortcuts(by_patient) == ["600×450 L"]


def test_one_kind_is_not_tested_and_rare_kinds_are_counted_together():
    table = kinds_by_class(pd.Series(["28×28 L"] * 30), pd.Series([0, 1] * 15), CLASSES)
    assert table["unlike the rest (Holm p)"].tolist() == ["the reference (most common)"]
    assert not shortcuts(table)
    raw = [f"{100 + k}×100 L" for k in range(14) for _ in range(3)]
    table = kinds_by_class(pd.Series(raw), pd.Series([0, 1, 0] * 14), CLASSES)
    assert len(table) == 11 and table["kind"].iloc[-1] == "4 other kinds"
    assert table["images"].iloc[-1] == 12 and table.iloc[-1, -1] == "not tested"


def test_preparing_a_folder_whose_malignant_images_are_larger_warns_and_the_card_says_so(
    tmp_path, caplog
):
    rng = np.random.default_rng(0)
    for i in range(60):
        label = CLASSES[i % 2]
        size = 80 if label == "malignant" and i < 30 else 64
        pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
        folder = tmp_path / "raw" / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).resize((size, size)).save(folder / f"{i}.png")
    options = {"source": "imagefolder", "root": str(tmp_path / "raw")}
    with caplog.at_level("WARNING", logger="medft.data.shortcuts"):
        out = prepare_dataset("lesions", options, Preprocess(32, 32), tmp_path / "out")
    assert "'80×80 L': 15 images, malignant 15" in caplog.text
    section = dict(data_card(out).sections)[
        "Size and mode by class (a cue a model could learn instead of the finding)"
    ]
    assert shortcuts(section) == ["80×80 L"]


def test_a_multi_label_set_names_the_labels_a_kind_has_more_or_fewer_of():
    """Portable (AP) chest films go with support devices and lines, as in CheXpert: per label a
    test of its own, Holm over kinds and labels; a label spread alike is not named."""
    rng = np.random.default_rng(0)
    portable = np.r_[np.zeros(400, bool), np.ones(100, bool)]
    raw = pd.Series(np.where(portable, "2500×2048 L", "2828×2320 L"))
    positives = pd.DataFrame(
        {
            "Support Devices": rng.random(500) < np.where(portable, 0.8, 0.2),
            "Edema": rng.random(500) < 0.3,
        }
    ).astype(int)
    table = kinds_by_label(raw, positives)
    assert shortcuts(table) == ["2500×2048 L"]
    found = table.set_index("kind").loc["2500×2048 L", "labels unlike the rest (Holm p)"]
    assert found.startswith("Support Devices more (") and "Edema" not in found
    assert table.iloc[0, -1] == "the reference (most common)"
