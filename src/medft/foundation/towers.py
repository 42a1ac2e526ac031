"""A foundation backbone's image tower with a new linear head, as a ``medft.models.BuiltModel``:
its parameter blocks from the tower's transformer layers (the embeddings, the layers in
``TRANSFORMER_GROUPS`` contiguous groups as for timm's ViTs, then the final norm and
projection with the head), so gradual unfreezing and Auto-RGN give each group its own lr."""

from __future__ import annotations

import torch
from torch import nn

from medft.data.preprocess import Preprocess
from medft.foundation import Backbone, require_source, source_module


class TowerClassifier(nn.Module):
    """``head(features(tower, images))``: the tower's own features, a new linear head."""

    def __init__(self, tower: nn.Module, features, width: int, num_classes: int) -> None:
        super().__init__()
        self.tower = tower
        self._features = features
        self.head = nn.Linear(width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self._features(self.tower, images))


def layer_list(tower: nn.Module) -> str:
    """The path of the tower's transformer layers: its longest list (``nn.ModuleList`` or
    ``nn.Sequential``) of one kind of module (DINOv2's ``encoder.layer``, CLIP's
    ``transformer.resblocks``, a timm trunk's ``trunk.blocks``)."""
    candidates = [
        (len(module), path)
        for path, module in tower.named_modules()
        if isinstance(module, nn.ModuleList | nn.Sequential)
        and len(module) > 1
        and len({type(m) for m in module}) == 1
    ]
    if not candidates:
        raise ValueError(f"{type(tower).__name__}: no list of transformer layers found")
    return max(candidates)[1]


def tower_blocks(module: TowerClassifier):
    """Embeddings, the layers in ``TRANSFORMER_GROUPS`` groups, and the rest with the head,
    in ``named_parameters`` order."""
    from medft.models import TRANSFORMER_GROUPS, Block, _grouped_transformer

    prefix = f"tower.{layer_list(module.tower)}."
    names = [n for n, _ in module.named_parameters()]
    inside = [i for i, n in enumerate(names) if n.startswith(prefix)]
    first, last = inside[0], inside[-1]
    per_layer: dict[int, list[str]] = {}
    for n in names[first : last + 1]:
        per_layer.setdefault(int(n[len(prefix) :].split(".")[0]), []).append(n)
    layers = [Block(f"layer{i}", tuple(p)) for i, p in sorted(per_layer.items())]
    stem, tail = Block("embeddings", tuple(names[:first])), Block("head", tuple(names[last + 1 :]))
    if len(layers) <= TRANSFORMER_GROUPS:
        return [stem, *layers, tail]
    blocks = _grouped_transformer([stem, *layers, tail])
    return [stem, *blocks[1:]]


def build_tower(name: str, spec: Backbone, weights: str, num_classes: int, seed: int):
    """The parts of a ``BuiltModel`` (module, blocks, head, preprocess, mean, std) and the
    preprocessing record for ``metrics.json``. ``weights``: ``imagenet`` (the default: the
    backbone's own pretrained weights) or ``none`` (its architecture, randomly initialised)."""
    if weights not in ("imagenet", "none"):
        raise ValueError(
            f"model {name!r}: a foundation backbone's weights come from its `id` (a hub id or "
            "a folder the library saved); use weights: imagenet (its own) or none"
        )
    require_source(name, spec)
    source = source_module(spec)
    tower = source.load(name, spec, pretrained=weights == "imagenet")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = TowerClassifier(tower, source.features, source.feature_dim(tower), num_classes)
    prep = source.preprocessing(tower, spec)
    return (
        module,
        tower_blocks(module),
        "head",
        Preprocess(prep["resize"], prep["crop"]),
        tuple(prep["mean"]),
        tuple(prep["std"]),
    ), prep
