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

    return synthetic.prepare(
        options.get("task", name),
        preprocess,
        out,
        n_images=options.get("n_images", 300),
        seed=options.get("seed", 0),
    )


def _medmnist(name: str, options: dict, preprocess: Preprocess, out: Path) -> Path:
    from medft.data import medmnist

    flag = options.get("flag", name)
    npz = options.get("npz") or medmnist.download(
        flag, options.get("size", 28), Path(out).parent.parent / "raw"
    )
    return medmnist.prepare(npz, flag, preprocess, out)


SOURCES.register("synthetic")(Source(_synthetic, description="medft's offline demo tasks"))
SOURCES.register("medmnist")(
    Source(
        _medmnist,
        inputs=lambda o: [o["npz"]] if o.get("npz") else [],
        description="MedMNIST v2 2D tasks (local .npz or download)",
    )
)


def _records_source(
    module: str, parser: str, description: str, read: str | None = None, inputs=lambda options: []
) -> Source:
    """A source whose parser, ``medft.data.<module>.<parser>(options)``, returns
    (records, classes, task, split plan) for ``write_records``; ``read`` names a custom image
    reader in the same module. Imported on use, so listing sources stays cheap."""

    def prepare(name: str, options: dict, preprocess: Preprocess, out: Path) -> Path:
        from importlib import import_module

        from medft.data.records import read_image, write_records

        parsers = import_module(f"medft.data.{module}")
        records, classes, task, plan = getattr(parsers, parser)(options)
        return write_records(
            records,
            name=name,
            task=task,
            classes=classes,
            preprocess=preprocess,
            out_dir=out,
            where=str(options.get("table") or options["root"]),
            source={"kind": options["source"], **options},
            plan=plan,
            read=getattr(parsers, read) if read else read_image,
        )

    return Source(prepare, inputs=inputs, description=description)


SOURCES.register("imagefolder")(
    _records_source("user", "imagefolder", "root/<class>/<image>, optionally under train/val/test")
)
SOURCES.register("table")(
    _records_source(
        "user",
        "table",
        "CSV/Parquet: path, label(s), optional group and split columns",
        inputs=lambda options: [options["table"]],
    )
)
SOURCES.register("chexpert")(
    _records_source("paper", "chexpert", "CheXpert v1.0, 5 labels (agreement needed)")
)
SOURCES.register("mura")(
    _records_source("paper", "mura", "MURA v1.1, one body part (agreement needed)")
)
SOURCES.register("t1w_mri")(
    _records_source("paper", "t1w_mri", "figshare brain-tumour T1w CE-MRI", read="read_t1w")
)
SOURCES.register("bach")(_records_source("paper", "bach", "BACH / ICIAR 2018 microscopy"))
SOURCES.register("isic2020")(
    _records_source("paper", "isic2020", "ISIC 2020 melanoma, listed duplicates removed")
)
SOURCES.register("cholect50")(
    _records_source("paper", "cholect50", "CholecT50 instrument presence (agreement needed)")
)


def prepare_dataset(name: str, options: dict, preprocess: Preprocess, out: str | Path) -> Path:
    """Prepare config entry ``name`` (its ``source`` key picks the source) into ``out``."""
    source = SOURCES.get(options["source"])
    return source.prepare(name, options, preprocess, Path(out))
