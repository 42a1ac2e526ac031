"""The models medft knows, without importing torch: names, the torchvision builders as
import paths, heads, parameter blocks as name patterns, input sizes.

The planner reads this module (a config's models checked, each job's input size and block
count); ``medft.models`` builds the models. timm is consulted only for a name that is not
registered here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache

from medft.data.preprocess import Preprocess
from medft.registry import Registry


@dataclass(frozen=True)
class TorchvisionSpec:
    """A torchvision model: its builder, the ImageNet weights enum, blocks as name patterns."""

    # "module:function", imported when the model is built.
    builder: str
    imagenet_weights: str
    head: str
    block_patterns: tuple[tuple[str, str], ...]  # (block name, regex on the parameter name)
    resize: int


MODELS: Registry[TorchvisionSpec] = Registry("model")

MODELS.register("resnet50")(
    TorchvisionSpec(
        "torchvision.models:resnet50",
        "ResNet50_Weights.IMAGENET1K_V2",
        head="fc",
        block_patterns=(
            ("stem", r"^(conv1|bn1)\."),
            *((f"layer{i}", rf"^layer{i}\.") for i in range(1, 5)),
            ("fc", r"^fc\."),
        ),
        resize=232,
    )
)
MODELS.register("densenet121")(
    TorchvisionSpec(
        "torchvision.models:densenet121",
        "DenseNet121_Weights.IMAGENET1K_V1",
        head="classifier",
        block_patterns=(
            ("stem", r"^features\.(conv0|norm0)\."),
            ("denseblock1", r"^features\.denseblock1\."),
            ("transition1", r"^features\.transition1\."),
            ("denseblock2", r"^features\.denseblock2\."),
            ("transition2", r"^features\.transition2\."),
            ("denseblock3", r"^features\.denseblock3\."),
            ("transition3", r"^features\.transition3\."),
            ("denseblock4", r"^features\.denseblock4\."),
            ("norm5_classifier", r"^(features\.norm5|classifier)\."),
        ),
        resize=256,
    )
)
# VGG-19's conv stages end at the max-pools: features indices 0-4, 5-9, 10-18, 19-27, 28-36.
_VGG_STAGES = ((0, 4), (5, 9), (10, 18), (19, 27), (28, 36))
MODELS.register("vgg19")(
    TorchvisionSpec(
        "torchvision.models:vgg19",
        "VGG19_Weights.IMAGENET1K_V1",
        head="classifier.6",
        block_patterns=(
            *(
                (f"conv{i + 1}", r"^features\.(" + "|".join(map(str, range(a, b + 1))) + r")\.")
                for i, (a, b) in enumerate(_VGG_STAGES)
            ),
            ("classifier", r"^classifier\."),
        ),
        resize=256,
    )
)


def model_names() -> list[str]:
    """The registered models; any ``timm.list_models()`` name works as well."""
    return MODELS.names()


def check_model_name(name: str) -> None:
    """Raise ``ValueError`` for a name that is neither registered nor a timm model, or a
    foundation backbone whose library is not installed."""
    from medft.foundation import BACKBONES, require_source

    if name in BACKBONES:
        require_source(name, BACKBONES.get(name))
        return
    if name in MODELS:
        return
    import timm

    if name in timm.list_models():
        return
    close = difflib.get_close_matches(
        name, [*model_names(), *BACKBONES.names(), *timm.list_models()], n=3
    )
    raise ValueError(
        f"unknown model {name!r}"
        + (f" (did you mean {' or '.join(close)}?)" if close else "")
        + f"; choose one of: {', '.join([*model_names(), *BACKBONES.names()])}, a config's "
        "`backbones:` entry, or any name from timm.list_models()"
    )


def model_preprocess(name: str) -> Preprocess:
    """The resize/crop a model's pretrained weights expect, without building the model."""
    from medft.foundation import backbone

    check_model_name(name)
    spec = backbone(name)
    if spec is not None and spec.image_size:
        return Preprocess(spec.resize or spec.image_size, spec.image_size)
    if spec is not None:  # a user's backbone that did not say: its own config says
        return _built(name).preprocess
    if name in MODELS:
        return Preprocess(MODELS.get(name).resize, 224)
    import timm

    return timm_preprocess(timm.models.get_pretrained_cfg(name).to_dict())


def timm_preprocess(cfg: dict) -> Preprocess:
    crop = cfg["input_size"][-1]
    return Preprocess(int(round(crop / (cfg.get("crop_pct") or 0.875))), crop)


@cache  # a model's architecture does not change within a process
def block_count(name: str) -> int:
    """How many parameter blocks ``name`` has, without building it at full size: a registered
    model's patterns, or a timm model built on the meta device (no memory, no weights)."""
    from medft.foundation import backbone

    if name in MODELS:
        return len(MODELS.get(name).block_patterns)
    spec = backbone(name)
    if spec is not None and spec.layers:
        from medft.models import TRANSFORMER_GROUPS

        return 2 + min(spec.layers, TRANSFORMER_GROUPS)  # medft.foundation.towers.tower_blocks
    return len(_built(name).blocks)


@cache
def _built(name: str):
    """``name`` with random weights: its blocks and preprocessing. On the meta device (no
    memory) but for a foundation backbone, whose libraries copy tensors while building."""
    import torch

    from medft.foundation import backbone
    from medft.models import create_model

    if backbone(name) is not None:
        return create_model(name, 2, "none")
    with torch.device("meta"):
        return create_model(name, 2, "none")
