import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from medft.data import medmnist, synthetic
from medft.data.options import MedmnistOptions
from medft.data.preprocess import Preprocess
from medft.data.shards import DatasetMeta, DatasetWriter, ShardDataset
from medft.errors import DataError


def test_preprocess_resizes_the_shorter_side_then_centre_crops():
    image = np.zeros((100, 200), np.uint8)
    image[:, 100:] = 255  # right half white
    out = Preprocess(50, 40)(image)
    assert out.shape == (40, 40, 1)  # 100x200 -> 50x100 -> centre 40x40 straddles the edge
    assert out[:, :15].max() < 5 and out[:, 25:].min() > 250


def test_preprocess_accepts_16_bit_and_palette_images():
    grey16 = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    assert Preprocess(32, 32)(grey16).shape == (32, 32, 1)
    palette = Image.new("P", (40, 30))
    palette.putpalette([0, 0, 0, 255, 0, 0])
    assert Preprocess(20, 16)(palette).shape == (16, 16, 3)
    palette.putpalette([0, 0, 0, 9, 9, 9])  # greys only: a grey image
    assert Preprocess(20, 16)(palette).shape == (16, 16, 1)


def test_shards_round_trip_with_normalisation(tmp_path):
    meta = DatasetMeta("toy", "multilabel", ["a", "b"], image_size=4, channels=1)
    with DatasetWriter(tmp_path / "toy", meta, shard_size=3) as writer:
        for i in range(7):
            split = "train" if i < 5 else "val"
            writer.add(
                np.full((4, 4), i * 10, np.uint8),
                id=f"img{i}",
                split=split,
                label=[i % 2, 1],
                group=f"p{i // 2}",
            )
    assert sorted(p.name for p in (tmp_path / "toy" / "shards").iterdir()) == [
        "00000.npy",
        "00001.npy",
        "00002.npy",
    ]
    train = ShardDataset(tmp_path / "toy", "train", mean=(0, 0, 0), std=(1, 1, 1))
    images = train.images(np.array([4, 0, 3]))
    assert images.shape == (3, 3, 4, 4)  # grey replicated to 3 channels
    assert images[:, 0, 0, 0].tolist() == pytest.approx([40 / 255, 0, 30 / 255])
    assert train.targets.tolist()[:2] == [[0, 1], [1, 1]]
    manifest = pd.read_parquet(tmp_path / "toy" / "manifest.parquet")
    assert manifest["group"].tolist()[:3] == ["p0", "p0", "p1"]


def test_failed_preparation_leaves_nothing_behind(tmp_path):
    meta = DatasetMeta("toy", "binary", ["a", "b"], image_size=4, channels=1)
    with pytest.raises(ValueError, match="'bad'"):
        with DatasetWriter(tmp_path / "toy", meta) as writer:
            writer.add(np.zeros((4, 4), np.uint8), id="ok", split="train", label=0)
            writer.add(np.zeros((5, 5), np.uint8), id="bad", split="train", label=1)
    assert list(tmp_path.iterdir()) == []


def test_breastmnist_labels_shaped_n_are_accepted(breastmnist, tmp_path):
    splits = medmnist.load_npz(breastmnist, "breastmnist")
    assert {s: len(y) for s, (_, y) in splits.items()} == {"train": 546, "val": 78, "test": 156}
    assert np.bincount(splits["train"][1]).tolist() == [147, 399]
    # The official split has one test image whose pixels are a training image's (test 76 =
    # train 115): refused by default, dropped on request.
    with pytest.raises(DataError, match="test 'test-76' = train 'train-115'"):
        medmnist.prepare(breastmnist, "breastmnist", Preprocess(32, 32), tmp_path / "bm")
    options = MedmnistOptions(
        name="breastmnist", source="medmnist", npz=str(breastmnist), duplicates="drop_from_eval"
    )
    out = medmnist.prepare(breastmnist, "breastmnist", Preprocess(32, 32), tmp_path / "bm", options)
    test = ShardDataset(out, "test")
    assert len(test) == 155 and test.meta.task == "binary"
    assert test.meta.classes == ["malignant", "normal, benign"]
    assert [d["id"] for d in test.meta.duplicates["dropped"]] == ["test-76"]


def test_medmnist_npz_with_wrong_arrays_is_rejected(tmp_path):
    path = tmp_path / "breastmnist.npz"
    np.savez(path, train_images=np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="missing arrays"):
        medmnist.load_npz(path, "breastmnist")
    arrays = {
        f"{s}_{k}": np.zeros((2, 28, 28), np.uint8) if k == "images" else np.zeros((2, 3))
        for s in ("train", "val", "test")
        for k in ("images", "labels")
    }
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"train_labels is \(2, 3\); expected \(2, 1\)"):
        medmnist.load_npz(path, "breastmnist")
    with pytest.raises(ValueError, match="unknown MedMNIST task 'breastmnst'.*pathmnist"):
        medmnist.load_npz(path, "breastmnst")


def test_loader_workers_give_the_in_process_batches_in_a_seeded_order(tiny_datasets):
    data = tiny_datasets["multiclass"]
    in_process = ShardDataset(data, "train")
    with_workers = ShardDataset(data, "train", workers=2)
    for seed in (3, 3, 4):
        ours = list(in_process.batches(16, shuffle_seed=seed))
        theirs = list(with_workers.batches(16, shuffle_seed=seed))
        assert len(ours) == len(theirs) == in_process.num_batches(16)
        for (a, ya), (b, yb) in zip(ours, theirs, strict=True):
            assert torch.equal(a, b) and torch.equal(ya, yb)
        if seed == 3:
            first_order = torch.cat([y for _, y in ours])
    # The order is the seed's: the same seed repeats it, another seed shuffles differently.
    assert torch.equal(torch.cat([y for _, y in in_process.batches(16, 3)]), first_order)
    assert not torch.equal(torch.cat([y for _, y in ours]), first_order)
    assert sorted(torch.cat([y for _, y in ours]).tolist()) == sorted(first_order.tolist())


def test_batches_travel_as_uint8_and_are_normalised_on_arrival(tiny_datasets):
    train = ShardDataset(tiny_datasets["binary"], "train")
    pixels, _ = train[np.arange(4)]
    assert pixels.dtype == torch.uint8 and pixels.shape[1] == train.meta.channels
    images = next(train.batches(4))[0]
    mean = torch.tensor(train.mean).view(1, 3, 1, 1)
    std = torch.tensor(train.std).view(1, 3, 1, 1)
    expected = (pixels.expand(-1, 3, -1, -1).float() / 255 - mean) / std
    assert images.dtype == torch.float32
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(images, expected, atol=1e-5)


def test_synthetic_effusion_fills_one_lung_base_of_the_positives_only():
    bases = {0: [], 1: []}
    for image, label, _, _ in synthetic.generate("synth-effusion", 60, 64):
        lower_lungs = (image[42:52, 12:26], image[42:52, 38:52])  # rows 0.65–0.8 of each lung
        bases[label].append(max(part.mean() for part in lower_lungs) / 255)
    assert len(bases[0]) > 10 and len(bases[1]) > 10
    # Fluid is as dense as the chest wall: every positive's brighter base above every negative's.
    assert min(bases[1]) > max(bases[0]) + 0.2
