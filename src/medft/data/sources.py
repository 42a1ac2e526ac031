"""Dataset sources by name: how a ``datasets:`` entry of the config becomes a prepared dataset.

Each source gets the entry's options, the preprocessing for one model input size and an output
folder; ``inputs`` names the raw files the workflow should wait for (none for a source that
downloads or generates its data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medft.data.preprocess import Preprocess
from medft.registry import Registry


@dataclass(frozen=True)
class Source:
    prepare: Callable[[str, dict, Preprocess, Path], Path]
    inputs: Callable[[dict], list[str]] = lambda options: []
    description: str = ""


SOURCES: Registry[Source] = Registry("dataset source")


def _synthetic(name: str, options: dict, preprocess: Preprocess, out: Path) -> Path:
    from medft.data import synthetic

    return synthetic.prepare(options.get("task", name), preprocess, out,
                             n_images=options.get("n_images", 300), seed=options.get("seed", 0))


def _medmnist(name: str, options: dict, preprocess: Preprocess, out: Path) -> Path:
    from medft.data import medmnist

    flag = options.get("flag", name)
    npz = options.get("npz") or medmnist.download(flag, options.get("size", 28),
                                                  Path(out).parent.parent / "raw")
    return medmnist.prepare(npz, flag, preprocess, out)


SOURCES.register("synthetic")(Source(_synthetic, description="medft's offline demo tasks"))
SOURCES.register("medmnist")(
    Source(_medmnist, inputs=lambda o: [o["npz"]] if o.get("npz") else [],
           description="MedMNIST v2 2D tasks (local .npz or download)"))


def prepare_dataset(name: str, options: dict, preprocess: Preprocess, out: str | Path) -> Path:
    """Prepare config entry ``name`` (its ``source`` key picks the source) into ``out``."""
    source = SOURCES.get(options["source"])
    return source.prepare(name, options, preprocess, Path(out))
