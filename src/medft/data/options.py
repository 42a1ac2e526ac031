"""The typed options of every dataset source: one frozen dataclass per source.

A ``datasets:`` entry of the config is parsed into its source's dataclass before anything runs
(the workflow's dry run, ``medft plan``, the prepare job), so a misspelled key fails at once,
naming the key, its likely spelling and the valid keys. Each dataclass is the single home of
its source's defaults; ``medft prepare SOURCE --help`` is generated from the same fields.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from medft.errors import ConfigError
from medft.metrics import METRICS


@dataclass(frozen=True)
class SplitPlan:
    """How to carve missing splits: fractions of the images (by group where groups exist)."""

    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class SourceOptions:
    """Keys every dataset entry may set."""

    name: str
    source: str
    main_metric: str | None = None
    # The two metrics of the dataset's paper-style table (the main one is always first);
    # default: the main metric and the one the paper pairs with it.
    report_metrics: list[str] | None = None
    # Subsampling, applied after the splits are made (the evaluation split never depends on it):
    # at most this many images per class in every split (multi-label: per label combination) ...
    max_images_per_class: int | None = None
    # ... and this fraction of the training split (whole patients; stratified where possible).
    train_fraction: float | None = None
    subsample_seed: int = 0
    # An evaluation image with the same pixels as an earlier split's: error, drop_from_eval
    # or keep (medft.data.duplicates).
    duplicates: str = "error"
    # An evaluation image that is a near copy (re-saved, resized, mirrored...) of an earlier
    # split's: warn, error or drop_from_eval (medft.data.near_duplicates).
    near_duplicates: str = "warn"

    def __post_init__(self) -> None:
        from medft.data.near_duplicates import POLICIES

        if self.duplicates not in ("error", "drop_from_eval", "keep"):
            raise self.error("duplicates", "must be one of error, drop_from_eval, keep")
        if self.near_duplicates not in POLICIES:
            raise self.error("near_duplicates", f"must be one of {', '.join(POLICIES)}")
        if self.main_metric is not None and self.main_metric not in METRICS:
            raise self.error("main_metric", f"must be one of {', '.join(METRICS)}")
        if self.report_metrics is not None and not set(self.report_metrics) <= set(METRICS):
            raise self.error("report_metrics", f"must be a list of {', '.join(METRICS)}")
        if self.max_images_per_class is not None and self.max_images_per_class < 1:
            raise self.error("max_images_per_class", "must be at least 1")
        if self.train_fraction is not None and not 0 < self.train_fraction <= 1:
            raise self.error("train_fraction", "must be in (0, 1]")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name, None)
            if value is not None and not 0 <= value < 1:
                raise self.error(name, "must be in [0, 1)")

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"dataset {self.name!r}: `{key}: {getattr(self, key)!r}` {problem}")

    @property
    def base_name(self) -> str:
        """The entry's name without its point on the grid's axes (``nodule@0.1@64px`` →
        ``nodule``: medft.workflow.with_axes), for sources that read a task from the name."""
        return self.name.split("@")[0]

    @property
    def where(self) -> str:
        """The raw data this entry reads, for error messages."""
        return str(getattr(self, "table", None) or getattr(self, "root", None) or self.name)

    @property
    def plan(self) -> SplitPlan:
        """How missing splits are carved (sources with official splits carve none)."""
        return SplitPlan()

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, entry: dict) -> SourceOptions:
        """The typed options of one ``datasets:`` entry; unknown keys, missing required keys and
        wrongly typed values are ``ConfigError``s naming the entry and the key."""
        name = entry.get("name", "?")
        known = {f.name: f for f in fields(cls)}
        hints = typing.get_type_hints(cls)
        for key in entry:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                raise ConfigError(
                    f"dataset {name!r} (source {entry.get('source')!r}): unknown key "
                    f"`{key}`{hint} Valid keys: {', '.join(sorted(known))}"
                )
        missing = [
            f.name
            for f in known.values()
            if f.default is MISSING and f.default_factory is MISSING and f.name not in entry
        ]
        if missing:
            raise ConfigError(
                f"dataset {name!r} (source {entry.get('source')!r}): missing key(s) "
                f"{', '.join(f'`{m}`' for m in missing)}"
            )
        values = {}
        for key, value in entry.items():
            values[key] = _coerce(value, hints[key], f"dataset {name!r}: `{key}`")
        return cls(**values)


def _coerce(value: Any, hint, where: str) -> Any:
    """``value`` checked against a field's type (int, float, str, bool, list, dict, Optional)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for candidate in inner[:-1]:  # the first type the value fits
            try:
                return _coerce(value, candidate, where)
            except ConfigError:
                continue
        return _coerce(value, inner[-1], where)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, args[0], where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], where) for k, v in value.items()}
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where} must be {getattr(hint, '__name__', hint)}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class CarvedSplitOptions(SourceOptions):
    """A source that carves the validation split it lacks from training, by patient."""

    val_fraction: float = 0.1
    split_seed: int = 0

    @property
    def plan(self) -> SplitPlan:
        return SplitPlan(
            val_fraction=self.val_fraction,
            test_fraction=getattr(self, "test_fraction", SplitPlan.test_fraction),
            seed=self.split_seed,
        )

    @property
    def paper_task(self) -> str:
        """The paper's name for this task (its Table 2 rows)."""
        return self.source


@dataclass(frozen=True, kw_only=True)
class SyntheticOptions(SourceOptions):
    task: str | None = None  # which synthetic task (default: the entry's name)
    n_images: int = 300
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class MedmnistOptions(SourceOptions):
    flag: str | None = None  # the MedMNIST task (default: the entry's name)
    npz: str | None = None  # a local .npz (default: download)
    npz_size: int = 28  # MedMNIST image size to download (28, 64, 128 or 224)


@dataclass(frozen=True, kw_only=True)
class UserDataOptions(CarvedSplitOptions):
    """Users' own data, whose classes may be read from the data itself."""

    test_fraction: float = 0.2
    # A class read from the data with fewer images than this is an error (a typo or a stray
    # label); set ``classes`` to accept rare classes.
    min_class_images: int = 5
    # DICOM (medft.data.dicom): one window for every file, a preset name (soft_tissue, lung,
    # bone, brain, ...) or [centre, width]; default: each file's own window, else its range.
    window: str | list[float] | None = None
    # NIfTI volumes (medft.data.volumes): the axis slices are cut along (0 sagittal, 1 coronal,
    # 2 axial — the default), the central fraction of slices kept and every how many of those
    # (default: all; of a multi-frame DICOM file's frames too — a cine's neighbouring frames
    # are near-copies), and the per-volume intensity percentiles mapped to 0 and 255 (default
    # [0.5, 99.5]).
    slice_axis: int | None = None
    central_slices: float | None = None
    slice_step: int | None = None
    intensity_percentiles: list[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        from medft.data.dicom import check_window

        problem = check_window(self.window)
        if problem:
            raise self.error("window", problem)
        if self.slice_axis is not None and self.slice_axis not in (0, 1, 2):
            raise self.error("slice_axis", "must be 0, 1 or 2")
        if self.central_slices is not None and not 0 < self.central_slices <= 1:
            raise self.error("central_slices", "must be in (0, 1]")
        if self.slice_step is not None and self.slice_step < 1:
            raise self.error("slice_step", "must be a whole number >= 1 (2: every other slice)")
        percentiles = self.intensity_percentiles
        if percentiles is not None and not (
            len(percentiles) == 2 and 0 <= percentiles[0] < percentiles[1] <= 100
        ):
            raise self.error(
                "intensity_percentiles", "must be [low, high] with 0 <= low < high <= 100"
            )


@dataclass(frozen=True, kw_only=True)
class ImageFolderOptions(UserDataOptions):
    root: str
    # Images in a sub-folder of a class folder (root/<class>/<sub-folder>/...) are one group,
    # <class>/<sub-folder>: a patient's or a study's images never span two splits. Unset, class
    # folders that all hold the same sub-folders and nothing else are refused as splits or
    # datasets under another name; true: they are patients (numbered within each class); false:
    # they are not patients (scanners, dates), and each image is its own group.
    folder_groups: bool | None = None


@dataclass(frozen=True, kw_only=True)
class TableOptions(UserDataOptions):
    table: str
    image_root: str | None = None  # default: the table's folder
    path_column: str = "path"
    # Builds each path from the row instead, e.g. "images_part_*/{image_id}.jpg"; glob
    # characters are resolved under image_root and must match exactly one file.
    path_template: str | None = None
    label_column: str = "label"
    label_columns: list[str] | None = None  # multi-label 0/1 columns instead of label_column
    classes: list[str] | None = None  # the single-label classes, in order
    group_column: str | None = None
    split_column: str | None = None


@dataclass(frozen=True, kw_only=True)
class ChexpertOptions(CarvedSplitOptions):
    root: str
    uncertain: dict[str, int] = field(default_factory=dict)  # label → 0 or 1 for "-1"
    one_image_per_patient: bool = True


@dataclass(frozen=True, kw_only=True)
class MuraOptions(CarvedSplitOptions):
    root: str
    part: str
    one_image_per_study: bool = False

    @property
    def paper_task(self) -> str:
        return f"mura-{self.part.lower()}"  # the paper counts each body part as a task


@dataclass(frozen=True, kw_only=True)
class T1wMriOptions(CarvedSplitOptions):
    root: str
    download: bool = True
    test_fraction: float = 542 / 3064  # the paper's evaluation share


@dataclass(frozen=True, kw_only=True)
class BachOptions(CarvedSplitOptions):
    root: str
    download: bool = True
    test_size: int = 40


@dataclass(frozen=True, kw_only=True)
class Isic2020Options(CarvedSplitOptions):
    root: str
    download: bool = True
    test_fraction: float = 0.2


@dataclass(frozen=True, kw_only=True)
class Cholect50Options(CarvedSplitOptions):
    root: str
    stride: int = 10
    test_videos: list[int] | None = None  # default: Nwoye & Padoy 2022's split
    # Default: that split's; [] puts them in training (the paper's counts include them), and
    # `val_fraction` then carves validation videos from training (0: none).
    val_videos: list[int] | None = None
