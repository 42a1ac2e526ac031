"""Images shared between splits are leakage: refused by default, dropped from evaluation on
request, and recorded (medft.data.duplicates)."""

import json
import shutil

import pandas as pd
import pytest

from imagefiles import marked_image
from medft.data.near_duplicates import THRESHOLD
from medft.data.preprocess import Preprocess
from medft.data.records import DataError
from medft.data.shards import read_meta
from medft.data.sources import prepare_dataset

PRE = Preprocess(16, 16)
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def kaggle_layout(root, shared: dict[str, int]):
    """Brain-tumour MRI as Kaggle ships it: Training/ and Testing/, 4 classes; ``shared``
    test images per class are byte copies of training images."""
    for cls in CLASSES:
        for k in range(12):
            path = root / "Training" / cls / f"Tr-{cls}-{k}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            marked_image("L", (24, 24), 60, str(path)).save(path, format="PNG")
        for k in range(5):
            path = root / "Testing" / cls / f"Te-{cls}-{k}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            if k < shared.get(cls, 0):
                shutil.copy(root / "Training" / cls / f"Tr-{cls}-{k}.jpg", path)
            else:
                marked_image("L", (24, 24), 60, str(path)).save(path, format="PNG")


def prepare(tmp_path, **options):
    return prepare_dataset(
        "brain",
        {"source": "imagefolder", "root": str(tmp_path / "raw"), **options},
        PRE,
        tmp_path / "out",
    )


def test_images_shared_between_training_and_testing_stop_preparation_naming_them(tmp_path):
    kaggle_layout(tmp_path / "raw", {"meningioma": 3, "notumor": 2})
    with pytest.raises(DataError) as caught:
        prepare(tmp_path)
    message = str(caught.value)
    assert "5 evaluation image(s) have the same pixels" in message
    assert "Te-meningioma-0.jpg" in message and "Tr-meningioma-0.jpg" in message
    assert "duplicates: drop_from_eval" in message
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_drop_from_eval_removes_exactly_the_shared_test_images_and_lists_them(tmp_path):
    kaggle_layout(tmp_path / "raw", {"meningioma": 3, "notumor": 2})
    out = prepare(tmp_path, duplicates="drop_from_eval")
    rows = pd.read_parquet(out / "manifest.parquet")
    test = rows[rows["split"] == "test"]
    assert len(test) == 4 * 5 - 5
    dropped = {r["id"] for r in read_meta(out).duplicates["dropped"]}
    assert len(dropped) == 5 and not dropped & set(test["id"])
    assert all("Testing" in i for i in dropped)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["duplicates"]["across_splits"] == 5
    assert meta["split_counts"]["test"] == 15


def test_keep_keeps_them_counted_and_a_clean_set_reports_none(tmp_path):
    kaggle_layout(tmp_path / "raw", {"pituitary": 1})
    kept = read_meta(prepare(tmp_path, duplicates="keep")).duplicates
    assert kept["across_splits"] == 1 and kept["dropped"] == []
    clean = tmp_path / "clean"
    kaggle_layout(clean / "raw", {})
    assert read_meta(prepare(clean)).duplicates["across_splits"] == 0


def test_duplicates_within_a_split_are_counted_not_dropped(tmp_path):
    from medft.data.duplicates import resolve

    manifest = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "split": ["train", "train", "train", "test"],
            "pixel_hash": ["h1", "h1", "h2", "h3"],
        }
    )
    kept, record = resolve(manifest, "error", "toy")
    assert len(kept) == 4 and record["within_split"] == {"train": 1}


def test_carved_splits_are_checked_too(tmp_path):
    """A set without split folders is carved by medft; a copy in two classes' folders lands
    in two splits or one, and either way is caught or counted."""
    root = tmp_path / "raw"
    for cls in ("a", "b"):
        for k in range(15):
            path = root / cls / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            marked_image("L", (24, 24), 60, str(path)).save(path)
    for k in range(15):  # class b's images are class a's, byte for byte
        shutil.copy(root / "a" / f"{k}.png", root / "b" / f"{k}.png")
    with pytest.raises(DataError, match="have the same pixels"):
        prepare(tmp_path)


def test_the_option_is_validated():
    from medft.data.sources import parse_options

    with pytest.raises(DataError, match="duplicates"):
        parse_options({"name": "x", "source": "synthetic", "duplicates": "drop"})


def test_an_unknown_near_duplicates_policy_is_named_with_the_choices(tmp_path, capsys):
    """Through the CLI, as a user mistypes it: one line naming the option, the value and the
    choices; no dataset folder, whole or partial."""
    from medft.cli import main

    kaggle_layout(tmp_path / "raw", {})
    out = tmp_path / "bad"
    args = ["prepare", "imagefolder", "--root", str(tmp_path / "raw"), "--size", "16"]
    assert main([*args, "--out", str(out), "--near-duplicates", "drop"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "dataset 'bad'" in err
    assert "`near_duplicates: 'drop'` must be one of warn, error, drop_from_eval" in err
    assert not out.exists() and not (tmp_path / "bad.partial").exists()


def test_the_data_card_shows_what_went_in_and_what_was_dropped(tmp_path):
    from medft.data.card import data_card, write

    kaggle_layout(tmp_path / "raw", {"meningioma": 3, "notumor": 2})
    out = prepare(tmp_path, duplicates="drop_from_eval")
    card = data_card(out)
    sections = dict(card.sections)
    counts = sections["Images per split and class"].set_index("class")
    assert counts.loc["meningioma", "test"] == 2 and counts.loc["all images", "test"] == 15
    assert counts.loc["glioma", "train"] + counts.loc["glioma", "val"] == 12
    raw = sections["Before preprocessing (most common size and mode per split)"]
    assert raw["size and mode (images)"].str.contains("24×24 L").all()
    duplicates = sections["Duplicates"].set_index("")["value"]
    assert duplicates["policy (`duplicates`)"] == "drop_from_eval"
    assert duplicates["evaluation images equal to an earlier split's"] == "5"
    assert any("Te-meningioma-0.jpg" in key for key in duplicates.index)
    write(card, tmp_path / "data_card")
    text = (tmp_path / "data_card.md").read_text()
    assert "# Data card: brain" in text and "imagefolder" in text
    assert "<h4>Duplicates</h4>" in (tmp_path / "data_card.html").read_text()


def test_the_test_split_is_one_set_at_every_train_fraction(tmp_path):
    """Duplicates are resolved against the whole training split, before subsampling: a test
    image equal to a training image that a fraction leaves out is still dropped."""
    kaggle_layout(tmp_path / "raw", {"meningioma": 3, "notumor": 2, "glioma": 4})
    tests, trains = {}, {}
    for fraction in (1.0, 0.5, 0.1):
        out = prepare_dataset(
            "brain",
            {
                "source": "imagefolder",
                "root": str(tmp_path / "raw"),
                "duplicates": "drop_from_eval",
                "train_fraction": fraction,
            },
            PRE,
            tmp_path / f"out{fraction}",
        )
        rows = pd.read_parquet(out / "manifest.parquet")
        tests[fraction] = sorted(rows.loc[rows["split"] == "test", "id"])
        meta = read_meta(out)
        assert meta.duplicates["across_splits"] == 9
        trains[fraction] = (rows["split"] == "train").sum()
        if fraction < 1:  # the data card's count of what the fraction removed
            removed = meta.subsampled["train_fraction"]["train"]
            assert removed == trains[1.0] - trains[fraction] > 0
    assert tests[1.0] == tests[0.5] == tests[0.1]
    assert len(tests[1.0]) == 20 - 9


def test_the_data_card_says_where_each_split_came_from_and_what_left_it(tmp_path):
    from medft.data.card import data_card

    kaggle_layout(tmp_path / "raw", {"meningioma": 3})
    out = prepare(
        tmp_path,
        duplicates="drop_from_eval",
        train_fraction=0.5,
        val_fraction=0.0,
        test_fraction=0.3,
    )
    sections = dict(data_card(out).sections)
    splits = sections["Splits: where each came from and what left it"].set_index("")
    assert splits.loc["source", "test"] == "given by the source"  # Testing/, not 0.3
    assert splits.loc["removed by train_fraction", "train"] == 24  # a count, not 0.5
    assert splits.loc["dropped as duplicates", "test"] == 3
    assert splits.loc["source", "val"] == "none (val_fraction 0)"
    options = sections["What it is and how it was made"].set_index("")["value"]
    assert "test_fraction" not in options.index and options["duplicates"] == "drop_from_eval"


def textured_layout(root, copies: dict[str, callable]):
    """Two classes of distinct random textures in Training/ and Testing/; each ``copies`` entry
    writes Testing/<name>.png as a made copy of a training image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    training = []
    for split, n in (("Training", 10), ("Testing", 4)):
        for cls in ("a", "b"):
            for k in range(n):
                pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
                image = Image.fromarray(pixels).resize((48, 48), Image.Resampling.BICUBIC)
                path = root / split / cls / f"{split[:2]}-{cls}-{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path)
                if split == "Training":
                    training.append(image)
    for name, make in copies.items():
        make(training[0]).save(root / "Testing" / "a" / f"{name}.png")


def _made_copies():
    from PIL import Image, ImageOps

    def resaved(image):
        import io

        buffer = io.BytesIO()
        image.resize((52, 52)).save(buffer, format="JPEG", quality=75)
        return Image.open(io.BytesIO(buffer.getvalue()))

    def cropped(image):  # 4 px of 48 off every side: the content zoomed by 1.2
        return image.crop((4, 4, image.width - 4, image.height - 4))

    def turned(image):  # a quarter turn, as augmented collections ship
        return image.transpose(Image.Transpose.ROTATE_90)

    return {
        "resaved": resaved,
        "mirrored": ImageOps.mirror,
        "cropped": cropped,
        "turned": turned,
        "augmented": lambda image: ImageOps.mirror(cropped(image)),  # random crop, then flip
        "tilted": lambda image: _nudged(image, degrees=-8),  # a random rotation, the gap black
    }


def test_near_copies_across_splits_are_listed_by_default_and_dropped_on_request(tmp_path):
    from medft.data.card import data_card

    textured_layout(tmp_path / "raw", _made_copies())
    pre = Preprocess(32, 32)
    out = prepare_dataset(
        "tex", {"source": "imagefolder", "root": str(tmp_path / "raw")}, pre, tmp_path / "w"
    )
    pairs = read_meta(out).near_duplicates["pairs"]
    found = sorted(p["id"].rsplit("/", 1)[-1] for p in pairs)
    assert found == [
        "augmented.png",
        "cropped.png",
        "mirrored.png",
        "resaved.png",
        "tilted.png",
        "turned.png",
    ]
    assert {p["near_of"].rsplit("/", 1)[-1] for p in pairs} == {"Tr-a-0.png"}
    assert all(p["similarity"] >= THRESHOLD for p in pairs)
    how = {p["id"].rsplit("/", 1)[-1]: p["view"] for p in pairs}
    assert how["resaved.png"] == "the same picture"
    assert how["mirrored.png"] == "mirrored left-right"
    assert how["turned.png"] == "turned 90° anticlockwise"  # PIL's ROTATE_90
    assert how["cropped.png"].startswith("cropped from it (1.2")
    assert (
        how["augmented.png"] == "cropped from it (1.2× about the centre), then mirrored left-right"
    )
    assert how["tilted.png"].startswith("turned") and how["tilted.png"].endswith(" clockwise")
    rows = pd.read_parquet(out / "manifest.parquet")
    assert (rows["split"] == "test").sum() == 14  # warn: kept, and listed in the card
    card = dict(data_card(out).sections)["Near-duplicates across splits"]
    assert len(card) == 6 and set(card["how"]) == set(how.values())
    dropped = prepare_dataset(
        "tex",
        {
            "source": "imagefolder",
            "root": str(tmp_path / "raw"),
            "near_duplicates": "drop_from_eval",
        },
        pre,
        tmp_path / "d",
    )
    rows = pd.read_parquet(dropped / "manifest.parquet")
    assert (rows["split"] == "test").sum() == 8
    with pytest.raises(DataError, match="6 evaluation image.*near copies.*mirrored.png"):
        prepare_dataset(
            "tex",
            {"source": "imagefolder", "root": str(tmp_path / "raw"), "near_duplicates": "error"},
            pre,
            tmp_path / "e",
        )


def test_the_card_shows_how_close_every_evaluation_image_comes_to_an_earlier_one(tmp_path, caplog):
    """Beside the pairs, the spread of every evaluation image's closest earlier image: the six
    copies apart at the top, the distinct textures below; in HTML a histogram, in the warning
    the spread's median and 99th percentile."""
    from medft.data.card import HISTOGRAM, data_card, write

    textured_layout(tmp_path / "raw", _made_copies())
    options = {"source": "imagefolder", "root": str(tmp_path / "raw")}
    with caplog.at_level("WARNING", logger="medft.data.near_duplicates"):
        out = prepare_dataset("tex", options, Preprocess(32, 32), tmp_path / "w")
    test = read_meta(out).near_duplicates["closest"]["test"]
    assert test["images"] == 14 and sum(test["counts"]) + test["below"] == 14
    at_or_above = [
        n for low, n in zip(test["bins"], test["counts"], strict=False) if low >= THRESHOLD
    ]
    assert sum(at_or_above) == 6 and test["quantiles"]["50"] < THRESHOLD
    assert "test median" in caplog.text and "99th percentile" in caplog.text
    section = dict(data_card(out).sections)[
        "Near-duplicates: how close each evaluation image's closest earlier image is"
    ]
    row = section.set_index("split").loc["test"]
    assert row[f"r ≥ {THRESHOLD}"] == "6 (42.9%)" and row[HISTOGRAM].startswith("<img src=")
    write(data_card(out), tmp_path / "card")
    assert "data:image/png" not in (tmp_path / "card.md").read_text()
    assert (tmp_path / "card.html").read_text().count("data:image/png") >= 2 + 12  # pairs too


def _textures(n: int, seed: int) -> list:
    """``n`` distinct smooth random textures, 64 px: images of one kind that differ."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).resize(
            (64, 64), Image.Resampling.BICUBIC
        )
        for _ in range(n)
    ]


def test_a_border_crop_is_a_near_copy_whichever_split_holds_the_crop():
    """The cropped copy may be the evaluation image or the training one; distinct textures
    of the same kind stay apart."""
    import numpy as np

    from medft.data.near_duplicates import similarity, thumbnail

    pre = Preprocess(32, 32)
    images = _textures(20, seed=3)

    def thumbs(pictures):
        return [thumbnail(pre(picture)) for picture in pictures]

    originals = thumbs(images)
    every_side = thumbs([image.crop((5, 5, 59, 59)) for image in images])  # 8 % a side
    banner = thumbs([image.crop((0, 4, 64, 64)) for image in images])  # 6 % off the top
    for crops in (every_side, banner):
        for query, reference in ((crops, originals), (originals, crops)):
            close = similarity(query, reference)
            assert (np.diag(close) >= THRESHOLD).all()
            assert (close[~np.eye(len(images), dtype=bool)] < THRESHOLD).all()


def test_a_copy_whose_tones_were_remapped_is_a_near_copy_and_named_so(monkeypatch):
    """A copy whose tones went through a curve (a strong gamma here; a histogram equalisation
    alike — 0 % of blood-cell smears caught before, bench/results_near_duplicates_tone.md) is
    missed by the correlation of values and found by the order of its tones, mirrored too;
    distinct textures stay apart."""
    import numpy as np
    from PIL import ImageOps

    from medft.data import near_duplicates
    from medft.data.near_duplicates import closest_views, similarity, thumbnail

    pre = Preprocess(32, 32)
    images = _textures(20, seed=4)
    curve = [round(255 * (v / 255) ** 2.5) for v in range(256)]
    originals = [thumbnail(pre(image)) for image in images]
    curved = [thumbnail(pre(image.point(curve))) for image in images]
    mirrored = [thumbnail(pre(ImageOps.mirror(image.point(curve)))) for image in images]
    for copies in (curved, mirrored):
        close = similarity(copies, originals)
        assert (np.diag(close) >= THRESHOLD).all()
        assert (close[~np.eye(len(images), dtype=bool)] < THRESHOLD).all()
    names = closest_views(mirrored, originals)
    assert all(name == "mirrored left-right, its tones remapped" for name in names), names
    # A copy alike in its values is named by the plain view, not the tone order's.
    assert set(closest_views(originals, originals)) == {"the same picture"}
    monkeypatch.setattr(near_duplicates, "TONE_ORIENTATIONS", ())
    assert (np.diag(similarity(curved, originals)) < THRESHOLD).all()


def test_a_copy_cropped_and_turned_is_found_among_many_through_its_candidates(monkeypatch):
    """The combined views reach only each query's few nearest references by the coarse
    comparison: with 4 candidates among 120 textures every cropped-and-turned copy still
    meets its original, whichever side is the crop, and no distinct texture comes as close."""
    import numpy as np
    from PIL import Image

    from medft.data import near_duplicates
    from medft.data.near_duplicates import closest_views, similarity, thumbnail

    monkeypatch.setattr(near_duplicates, "CANDIDATES", 4)
    pre = Preprocess(32, 32)
    images = _textures(120, seed=5)

    def augmented(image):  # 6 % off the top and left, then a quarter turn anticlockwise
        return image.crop((4, 4, 64, 64)).transpose(Image.Transpose.ROTATE_90)

    originals = [thumbnail(pre(image)) for image in images]
    copies = [thumbnail(pre(augmented(image))) for image in images[:10]]
    close = similarity(copies, originals)
    assert (np.diag(close[:, :10]) >= THRESHOLD).all()
    close[np.arange(10), np.arange(10)] = -1
    assert (close < THRESHOLD).all()
    assert (np.diag(similarity(originals[:10], copies)) >= THRESHOLD).all()
    # both ways at once, as the check names its pairs
    assert closest_views([copies[0], originals[0]], [originals[0], copies[0]]) == [
        "cropped from it (1.075× about the bottom-right corner), then turned 90° anticlockwise",
        "it, turned 90° clockwise, is cropped from this (1.075× about the bottom-right corner)",
    ]


def test_the_card_counts_evaluation_images_the_cap_removed(tmp_path):
    kaggle_layout(tmp_path / "raw", {})
    out = prepare(tmp_path, max_images_per_class=3)
    subsampled = read_meta(out).subsampled["max_images_per_class"]
    assert subsampled["test"] == 4 * (5 - 3)  # never read, still counted
    assert subsampled["train"] > 0


def _nudged(image, degrees=0.0, right=0.0, down=0.0, fill=0, mirrored=False, scale=1.0):
    """``image`` mirrored left-right or not, turned ``degrees`` anticlockwise and enlarged
    ``scale`` times, then moved by shares of its side, resampled once (bilinear) as
    torchvision's ``affine`` and Keras's ``apply_affine_transform`` do; the gap ``fill`` (a
    grey level, or "edge": the nearest edge pixel repeated)."""
    import math

    import numpy as np
    from PIL import Image, ImageOps

    if mirrored:
        image = ImageOps.mirror(image)
    pad = image.width // 4 if fill == "edge" else 0
    if pad:
        image = Image.fromarray(np.pad(np.asarray(image), pad, mode="edge"))
        fill = 0
    width, height = image.width - 2 * pad, image.height - 2 * pad
    # Each copy pixel's place in the original: the shift undone, then the turn and the
    # enlargement (rows down).
    cos = math.cos(math.radians(degrees)) / scale
    sin = math.sin(math.radians(degrees)) / scale
    centre_x, centre_y = image.width / 2 + right * width, image.height / 2 + down * height
    inverse = (
        cos, -sin, image.width / 2 - cos * centre_x + sin * centre_y,
        sin, cos, image.height / 2 - sin * centre_x - cos * centre_y,
    )  # fmt: skip
    moved = image.transform(
        image.size, Image.Transform.AFFINE, inverse, Image.Resampling.BILINEAR, fillcolor=fill
    )
    return moved.crop((pad, pad, pad + width, pad + height))


@pytest.mark.parametrize(
    "flip, scale",
    [
        ("left-right at random", None),
        ("up-down", None),
        ("a quarter turn", None),
        ("left-right at random", (0.9, 1.1)),
    ],
)
def test_copies_torchvisions_random_affine_writes_are_near_copies(flip, scale):
    """What users' pipelines write: a flip (left-right at random, or up-down, or a quarter
    turn: histology and dermoscopy pipelines flip both ways), then torchvision's
    ``RandomAffine`` (a turn up to 15° and shifts up to 10 % drawn at once, and a zoom of up
    to 10 % either way where ``scale`` says, nearest-neighbour, a black gap); each copy meets
    its original among 200 distinct textures (far more than the closest the fit meets), and
    none comes as close to another."""
    import numpy as np
    import torch
    from torchvision import transforms

    from medft.data.near_duplicates import similarity, thumbnail

    torch.manual_seed(0)
    flips = {
        "left-right at random": transforms.RandomHorizontalFlip(),
        "up-down": transforms.RandomVerticalFlip(1.0),
        "a quarter turn": transforms.RandomRotation((90, 90)),
    }
    augment = transforms.Compose(
        [flips[flip], transforms.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=scale)]
    )
    pre = Preprocess(32, 32)
    images = _textures(200, seed=13)
    originals = [thumbnail(pre(image)) for image in images]
    copies = [thumbnail(pre(augment(image))) for image in images[:10]]
    close = similarity(copies, originals)
    assert (np.diag(close[:, :10]) >= THRESHOLD).all(), np.diag(close).round(3)
    close[np.arange(10), np.arange(10)] = -1
    assert (close < THRESHOLD).all()


def test_each_nudge_compares_only_pixels_no_fill_reaches():
    """A copy nudged each way, its gap black or white: moved back, the two agree on the
    nudge's mask — whatever an augmentation library fills the gap with, it is not compared —
    and the mask keeps the side the content came from."""
    import numpy as np

    from medft.data.near_duplicates import SIDE, _flat, thumbnail
    from medft.data.nudges import BOUNDS, NUDGES, ZOOMED, Nudge, undoing

    pre = Preprocess(64, 64)
    texture = _textures(1, seed=7)[0]

    def nudged_thumbnail(nudge, fill):
        copy = _nudged(
            texture, nudge.degrees, nudge.right, nudge.down, fill, nudge.mirrored, nudge.scale
        )
        return _flat([thumbnail(pre(copy))])

    rng = np.random.default_rng(3)  # and nudges a fit lands on, between the grid's steps
    between = [
        Nudge.of(np.append(rng.uniform(-BOUNDS, BOUNDS) + (90 * quarters, 0, 0, 1), m))
        for quarters in range(4)  # the fit also starts from each of the square's symmetries
        for m in (0, 1) * 10
    ]
    for nudge in (*NUDGES, *ZOOMED, *between):
        matrix, mask = undoing(nudge, SIDE)
        black, white = nudged_thumbnail(nudge, 0), nudged_thumbnail(nudge, 255)
        assert np.abs((black @ matrix.T) - (white @ matrix.T))[0, mask].max() < 1.0, nudge.name
        assert mask.sum() >= SIDE * SIDE // 3, nudge.name
    _, right = undoing(Nudge(right=0.1), SIDE)
    columns = right.reshape(SIDE, SIDE).any(axis=0)
    assert not columns[0] and columns[SIDE // 2]  # the copy's left columns are the gap
    points = np.array([[3.0, 12.5], [8.0, 8.0]])
    turned = Nudge(12.5, 0.05, -0.075, scale=1.08)
    assert np.allclose(turned.to_original(turned.to_copy(points, SIDE), SIDE), points)


def test_the_fit_compares_as_the_grid_does():
    """The fit's correlation of a pair in a nudge (sampled point by point) is the grid's (the
    nudge's matrix and mask), on and between the grid's steps; a nudge by quarter turns,
    mirrored or not, is the thumbnail turned and mirrored (``symmetric``)."""
    import numpy as np

    from medft.data import nudges
    from medft.data.near_duplicates import SIDE, _flat, thumbnail
    from medft.data.nudges import BOUNDS, NUDGES, SYMMETRIES, ZOOMED, Nudge, per_nudge, symmetric

    pre = Preprocess(32, 32)
    query, reference = _flat([thumbnail(pre(image)) for image in _textures(2, seed=5)])
    rng = np.random.default_rng(4)
    between = [
        Nudge.of(np.append(rng.uniform(-BOUNDS, BOUNDS) + (0, 0, 0, 1), m)) for m in (0, 1) * 10
    ]
    for nudge in (*NUDGES[::17], *ZOOMED[::5], *between):
        on_grid = per_nudge(query[None], reference[None], np.zeros((1, 1), int), SIDE, (nudge,))
        sampled = nudges._matched(query[None], reference[None], nudge.parameters[None], SIDE)
        assert abs(on_grid.item() - sampled.item()) < 1e-4, nudge.name
    for mirrored, quarters in SYMMETRIES:
        turned = symmetric(query[None], SIDE, mirrored, quarters)
        as_nudge = Nudge(90.0 * quarters, mirrored=mirrored).parameters[None]
        assert nudges._matched(turned, query[None], as_nudge, SIDE).item() > 1 - 1e-9
        undone = symmetric(turned, SIDE, mirrored, quarters, undone=True)
        assert np.array_equal(undone, query[None])


def test_a_copy_turned_a_few_degrees_or_shifted_is_a_near_copy_whatever_its_fill():
    """Copies as Keras's and torchvision's random rotations, shifts and zooms write them (the
    gap black or the edge repeated), against 40 distinct textures: each meets its original, from
    either side, and is named by how it moved; no distinct texture comes as close."""
    import numpy as np

    from medft.data.near_duplicates import closest_views, similarity, thumbnail

    pre = Preprocess(32, 32)
    images = _textures(40, seed=11)
    made = {  # what the copy is, its nudge, and the words naming the way it moved
        "turned 6° anticlockwise, black": (dict(degrees=6), ("turned", "anticlockwise")),
        "turned 12° clockwise, edge": (dict(degrees=-12, fill="edge"), ("turned", " clockwise")),
        "shifted 7 % left and 4 % down, black": (
            dict(right=-0.07, down=0.04),
            ("shifted", "left", "down"),
        ),
        "shifted 10 % up, edge": (dict(down=-0.1, fill="edge"), ("shifted", "up")),
        "mirrored, then turned 8° clockwise, black": (
            dict(degrees=-8, mirrored=True),
            ("mirrored left-right", "turned", " clockwise"),
        ),
        "turned 9° anticlockwise and shifted 6 % right and 3 % down, black": (
            dict(degrees=9, right=0.06, down=0.03),
            ("turned 9° anticlockwise", "shifted 6 % right and 3 % down"),
        ),
        "mirrored, turned 13.3° clockwise, shifted 4.3 % left and 8.6 % up, edge": (
            dict(degrees=-13.3, right=-0.043, down=-0.086, fill="edge", mirrored=True),
            ("mirrored left-right", " clockwise", "left", "up"),
        ),
        # Mirrored left-right and turned 173° is mirrored up-down, then turned 7° clockwise.
        "mirrored up-down, turned 7° clockwise, shifted 5 % right, black": (
            dict(degrees=173, right=0.05, mirrored=True),
            ("mirrored up-down, then turned 7° clockwise", "shifted 5 % right"),
        ),
        "turned 96° anticlockwise, shifted 4 % up, edge": (
            dict(degrees=96, down=-0.04, fill="edge"),
            ("turned 96° anticlockwise", "shifted 4 % up"),
        ),
        "turned 10° anticlockwise, enlarged 10 %, black": (
            dict(degrees=10, scale=1.1),
            ("turned", " anticlockwise", "enlarged"),
        ),
        "mirrored, turned 7° clockwise, shrunk 6 %, shifted 5 % down, edge": (
            dict(degrees=-7, scale=0.94, down=0.05, fill="edge", mirrored=True),
            ("mirrored left-right", " clockwise", "shrunk", "down"),
        ),
    }
    originals = [thumbnail(pre(image)) for image in images]
    for how, (nudge, words) in made.items():
        copies = [thumbnail(pre(_nudged(image, **nudge))) for image in images[:8]]
        close = similarity(copies, originals)
        assert (np.diag(close[:, :8]) >= THRESHOLD).all(), how
        assert (np.diag(similarity(originals[:8], copies)) >= THRESHOLD).all(), how
        close[np.arange(8), np.arange(8)] = -1
        assert (close < THRESHOLD).all(), how
        named = closest_views(copies[:1], originals[:1])[0]
        assert all(word in named for word in words), (how, named)
