"""Dataset sources by name: how a ``datasets:`` entry of the config becomes a prepared dataset.

Each source has its typed options (``medft.data.options``: the entry's keys, defaults and
types), a ``prepare`` from options, preprocessing and output folder, ``inputs`` naming the raw
files the workflow should wait for (none for a source that downloads or generates its data),
``counts``: how many images each split will hold, before anything is prepared or
downloaded (what ``medft plan`` and the jobs' resources use), and ``strata``: how many groups
``max_images_per_class`` caps apart, where that is known before preparing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medft.data import options as opts
from medft.data.preprocess import Preprocess
from medft.registry import Registry


@dataclass(frozen=True)
class Source:
    options: type[opts.SourceOptions]
    prepare: Callable[[opts.SourceOptions, Preprocess, Path], Path]
    counts: Callable[[opts.SourceOptions], dict[str, int]]
    inputs: Callable[[opts.SourceOptions], list[str]] = lambda options: []
    description: str = ""
    # Classes (label combinations for multi-label); None where unknown until prepared.
    strata: Callable[[opts.SourceOptions], int | None] = lambda options: None

    def planned_counts(self, options: opts.SourceOptions) -> dict[str, int]:
        """``counts`` after the entry's subsampling, in its order (``records.subsample``): the
        training split's ``train_fraction``, then at most ``max_images_per_class`` per
        stratum in each split — an upper bound where classes are unequal."""
        counts = dict(self.counts(options))
        if options.train_fraction:
            counts["train"] = max(1, round(counts["train"] * options.train_fraction))
        cap = options.max_images_per_class
        strata = self.strata(options) if cap else None
        if strata:
            counts = {split: min(n, cap * strata) for split, n in counts.items()}
        return counts


SOURCES: Registry[Source] = Registry("dataset source")


def label_strata(labels: int, multilabel: bool) -> int:
    """What ``max_images_per_class`` caps apart (``records.subsample``): each class, or for
    multi-label data each combination of labels."""
    return 2**labels if multilabel else labels


def parse_options(entry: dict) -> opts.SourceOptions:
    """The typed options of a ``datasets:`` entry (its ``source`` picks the dataclass)."""
    if "source" not in entry:
        raise opts.ConfigError(f"dataset {entry.get('name', '?')!r}: missing key `source`")
    try:
        source = SOURCES.get(entry["source"])
    except ValueError as error:
        raise opts.ConfigError(f"dataset {entry.get('name', '?')!r}: {error}") from None
    return source.options.parse(entry)


def carved_counts(train: int, test: int, val: int = 0, val_fraction: float = 0.1) -> dict:
    """Images per split once the validation split is carved from training (when it has none)."""
    if not val:
        val = round(train * val_fraction)
        train -= val
    return {"train": train, "val": val, "test": test}


def _records_counts(options: opts.SourceOptions, records) -> dict[str, int]:
    """Counts of parsed records, the unsplit ones carved by the options' fractions."""
    plan = options.plan
    given = records["split"].value_counts().to_dict() if "split" in records else {}
    loose = len(records) - sum(n for split, n in given.items() if split)
    given.pop("", None)
    test = given.get("test", 0) or round(loose * plan.test_fraction)
    pool = given.get("train", 0) + loose - (0 if given.get("test") else test)
    return carved_counts(pool, test, given.get("val", 0), plan.val_fraction)


def _synthetic(options: opts.SyntheticOptions, preprocess: Preprocess, out: Path) -> Path:
    from medft.data import synthetic

    return synthetic.prepare(
        options.task or options.base_name,
        preprocess,
        out,
        n_images=options.n_images,
        seed=options.seed,
        options=options,
    )


def _medmnist(options: opts.MedmnistOptions, preprocess: Preprocess, out: Path) -> Path:
    from medft.data import medmnist

    flag = medmnist_flag(options)
    npz = options.npz or medmnist.download(flag, options.npz_size, Path(out).parent.parent / "raw")
    return medmnist.prepare(npz, flag, preprocess, out, options)


def medmnist_flag(options: opts.MedmnistOptions) -> str:
    """The task: ``flag``, else the local file's name (``breastmnist_64.npz``), else the
    entry's name."""
    if options.flag:
        return options.flag
    return Path(options.npz).stem.split("_")[0] if options.npz else options.base_name


def _synthetic_counts(options: opts.SyntheticOptions) -> dict[str, int]:
    from medft.data import synthetic

    return synthetic.split_counts(options.n_images)


def _synthetic_strata(options: opts.SyntheticOptions) -> int:
    from medft.data.synthetic import SYNTHETIC

    spec = SYNTHETIC.get(options.task or options.base_name)
    return label_strata(len(spec.classes), spec.task == "multilabel")


def _medmnist_counts(options: opts.MedmnistOptions) -> dict[str, int]:
    import medmnist

    flag = medmnist_flag(options)
    if flag not in medmnist.INFO:
        raise opts.ConfigError(
            f"dataset {options.name!r}: unknown MedMNIST task {flag!r}; set `flag` to one of "
            + ", ".join(sorted(medmnist.INFO))
        )
    return dict(medmnist.INFO[flag]["n_samples"])


def _medmnist_strata(options: opts.MedmnistOptions) -> int:
    import medmnist

    info = medmnist.INFO[medmnist_flag(options)]
    return label_strata(len(info["label"]), "multi-label" in info["task"])


SOURCES.register("synthetic")(
    Source(
        opts.SyntheticOptions,
        _synthetic,
        _synthetic_counts,
        description="medft's offline demo tasks",
        strata=_synthetic_strata,
    )
)
SOURCES.register("medmnist")(
    Source(
        opts.MedmnistOptions,
        _medmnist,
        _medmnist_counts,
        inputs=lambda o: [o.npz] if o.npz else [],
        description="MedMNIST v2 2D tasks (local .npz or download)",
        strata=_medmnist_strata,
    )
)


def _records_source(
    options: type[opts.SourceOptions],
    module: str,
    parser: str,
    description: str,
    read: str | None = None,
    inputs=lambda options: [],
    counts: Callable[[opts.SourceOptions], dict[str, int]] | None = None,
    strata: Callable[[opts.SourceOptions], int | None] | None = None,
) -> Source:
    """A source whose parser, ``medft.data.<module>.<parser>(options)``, returns
    (records, classes, task) for ``write_records``; ``read`` names a custom image reader in
    the same module. Imported on use, so listing sources stays cheap. Without ``counts``, the
    split counts come from running the parser (users' data: a folder listing or a table,
    never a download)."""

    def parse(options: opts.SourceOptions):
        from importlib import import_module

        return getattr(import_module(f"medft.data.{module}"), parser)(options)

    def parsed_counts(options: opts.SourceOptions) -> dict[str, int]:
        from medft.data.stacks import expand

        # A volume's slices and a multi-frame file's frames are images of their own.
        return _records_counts(options, expand(parse(options)[0], options, options.where))

    def parsed_strata(options: opts.SourceOptions) -> int:
        records = parse(options)[0]
        labels = records["labels"].map(tuple) if "labels" in records else records["label"]
        return labels.nunique()

    def prepare(options: opts.SourceOptions, preprocess: Preprocess, out: Path) -> Path:
        from importlib import import_module

        from medft.data.records import write_records

        records, classes, task = parse(options)
        return write_records(
            records,
            options=options,
            task=task,
            classes=classes,
            preprocess=preprocess,
            out_dir=out,
            read=getattr(import_module(f"medft.data.{module}"), read) if read else None,
        )

    return Source(
        options,
        prepare,
        counts or parsed_counts,
        inputs=inputs,
        description=description,
        # a source with its own counts may have no raw data to parse yet
        strata=strata or (Source.strata if counts else parsed_strata),
    )


def _paper_counts(options: opts.CarvedSplitOptions) -> dict[str, int]:
    """The paper's Table 2 (train / evaluation), validation carved from training; the real
    counts replace these once the dataset is prepared."""
    from medft.data.paper import TABLE2

    key = options.paper_task
    if key not in TABLE2:
        raise opts.ConfigError(f"dataset {options.name!r}: the paper has no {key!r} task")
    train, test = TABLE2[key]
    return carved_counts(train, test, val_fraction=getattr(options, "val_fraction", 0.1))


def _paper_strata(options: opts.CarvedSplitOptions) -> int:
    from medft.data.paper import LABELS

    return label_strata(*LABELS[options.paper_task])


def _paper(options, parser: str, description: str, read: str | None = None) -> Source:
    return _records_source(
        options, "paper", parser, description, read, counts=_paper_counts, strata=_paper_strata
    )


SOURCES.register("imagefolder")(
    _records_source(
        opts.ImageFolderOptions,
        "user",
        "imagefolder",
        "root/<class>/<image>, optionally under train/val/test",
    )
)
SOURCES.register("table")(
    _records_source(
        opts.TableOptions,
        "user",
        "table",
        "CSV/Parquet: path, label(s), optional group and split columns",
        inputs=lambda options: [options.table],
    )
)
SOURCES.register("chexpert")(
    _paper(opts.ChexpertOptions, "chexpert", "CheXpert v1.0, 5 labels (agreement needed)")
)
SOURCES.register("mura")(
    _paper(opts.MuraOptions, "mura", "MURA v1.1, one body part (agreement needed)")
)
SOURCES.register("t1w_mri")(
    _paper(opts.T1wMriOptions, "t1w_mri", "figshare brain-tumour T1w CE-MRI", read="read_t1w")
)
SOURCES.register("bach")(_paper(opts.BachOptions, "bach", "BACH / ICIAR 2018 microscopy"))
SOURCES.register("isic2020")(
    _paper(opts.Isic2020Options, "isic2020", "ISIC 2020 melanoma, listed duplicates removed")
)
SOURCES.register("cholect50")(
    _paper(opts.Cholect50Options, "cholect50", "CholecT50 instrument presence (agreement needed)")
)


def prepare_dataset(name: str, options: dict, preprocess: Preprocess, out: str | Path) -> Path:
    """Prepare config entry ``name`` (a ``datasets:`` entry; ``source`` picks the source)."""
    parsed = parse_options({**options, "name": name})
    return SOURCES.get(parsed.source).prepare(parsed, preprocess, Path(out))
