from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from medft.data import synthetic
from medft.data.preprocess import Preprocess

# Real images for the tests that need them: MEDFT_TEST_DATA, else the folder beside the
# checkout where the project's machines keep them.
REAL_DATA = Path(
    os.environ.get("MEDFT_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
BREASTMNIST = REAL_DATA / "medmnist" / "breastmnist.npz"
HOW_TO_GET = (
    "set MEDFT_TEST_DATA to a folder holding medmnist/breastmnist.npz (MedMNIST v2's "
    "BreastMNIST at 28 px: `pip install medmnist && python -m medmnist download`, or "
    "https://zenodo.org/records/10519652)"
)

# Under pytest-xdist (`make test` runs one worker per core) each worker gets one thread:
# more would oversubscribe the cores the workers already fill.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture(scope="session")
def tiny_datasets(tmp_path_factory) -> dict[str, Path]:
    """One small 32 px synthetic dataset per task type, keyed by task type (the first
    registered of each: synth-nodule for binary)."""
    root = tmp_path_factory.mktemp("datasets")
    out = {}
    for name in synthetic.SYNTHETIC.names():
        task = synthetic.SYNTHETIC.get(name).task
        if task not in out:
            out[task] = synthetic.prepare(name, Preprocess(32, 32), root / name, n_images=60)
    return out


@pytest.fixture
def breastmnist() -> Path:
    if not BREASTMNIST.exists():
        pytest.skip(f"real test data not found at {BREASTMNIST}: {HOW_TO_GET}")
    return BREASTMNIST


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> str:
    """A 'pretrained' state dict for timm's test_resnet: random, but without the zero-initialised
    residual BatchNorm scales of a fresh model, whose relative gradient norm is undefined."""
    from torch import nn

    from medft.models import create_model

    module = create_model("test_resnet", 1000, weights="none", seed=123).module
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
    path = tmp_path_factory.mktemp("weights") / "test_resnet.pth"
    torch.save(module.state_dict(), path)
    return str(path)


def pytest_itemcollected(item):
    # pytest-xdist builds a module-scoped fixture once in every worker that runs one of its
    # tests: the finished workflow (a whole `snakemake` run, over a minute on 2 cores) is
    # built once when its tests share a worker (`--dist loadgroup`, `make test-slow`).
    if "finished_workflow" in item.fixturenames:
        item.add_marker(pytest.mark.xdist_group("finished_workflow"))
