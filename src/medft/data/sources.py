"""Dataset sources by name: how a ``datasets:`` entry of the config becomes a prepared dataset.

Each source gets the entry's options, the preprocessing for one model input size and an output
folder; ``inputs`` names the raw files the workflow should wait for (none for a source that
downloads or generates its data); ``counts`` says how many images each split will hold, before
anything is prepared or downloaded (what ``medft plan`` and the jobs' resources use).
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
    counts: Callable[[dict], dict[str, int]] | None = None


def carved_counts(train: int, test: int, val: int = 0, val_fraction: float = 0.1) -> dict:
    """Images per split once the validation split is carved from training (when it has none)."""
    if not val:
        val = round(train * val_fraction)
        train -= val
    return {"train": train, "val": val, "test": test}


def _plan_counts(options: dict, records) -> dict[str, int]:
    """Counts of parsed records, the unsplit ones carved by the source's fractions."""
    from medft.data.user import _plan

    plan = _plan(options)
    given = records["split"].value_counts().to_dict() if "split" in records else {}
    loose = len(records) - sum(n for split, n in given.items() if split)
    given.pop("", None)
    test = given.get("test", 0) or round(loose * plan.test_fraction)
    pool = given.get("train", 0) + loose - (0 if given.get("test") else test)
    return carved_counts(pool, test, given.get("val", 0), plan.val_fraction)


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


def _synthetic_counts(options: dict) -> dict[str, int]:
    from medft.data import synthetic

    return synthetic.split_counts(options.get("n_images", 300))


def _medmnist_counts(options: dict) -> dict[str, int]:
    import medmnist

    return dict(medmnist.INFO[options.get("flag", options["name"])]["n_samples"])


SOURCES.register("synthetic")(
    Source(_synthetic, description="medft's offline demo tasks", counts=_synthetic_counts)
)
SOURCES.register("medmnist")(
    Source(
        _medmnist,
        inputs=lambda o: [o["npz"]] if o.get("npz") else [],
        description="MedMNIST v2 2D tasks (local .npz or download)",
        counts=_medmnist_counts,
    )
)


def _records_source(
    module: str,
    parser: str,
    description: str,
    read: str | None = None,
    inputs=lambda options: [],
    counts: Callable[[dict], dict[str, int]] | None = None,
) -> Source:
    """A source whose parser, ``medft.data.<module>.<parser>(options)``, returns
    (records, classes, task, split plan) for ``write_records``; ``read`` names a custom image
    reader in the same module. Imported on use, so listing sources stays cheap. Without
    ``counts``, the split counts come from running the parser (users' data: a folder listing
    or a table, never a download)."""

    def parsed_counts(options: dict) -> dict[str, int]:
        from importlib import import_module

        records = getattr(import_module(f"medft.data.{module}"), parser)(options)[0]
        return _plan_counts(options, records)

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

    return Source(prepare, inputs=inputs, description=description, counts=counts or parsed_counts)


def _paper_counts(options: dict) -> dict[str, int]:
    """The paper's Table 2 (train / evaluation), validation carved from training; the real
    counts replace these once the dataset is prepared."""
    from medft.data.paper import TABLE2

    key = options["source"] + (f"-{options['part']}" if options["source"] == "mura" else "")
    train, test = TABLE2[key]
    return carved_counts(train, test, val_fraction=options.get("val_fraction", 0.1))


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
    _records_source(
        "paper", "chexpert", "CheXpert v1.0, 5 labels (agreement needed)", counts=_paper_counts
    )
)
SOURCES.register("mura")(
    _records_source(
        "paper", "mura", "MURA v1.1, one body part (agreement needed)", counts=_paper_counts
    )
)
SOURCES.register("t1w_mri")(
    _records_source(
        "paper",
        "t1w_mri",
        "figshare brain-tumour T1w CE-MRI",
        read="read_t1w",
        counts=_paper_counts,
    )
)
SOURCES.register("bach")(
    _records_source("paper", "bach", "BACH / ICIAR 2018 microscopy", counts=_paper_counts)
)
SOURCES.register("isic2020")(
    _records_source(
        "paper",
        "isic2020",
        "ISIC 2020 melanoma, listed duplicates removed",
        counts=_paper_counts,
    )
)
SOURCES.register("cholect50")(
    _records_source(
        "paper",
        "cholect50",
        "CholecT50 instrument presence (agreement needed)",
        counts=_paper_counts,
    )
)


def prepare_dataset(name: str, options: dict, preprocess: Preprocess, out: str | Path) -> Path:
    """Prepare config entry ``name`` (its ``source`` key picks the source) into ``out``."""
    source = SOURCES.get(options["source"])
    return source.prepare(name, options, preprocess, Path(out))
