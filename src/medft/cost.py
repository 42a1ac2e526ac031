"""What the grid costs before it runs: GPU-hours per (dataset, model), and each job's memory and
time limit for the scheduler.

Work is counted in images: an epoch trains on the training split (forward, backward, step) and
evaluates the validation split (forward); a run ends with one evaluation of validation and test.
The config's ``cost`` table gives each model's images per second on a reference GPU at 224 px
(scaled by pixel count for other input sizes). LP's frozen backbone costs one forward pass per
image when its features are shared (the ``features`` job) — its cells then only train a head —
and one forward pass per image and epoch otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

REFERENCE_PIXELS = 224 * 224


@dataclass(frozen=True)
class ModelCost:
    """One model on the reference GPU, batch 64, bf16 autocast, 224 px."""

    train_img_s: float  # training images per second (forward + backward + Adam step)
    infer_img_s: float  # evaluation / feature-extraction images per second
    mem_mb: int  # host memory of one job (CUDA context, model, loader workers, pinned batches)
    feature_dim: int  # width of what enters the head (the features file's row size)

    @classmethod
    def from_config(cls, entry: dict) -> ModelCost:
        unknown = set(entry) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"cost.models entry has unknown keys {sorted(unknown)}")
        return cls(**entry)


# Published figures for the reference GPU (NVIDIA A100 80GB, bf16/AMP, 224 px, batch 64) until
# a GPU bench replaces them; config.yaml repeats this table with the sources (a test keeps the
# two equal) and a config's ``cost.models`` overrides or extends it by model name.
DEFAULT_MODELS = {
    "resnet50": ModelCost(train_img_s=2470, infer_img_s=7400, mem_mb=12000, feature_dim=2048),
    "densenet121": ModelCost(train_img_s=2180, infer_img_s=6500, mem_mb=12000, feature_dim=1024),
    "vgg19": ModelCost(train_img_s=1050, infer_img_s=3150, mem_mb=16000, feature_dim=4096),
    "default": ModelCost(train_img_s=1000, infer_img_s=3000, mem_mb=16000, feature_dim=4096),
}


@dataclass(frozen=True)
class CostSettings:
    """The config's ``cost`` section."""

    models: dict[str, ModelCost] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    typical_epochs: int = 15  # a typical early stop: best epoch ~10, then patience 5
    startup_s: float = 120  # per job: start-up, model load, checkpoints
    runtime_margin: float = 2.0  # time limit = the epoch budget's time x this
    max_runtime_min: int = 1440  # never ask for more than 24 h: a longer run resumes on retry

    @classmethod
    def from_config(cls, section: dict) -> CostSettings:
        unknown = set(section) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"cost has unknown keys {sorted(unknown)}")
        models = {
            **DEFAULT_MODELS,
            **{name: ModelCost.from_config(e) for name, e in section.get("models", {}).items()},
        }
        return cls(**{**section, "models": models})


@dataclass(frozen=True)
class JobCost:
    """One job: GPU seconds at the epoch budget and at a typical early stop, and memory."""

    upper_s: float
    typical_s: float
    mem_mb: int


def mem_for_attempt(mem_mb: int, attempt: int) -> int:
    """Memory to ask for on the scheduler's ``attempt`` (1, 2, …): each retry asks for half as
    much again, so a job killed for memory is not killed the same way twice."""
    return math.ceil(mem_mb * (1 + 0.5 * (attempt - 1)))


class CostModel:
    """The config's ``cost`` section applied to a ``medft.workflow.Grid``."""

    def __init__(self, grid) -> None:
        self.grid = grid
        self.settings = CostSettings.from_config(grid.config.get("cost", {}))
        self._documented: dict[str, dict[str, int]] = {}
        # A train job's cost depends on neither lr nor seed: the paper's 1,728 jobs have 192.
        self._train: dict[tuple[str, str, str], JobCost] = {}

    def model(self, name: str) -> ModelCost:
        """The config's figures for ``name``, else a foundation backbone's own (its entry in
        ``medft.foundation.BACKBONES``), else the default's."""
        from medft.foundation import backbone

        models = self.settings.models
        if name in models:
            return models[name]
        spec = backbone(name)
        return ModelCost(**spec.cost) if spec is not None and spec.cost else models["default"]

    def model_source(self, name: str) -> str:
        """Where ``model``'s speed figures come from, for ``medft plan``'s table."""
        from medft.foundation import backbone

        models = self.settings.models
        if name in DEFAULT_MODELS and models[name] == DEFAULT_MODELS[name]:
            return "published (config.yaml's cost table)"
        if name in models:
            return "the config's cost.models"
        spec = backbone(name)
        if spec is not None and spec.cost:
            return spec.cost_source or "the backbone's entry"
        return "the default row: add the model to cost.models"

    # -- images ---------------------------------------------------------------------------
    def counts(self, dataset: str, model: str) -> tuple[dict[str, int], str]:
        """Images per split, and where the numbers come from: the prepared dataset when it
        exists, else the source's documented (or counted) numbers."""
        meta = Path(self.grid.prepared(dataset, model))
        if meta.exists():
            return json.loads(meta.read_text())["split_counts"], "prepared"
        options = self.grid.dataset_options[dataset]
        if dataset not in self._documented:  # a user's folder is listed once, not per job
            from medft.data.sources import SOURCES

            self._documented[dataset] = SOURCES.get(options.source).planned_counts(options)
        subsampled = [
            key for key in ("train_fraction", "max_images_per_class") if getattr(options, key)
        ]
        return self._documented[dataset], " + ".join(["documented", *subsampled])

    def _seconds(
        self, images: float, img_s: float, model: str, dataset: str | None = None
    ) -> float:
        crop = self.grid.preprocess(model, dataset).crop
        return images / img_s * (crop * crop / REFERENCE_PIXELS)

    # -- jobs -----------------------------------------------------------------------------
    def _epoch_and_once(self, dataset: str, model: str, strategy: str) -> tuple[float, float]:
        """Seconds of one training epoch (train + validation), and of what a job does once
        before its first epoch (a frozen backbone's features, unless shared)."""
        from medft.strategies import STRATEGIES

        n, _ = self.counts(dataset, model)
        speed = self.model(model)
        evaluate = self._seconds(n["val"], speed.infer_img_s, model, dataset)
        frozen_backbone = STRATEGIES.get(strategy).shares_features(self.grid.strategy_options)
        if frozen_backbone and self.grid.features_file(dataset, model, strategy):
            return 0.0, 0.0  # the features job paid for the backbone
        if frozen_backbone:
            return 0.0, self._seconds(sum(n.values()), speed.infer_img_s, model, dataset)
        return self._seconds(n["train"], speed.train_img_s, model, dataset) + evaluate, 0.0

    def epoch_seconds(self, dataset: str, model: str, strategy: str) -> float:
        return self._epoch_and_once(dataset, model, strategy)[0]

    def train(self, dataset: str, model: str, strategy: str) -> JobCost:
        key = (dataset, model, strategy)
        if key not in self._train:
            self._train[key] = self._train_cost(dataset, model, strategy)
        return self._train[key]

    def _train_cost(self, dataset: str, model: str, strategy: str) -> JobCost:
        from medft.strategies import STRATEGIES

        n, _ = self.counts(dataset, model)
        speed = self.model(model)
        epoch, once = self._epoch_and_once(dataset, model, strategy)
        frozen_backbone = STRATEGIES.get(strategy).shares_features(self.grid.strategy_options)
        evaluate = self._seconds(n["val"], speed.infer_img_s, model, dataset)
        final = evaluate + self._seconds(n["test"], speed.infer_img_s, model, dataset)
        epochs = self.grid.config["epochs"]
        fixed = once + final + self.settings.startup_s
        mem = speed.mem_mb + (self._features_mb(n, speed) if frozen_backbone else 0)
        return JobCost(
            upper_s=epochs * epoch + fixed,
            typical_s=min(epochs, self.settings.typical_epochs) * epoch + fixed,
            mem_mb=mem,
        )

    def features(self, dataset: str, model: str) -> JobCost:
        n, _ = self.counts(dataset, model)
        speed = self.model(model)
        seconds = (
            self._seconds(sum(n.values()), speed.infer_img_s, model, dataset)
            + self.settings.startup_s
        )
        return JobCost(seconds, seconds, speed.mem_mb + self._features_mb(n, speed))

    @staticmethod
    def _features_mb(counts: dict[str, int], speed: ModelCost) -> int:
        return math.ceil(sum(counts.values()) * speed.feature_dim * 4 / 2**20)

    # -- scheduler requests (the workflow's ``resources``) -------------------------------------
    def post_hoc(self, dataset: str, model: str, name: str) -> JobCost:
        """An evaluation of saved checkpoints: its image passes at inference speed."""
        from medft.post_hoc import POST_HOC

        n, _ = self.counts(dataset, model)
        speed = self.model(model)
        images = POST_HOC.get(name).passes(n, self.grid.dataset_config(dataset))
        seconds = self._seconds(images, speed.infer_img_s, model, dataset) + self.settings.startup_s
        return JobCost(seconds, seconds, speed.mem_mb + self._features_mb(n, speed))

    def job(self, rule: str, wildcards) -> JobCost:
        """The cost of one ``train``, ``features`` or ``post_hoc`` job."""
        w = wildcards
        if rule == "features":
            return self.features(w.dataset, w.model)
        if rule == "post_hoc":
            return self.post_hoc(w.dataset, w.model, w.evaluation)
        return self.train(w.dataset, w.model, w.strategy)

    def mem_mb(self, rule: str, wildcards, attempt: int) -> int:
        return mem_for_attempt(self.job(rule, wildcards).mem_mb, attempt)

    def runtime_min(self, rule: str, wildcards) -> int:
        """The time limit to ask for: the epoch budget's time with a margin, at most
        ``max_runtime_min`` (a longer run is resumed from its checkpoint by a retry)."""
        minutes = math.ceil(self.job(rule, wildcards).upper_s * self.settings.runtime_margin / 60)
        return max(10, min(minutes, self.settings.max_runtime_min))
