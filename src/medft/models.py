"""Building models: ImageNet backbones with a new head, and their parameter blocks.

``create_model(name, num_classes, weights)`` returns a ``BuiltModel``: the module, its
parameter blocks in ``named_parameters`` order (docs/protocol.md: resnet50 6, densenet121 9,
vgg19 6, timm models by ``group_matcher(coarse=True)``), the name of the new head, and the
preprocessing its pretrained weights expect. The three paper models come from torchvision,
foundation backbones (``medft.foundation``: open_clip, transformers) from their source; any
other name is looked up in timm.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module

import timm
import torch
from torch import nn

from medft.architectures import MODELS, model_preprocess, timm_preprocess
from medft.data.preprocess import Preprocess
from medft.data.shards import IMAGENET_MEAN, IMAGENET_STD
from medft.errors import DataError
from medft.weights import BUILTIN_SOURCES, load_weights_into


@dataclass(frozen=True)
class Block:
    name: str
    params: tuple[str, ...]


@dataclass
class BuiltModel:
    module: nn.Module
    blocks: list[Block]
    head: str  # module path of the new, randomly initialised linear layer
    preprocess: Preprocess
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # What metrics.json and the report keep of where the model and its preprocessing came
    # from: {"preprocessing": {resize, crop, mean, std, from}, "backbone": {...} or absent}.
    provenance: dict = field(default_factory=dict)

    @property
    def head_module(self) -> nn.Linear:
        return self.module.get_submodule(self.head)

    @property
    def head_params(self) -> list[str]:
        return [f"{self.head}.{n}" for n, _ in self.head_module.named_parameters()]


def _replace_module(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, attr, new)


def _blocks_from_patterns(model: nn.Module, patterns) -> list[Block]:
    names = [n for n, _ in model.named_parameters()]
    blocks = []
    for block_name, pattern in patterns:
        regex = re.compile(pattern)
        blocks.append(Block(block_name, tuple(n for n in names if regex.search(n))))
    return blocks


# A ViT/DeiT's transformer blocks form this many blocks between the patch embedding and the
# head: 6 blocks in all, as ResNet-50 and VGG-19 have in the paper, so that gradual unfreezing
# and Auto-RGN see stages of a few transformer blocks each rather than 12 single ones.
TRANSFORMER_GROUPS = 4


def _blocks_from_timm(model: nn.Module) -> list[Block]:
    from timm.models import group_parameters
    from timm.models.vision_transformer import VisionTransformer

    groups = group_parameters(model, model.group_matcher(coarse=True))
    blocks = [Block(f"group{gid}", tuple(params)) for gid, params in sorted(groups.items())]
    if isinstance(model, VisionTransformer) and len(blocks) > TRANSFORMER_GROUPS + 2:
        return _grouped_transformer(blocks)
    return blocks


def _grouped_transformer(blocks: list[Block]) -> list[Block]:
    """patch embedding (with the class token and position embedding), the transformer blocks
    in ``TRANSFORMER_GROUPS`` contiguous groups (the earlier ones one larger where they do not
    divide evenly), the head."""
    stem, *middle, head = blocks
    size, extra = divmod(len(middle), TRANSFORMER_GROUPS)
    grouped, start = [], 0
    for k in range(TRANSFORMER_GROUPS):
        end = start + size + (k < extra)
        grouped.append(
            Block(f"transformer{k}", tuple(p for b in middle[start:end] for p in b.params))
        )
        start = end
    return [Block("patch_embed", stem.params), *grouped, Block("head", head.params)]


def check_blocks(model: nn.Module, blocks: list[Block]) -> None:
    """Every parameter in exactly one block, blocks in ``named_parameters`` order."""
    names = [n for n, _ in model.named_parameters()]
    flat = [p for block in blocks for p in block.params]
    if flat != names:
        missing = sorted(set(names) - set(flat))
        doubled = sorted({p for p in flat if flat.count(p) > 1})
        raise AssertionError(
            f"bad block partition: missing {missing[:5]}, in two blocks {doubled[:5]}, "
            "or out of named_parameters order"
        )


@contextmanager
def _downloading(model: str, weights: str):
    """A failed weights download names the offline choices instead of the hub's error."""
    try:
        yield
    except OSError as error:  # urllib, requests and huggingface_hub errors all are
        from medft.weights import OFFLINE

        offline = [n for n in OFFLINE.names() if OFFLINE.get(n).model == model]
        raise DataError(
            f"cannot download the {weights!r} weights of {model} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no network?'}). Offline, use "
            "`weights: PATH/TO/state_dict.pth` (a file downloaded elsewhere), "
            + (f"`weights: {offline[0]}`, " if offline else "")
            + "or `weights: none`; `medft list weights` lists every choice"
        ) from None


def _build_torchvision(name: str, weights: str, num_classes: int, seed: int):
    spec = MODELS.get(name)
    if weights.startswith("timm:"):
        raise ValueError(f"timm tags do not apply to the torchvision model {name!r}")
    with _downloading(name, weights):
        module_name, function = spec.builder.split(":")
        builder = getattr(import_module(module_name), function)
        module = builder(weights=spec.imagenet_weights if weights == "imagenet" else None)
    if weights not in BUILTIN_SOURCES:
        load_weights_into(module, name, weights, spec.head)
    in_features = module.get_submodule(spec.head).in_features
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        _replace_module(module, spec.head, nn.Linear(in_features, num_classes))
    blocks = _blocks_from_patterns(module, spec.block_patterns)
    return module, blocks, spec.head, Preprocess(spec.resize, 224), IMAGENET_MEAN, IMAGENET_STD


def _build_timm(name: str, weights: str, num_classes: int, seed: int):
    pretrained = weights == "imagenet" or weights.startswith("timm:")
    arch = f"{name}.{weights[5:]}" if weights.startswith("timm:") else name
    with _downloading(name, weights):
        module = timm.create_model(arch, pretrained=pretrained)
    head = next(n for n, m in module.named_modules() if m is module.get_classifier())
    if not pretrained and weights != "none":
        load_weights_into(module, name, weights, head)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module.reset_classifier(num_classes)
    cfg = module.pretrained_cfg
    return (
        module,
        _blocks_from_timm(module),
        head,
        timm_preprocess(cfg),
        tuple(cfg["mean"]),
        tuple(cfg["std"]),
    )


def create_model(
    name: str,
    num_classes: int,
    weights: str = "imagenet",
    seed: int = 0,
    backbone: dict | None = None,
) -> BuiltModel:
    """Build ``name`` with ``weights`` (see ``medft.weights``) and a new ``num_classes`` head.

    The head is initialised under ``torch.manual_seed(seed)``, so the seed fixes it.
    ``backbone``: a foundation backbone's record (``medft.foundation.Backbone.record``) where
    ``name`` was defined by a config's ``backbones:``, so a job process needs no registry.
    """
    from medft.foundation import backbone as registered
    from medft.foundation import from_record

    spec = from_record(backbone) or registered(name)
    if spec is not None:
        from medft.foundation.towers import build_tower

        parts, preprocessing = build_tower(name, spec, weights, num_classes, seed)
        provenance = {
            "source": spec.source,
            "backbone": spec.record(),
            "preprocessing": preprocessing,
        }
        model = BuiltModel(*parts, provenance=provenance)
    else:
        model_preprocess(name)  # rejects unknown names, listing the choices
        build = _build_torchvision if name in MODELS else _build_timm
        model = BuiltModel(*build(name, weights, num_classes, seed))
        model.provenance = {
            "source": "torchvision" if name in MODELS else "timm",
            "preprocessing": _preprocessing_record(name, model),
        }
    check_blocks(model.module, model.blocks)
    return model


def _preprocessing_record(name: str, model: BuiltModel) -> dict:
    return {
        "resize": model.preprocess.resize,
        "crop": model.preprocess.crop,
        "mean": list(model.mean),
        "std": list(model.std),
        "from": "torchvision's ImageNet weights" if name in MODELS else "timm's pretrained_cfg",
    }
