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
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from medft.errors import ConfigError
from medft.fields import option
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
    main_metric: str | None = option(
        None,
        help=f"the metric that early-stops runs and picks lrs: one of {', '.join(METRICS)} "
        "(default: the task's, as the paper)",
    )
    report_metrics: list[str] | None = option(
        None,
        help="the two metrics of the dataset's paper-style table, main one first (default: "
        "the main metric and the one the paper pairs with it)",
    )
    # Subsampling, applied after the splits are made (the evaluation split never depends on it).
    max_images_per_class: int | None = option(
        None,
        help="keep at most this many images per class in every split (multi-label: per label "
        "combination), whole patients",
    )
    train_fraction: float | None = option(
        None, help="keep this fraction of the training split (whole patients; stratified)"
    )
    subsample_seed: int = option(0, help="the seed of both subsamplings")
    duplicates: str = option(
        "error",
        help="an evaluation image with the pixels of an earlier split's: error, drop_from_eval or "
        "keep",
    )
    near_duplicates: str = option(
        "warn",
        help="an evaluation image that is a near copy (re-saved, resized, cropped, mirrored, "
        "turned) of an earlier split's: warn, error or drop_from_eval",
    )

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

    val_fraction: float = option(
        0.1, help="share of the training images (whole patients) carved into validation (0: none)"
    )
    split_seed: int = option(0, help="the seed of the carved splits")

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
    task: str | None = option(None, help="which synthetic task (default: the entry's name)")
    n_images: int = option(300, help="images to draw")
    seed: int = option(0, help="the seed of the drawing")


@dataclass(frozen=True, kw_only=True)
class MedmnistOptions(SourceOptions):
    flag: str | None = option(None, help="the MedMNIST task (default: the entry's name)")
    npz: str | None = option(None, help="a local .npz file (default: download)")
    npz_size: int = option(28, help="the image size to download: 28, 64, 128 or 224")


@dataclass(frozen=True, kw_only=True)
class UserDataOptions(CarvedSplitOptions):
    """Users' own data, whose classes may be read from the data itself."""

    test_fraction: float = option(
        0.2,
        help="share of the images (whole patients) carved into the test split where none is given",
    )
    min_class_images: int = option(
        5,
        help="a class read from the data with fewer images is an error (a typo or a stray "
        "label); list `classes` to keep a rare one",
    )
    window: str | list[float] | None = option(
        None,
        help="DICOM in Hounsfield units: one window for every file, a preset (soft_tissue, "
        "mediastinum, lung, bone, brain, liver) or centre width (default: each file's own "
        "window, else its range)",
    )
    presentation_lut: bool = option(
        True,
        help="DICOM: each file's Presentation LUT Shape decides its polarity where it has one "
        "(INVERSE shows it inverted), as viewers decide; false: the Photometric "
        "Interpretation alone, for archives whose files carry a wrong Shape",
    )
    slice_axis: int | None = option(
        None, help="NIfTI: the axis slices are cut along, 0 sagittal, 1 coronal, 2 axial (default)"
    )
    central_slices: float | None = option(
        None,
        help="volumes and multi-frame DICOM: the central fraction of slices kept (default: all)",
    )
    slice_step: int | None = option(
        None,
        help="volumes and multi-frame DICOM: every how many kept slices (default: 1; a cine's "
        "neighbouring frames are near copies)",
    )
    intensity_percentiles: list[float] | None = option(
        None, help="NIfTI: the per-volume percentiles mapped to 0 and 255 (default: 0.5 99.5)"
    )

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
    root: str = option(help="the folder of class folders, or of train/val/test folders of them")
    # Unset, class folders that all hold the same sub-folders and no image are refused as
    # splits or datasets under another name.
    folder_groups: bool | None = option(
        None,
        help="whether a class folder's sub-folders are patients (each one group, never in two "
        "splits); false: scanners, dates, each image its own group (default: yes, but asked "
        "where every class holds the same sub-folders)",
    )


@dataclass(frozen=True, kw_only=True)
class TableOptions(UserDataOptions):
    table: str = option(help="a CSV or Parquet file, one row per image")
    image_root: str | None = option(
        None, help="the folder the paths are relative to (default: the table's)"
    )
    path_column: str = option("path", help="the column of image paths")
    path_template: str | None = option(
        None,
        help="builds each path from the row instead, e.g. 'images_part_*/{image_id}.jpg' (a "
        "glob must match exactly one file under image_root)",
    )
    label_column: str = option("label", help="the column of class names")
    label_columns: list[str] | None = option(
        None, help="multi-label: the 0/1 columns, instead of label_column"
    )
    classes: list[str] | None = option(
        None, help="the single-label classes, in order (default: those in the table)"
    )
    group_column: str | None = option(
        None,
        help="the patient (or study) column: a patient's images never span two splits "
        "(default: DICOM files' Patient ID, else none)",
    )
    split_column: str | None = option(
        None, help="a column of train/val/test, or empty to carve (default: all carved)"
    )


@dataclass(frozen=True, kw_only=True)
class ChexpertOptions(CarvedSplitOptions):
    root: str = option(help="the unpacked CheXpert-v1.0 folder")
    uncertain: dict[str, int] = option(
        factory=dict,
        help='per label, 0 or 1 for an uncertain "-1", as JSON (default: 1 for Atelectasis and '
        "Edema, else 0)",
    )
    one_image_per_patient: bool = option(
        True, help="one image per patient (the first frontal view)"
    )


@dataclass(frozen=True, kw_only=True)
class MuraOptions(CarvedSplitOptions):
    root: str = option(help="the unpacked MURA-v1.1 folder")
    part: str = option(help="the body part, e.g. shoulder (the paper counts each as a task)")
    one_image_per_study: bool = option(False, help="one image per study instead of every image")

    @property
    def paper_task(self) -> str:
        return f"mura-{self.part.lower()}"  # the paper counts each body part as a task


@dataclass(frozen=True, kw_only=True)
class T1wMriOptions(CarvedSplitOptions):
    root: str = option(help="where the figshare files are, or go")
    download: bool = option(True, help="download what is missing from root")
    test_fraction: float = option(
        542 / 3064, help="share of patients in the test split (the paper's)"
    )


@dataclass(frozen=True, kw_only=True)
class BachOptions(CarvedSplitOptions):
    root: str = option(help="where the ICIAR 2018 files are, or go")
    download: bool = option(True, help="download what is missing from root")
    test_size: int = option(40, help="images in the test split, stratified")


@dataclass(frozen=True, kw_only=True)
class Isic2020Options(CarvedSplitOptions):
    root: str = option(help="where the ISIC 2020 files are, or go")
    download: bool = option(True, help="download what is missing from root")
    test_fraction: float = option(0.2, help="share of patients in the test split")


@dataclass(frozen=True, kw_only=True)
class Cholect50Options(CarvedSplitOptions):
    root: str = option(help="the unpacked CholecT50 folder")
    stride: int = option(10, help="every how many frames of a video are kept")
    test_videos: list[int] | None = option(
        None, help="the test videos (default: Nwoye & Padoy 2022's split)"
    )
    val_videos: list[int] | None = option(
        None,
        help="the validation videos (default: that split's; none: in training, and "
        "val_fraction carves validation videos from training)",
    )
