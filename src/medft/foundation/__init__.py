"""Foundation backbones beyond timm and torchvision: the image towers of open_clip models
(OpenAI/LAION CLIP, BiomedCLIP) and Hugging Face ``transformers`` vision models (the DINOv2
family, RAD-DINO), fine-tuned with a new linear head like any other model.

A backbone is one ``Backbone`` entry — its source, the id its weights come from (a hub id,
or a folder the library itself saved), its licence, and what the planner needs without the
weights (input size, depth, parameter count, feature width, throughput with its source) — in
``BACKBONES``; a config's ``backbones:`` section adds entries of its own. Each source
(``SOURCES``) is one ``Source``: the optional extra that installs it, how it loads a tower,
its features and the preprocessing the tower was trained with (``medft.foundation.sources``).
``medft.foundation.towers`` turns a tower into a ``medft.models.BuiltModel``. Not needed by the
CNN grid: nothing here imports open_clip or transformers until such a model is built.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field, fields

from medft.registry import Registry


@dataclass(frozen=True)
class Backbone:
    """One foundation backbone: where it comes from and what planning needs of it."""

    source: str  # a SOURCES name: open_clip or transformers
    # open_clip: "hf-hub:org/repo", "local-dir:/folder" or an architecture with `tag`;
    # transformers: a hub id or a save_pretrained folder.
    id: str
    licence: str = "unknown: check the weights' model card"
    tag: str | None = None  # open_clip's pretrained tag for a built-in architecture ("openai")
    gated: bool = False  # the hub asks to accept a licence and a token before downloading
    # What the planner uses offline (None: read from the model's own config when it is built).
    image_size: int | None = None  # the crop the tower was trained on
    resize: int | None = None  # the shorter side before that crop
    layers: int | None = None  # transformer layers
    params_m: float | None = None  # parameters, millions (the tower)
    # Cost: medft.cost.ModelCost's fields, and where the figures come from.
    cost: dict = field(default_factory=dict)
    cost_source: str = ""

    def record(self) -> dict:
        """What ``metrics.json`` and the model card keep of it."""
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """A library that provides towers: the extra that installs it, its import name."""

    extra: str
    package: str
    module: str  # medft.foundation.sources.<module>: load, features, preprocessing, fetch


SOURCES: Registry[Source] = Registry("backbone source")
SOURCES.register("open_clip")(Source("openclip", "open_clip", "open_clip_source"))
SOURCES.register("transformers")(Source("transformers", "transformers", "transformers_source"))

BACKBONES: Registry[Backbone] = Registry("foundation backbone")

# Throughput: no published figures for these towers on the reference GPU (medft.cost), so
# ResNet-50's (2,470 train / 7,400 inference img/s) scaled by forward GFLOPs at the tower's
# input size (timm's model cards: ResNet-50 4.1, ViT-S/14 at 224 5.5, ViT-B/16 at 224 17.6,
# ViT-B/14 at 518 ~117): an estimate until `bench/training_loop.py --device cuda` measures one.
_SCALED = "estimate: ResNet-50's × its GFLOPs ratio (docs/models.md)"


def _vit(source: str, id: str, size: tuple[int, int], params_m: float, speed: tuple, **extra):
    """A built-in 12-layer ViT tower: (crop, shorter side), parameters (millions), and
    (train img/s, inference img/s, job memory MB, feature width) scaled as above."""
    train, infer, mem_mb, feature_dim = speed
    return Backbone(
        source,
        id,
        image_size=size[0],
        resize=size[1],
        layers=12,
        params_m=params_m,
        cost={
            "train_img_s": train,
            "infer_img_s": infer,
            "mem_mb": mem_mb,
            "feature_dim": feature_dim,
        },
        cost_source=_SCALED,
        **extra,
    )


_VIT_B16_CLIP = ((224, 224), 86.2, (575, 1720, 16000, 512))  # ViT-B/16 at 224, 512-d embedding
BACKBONES.register("dinov2-small")(
    _vit(
        "transformers",
        "facebook/dinov2-small",
        (224, 256),
        22.1,
        (1840, 5520, 12000, 384),
        licence="Apache-2.0",
    )
)
BACKBONES.register("rad-dino")(
    _vit(
        "transformers",
        "microsoft/rad-dino",
        (518, 518),
        86.6,
        (87, 260, 16000, 768),
        licence="MSRLA (Microsoft Research Licence Agreement): research use",
    )
)
BACKBONES.register("biomedclip")(
    _vit(
        "open_clip",
        "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        *_VIT_B16_CLIP,
        licence="MIT",
    )
)
BACKBONES.register("clip-vit-b16")(
    _vit("open_clip", "ViT-B-16", *_VIT_B16_CLIP, tag="openai", licence="MIT (OpenAI CLIP)")
)
_BUILT_IN = set(BACKBONES.names())


def backbone(name: str) -> Backbone | None:
    """The foundation backbone ``name`` is, or None (a timm or torchvision model)."""
    return BACKBONES.get(name) if name in BACKBONES else None


def from_record(record: dict | None) -> Backbone | None:
    return None if record is None else Backbone(**record)


def register_config_backbones(section: dict) -> None:
    """A config's ``backbones:`` (name → Backbone fields) added to ``BACKBONES``; an entry equal
    to one already there is accepted again (a workflow re-reads its config), a different one
    under a registered name is refused."""
    known = {f.name for f in fields(Backbone)}
    for name, entry in (section or {}).items():
        unknown = set(entry) - known
        if unknown:
            raise ValueError(
                f"backbones: {name}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        SOURCES.get(entry.get("source", "?"))
        spec = Backbone(**entry)
        if name in BACKBONES:
            if BACKBONES.get(name) != spec:
                raise ValueError(
                    f"backbones: {name!r} is already a "
                    + ("built-in backbone" if name in _BUILT_IN else "different backbone")
                    + "; give yours another name"
                )
            continue
        BACKBONES.register(name)(spec)


def require_source(name: str, spec: Backbone) -> None:
    """Raise ``ValueError`` in one line when the backbone's library is not installed."""
    source = SOURCES.get(spec.source)
    if importlib.util.find_spec(source.package) is None:
        raise ValueError(
            f"model {name!r} is a {spec.source} backbone, and {source.package} is not "
            f"installed: pip install 'medft[{source.extra}]'"
        )


def source_module(spec: Backbone):
    """The module of the backbone's source: ``load``, ``features``, ``preprocessing``,
    ``fetch``."""
    from importlib import import_module

    return import_module(f"medft.foundation.sources.{SOURCES.get(spec.source).module}")
