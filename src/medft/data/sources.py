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


def _from_records(parser, read=None):
    """A source whose parser returns (records, classes, task, split plan)."""

    def prepare(name: str, options: dict, preprocess: Preprocess, out: Path) -> Path:
        from medft.data.records import read_image, write_records

        records, classes, task, plan = parser(options)
        return write_records(
            records,
            name=name,
            task=task,
            classes=classes,
            preprocess=preprocess,
            out_dir=out,
            where=str(options["root"]),
            source={"kind": options["source"], **options},
            plan=plan,
            read=read or read_image,
        )

    return prepare


def _user(kind: str):
    def prepare(name: str, options: dict, preprocess: Preprocess, out: Path) -> Path:
        from medft.data import user

        prepare_fn = user.prepare_imagefolder if kind == "imagefolder" else user.prepare_table
        return prepare_fn(name, options, preprocess, out)

    return prepare


def _paper(parser_name: str, description: str, read_name: str | None = None) -> Source:
    def parser(options):
        from medft.data import paper

        return getattr(paper, parser_name)(options)

    def read(path, where):
        from medft.data import paper

        return getattr(paper, read_name)(path, where)

    return Source(_from_records(parser, read if read_name else None), description=description)


SOURCES.register("imagefolder")(
    Source(
        _user("imagefolder"), description="root/<class>/<image>, optionally under train/val/test"
    )
)
SOURCES.register("table")(
    Source(
        _user("table"),
        inputs=lambda o: [o["table"]],
        description="CSV/Parquet: path, label or label columns, optional group and split",
    )
)
SOURCES.register("chexpert")(_paper("chexpert", "CheXpert v1.0, 5 labels (agreement needed)"))
SOURCES.register("mura")(_paper("mura", "MURA v1.1, one body part (agreement needed)"))
SOURCES.register("t1w_mri")(_paper("t1w_mri", "figshare brain tumour T1w CE-MRI", "read_t1w"))
SOURCES.register("bach")(_paper("bach", "BACH / ICIAR 2018 microscopy photos"))
SOURCES.register("isic2020")(_paper("isic2020", "ISIC 2020 melanoma, duplicates removed"))
SOURCES.register("cholect50")(
    _paper("cholect50", "CholecT50 instrument presence (agreement needed)")
)


def prepare_dataset(name: str, options: dict, preprocess: Preprocess, out: str | Path) -> Path:
    """Prepare config entry ``name`` (its ``source`` key picks the source) into ``out``."""
    source = SOURCES.get(options["source"])
    return source.prepare(name, options, preprocess, Path(out))
