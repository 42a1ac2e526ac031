"""Parameter-efficient fine-tuning: BitFit (Ben Zaken et al. 2022), LoRA (Hu et al. 2022,
through Hugging Face ``peft``) on convolution and linear layers, and SSF (Lian et al. 2022:
a learned per-channel scale and shift after each of them). Not in the paper: the grid's
``strategies: paper`` leaves them out, ``all`` includes them."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medft.lazy import lazy_module
from medft.strategies import StrategyInfo, option, register_strategy
from medft.strategies.base import EpochContext, Strategy

if TYPE_CHECKING:
    from medft.models import BuiltModel
    from medft.strategies import StrategyOptions

torch = lazy_module("torch")

# peft's names for what it adds around a wrapped layer; SSF's, the same way.
WRAPPED, LORA_PARTS = ".base_layer", (".lora_A.default", ".lora_B.default")
SSF_PARTS = (".ssf_scale", ".ssf_shift")


class BitFit(Strategy):
    """Only the biases (BatchNorm's shifts included) and the new head train."""

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        biases = [n for n in self.named if n.endswith(".bias")]
        self.set_trainable([*biases, *self.model.head_params])


@dataclass(frozen=True)
class LoraOptions:
    lora_rank: int = option(8, "LoRA's rank r: each adapted layer adds B·A of rank r", minimum=1)
    lora_alpha: float = option(16.0, "LoRA's α: the update is scaled by α / r", minimum=0)


class LoRA(Strategy):
    """LoRA: every convolution and linear layer of the backbone (grouped convolutions aside,
    which peft does not adapt), and every ``nn.MultiheadAttention`` whole (open_clip's CLIP
    towers), gains a trainable low-rank update beside its frozen weight; the
    update and the new head train. The final evaluation runs on merged weights (the update
    added into each layer, as deployed), which give the same outputs
    (tests/test_parameter_efficient.py)."""

    @classmethod
    def extend_model(cls, model: BuiltModel, options: StrategyOptions) -> None:
        import peft

        targets = [*adaptable_layers(model), *attention_layers(model)]
        config = peft.LoraConfig(
            r=options.lora_rank,
            lora_alpha=options.lora_alpha,
            target_modules=_exact(targets),
            lora_dropout=0.0,
        )
        peft.inject_adapter_in_model(config, model.module)
        model.blocks = _regroup(model, [n for n, _ in model.module.named_parameters()])

    def adapter_params(self) -> list[str]:
        return [n for n in self.named if any(part in n for part in LORA_PARTS)]

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        self.set_trainable([*self.adapter_params(), *self.model.head_params])

    @contextmanager
    def merged(self):
        layers = [m for m in self.model.module.modules() if hasattr(m, "unmerge")]
        for layer in layers:
            layer.merge()
        try:
            yield
        finally:
            for layer in layers:
                layer.unmerge()


def adaptable_layers(model: BuiltModel) -> list[str]:
    """The backbone's convolution and linear layers (not the new head; grouped convolutions
    aside, and the output projection inside ``nn.MultiheadAttention``, which reads its weight
    directly — ``attention_layers`` adapts those whole)."""
    nn = torch.nn
    inside_attention = {f"{name}.out_proj" for name in attention_layers(model)}
    return [
        name
        for name, module in model.module.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
        and name != model.head
        and name not in inside_attention
        and getattr(module, "groups", 1) == 1
    ]


def attention_layers(model: BuiltModel) -> list[str]:
    """``nn.MultiheadAttention`` modules (open_clip's CLIP towers): LoRA adapts them whole."""
    return [
        name
        for name, module in model.module.named_modules()
        if isinstance(module, torch.nn.MultiheadAttention)
    ]


def _scale_shift_class():
    # Built on use: strategy modules read torch lazily (planning never imports it).
    nn = torch.nn

    class ScaleShiftLayer(nn.Module):
        """``base_layer``'s output scaled and shifted per channel (SSF), starting at identity."""

        def __init__(self, base_layer: nn.Module) -> None:
            super().__init__()
            self.base_layer = base_layer
            channels = getattr(base_layer, "out_channels", None) or base_layer.out_features
            self.ssf_scale = nn.Parameter(torch.ones(channels))
            self.ssf_shift = nn.Parameter(torch.zeros(channels))

        def forward(self, x):
            y = self.base_layer(x)
            if y.dim() == 4:  # (N, C, H, W)
                return y * self.ssf_scale[:, None, None] + self.ssf_shift[:, None, None]
            return y * self.ssf_scale + self.ssf_shift  # channels last (linear layers)

    return ScaleShiftLayer


class SSF(Strategy):
    """SSF: a per-channel scale and shift after every convolution and linear layer of the
    backbone (grouped convolutions aside, as for LoRA), starting at identity; they and the new
    head train, the pretrained weights stay frozen."""

    @classmethod
    def extend_model(cls, model: BuiltModel, options: StrategyOptions) -> None:
        layer = _scale_shift_class()
        for name in adaptable_layers(model):
            parent, _, attr = name.rpartition(".")
            owner = model.module.get_submodule(parent) if parent else model.module
            setattr(owner, attr, layer(getattr(owner, attr)))
        model.blocks = _regroup(model, [n for n, _ in model.module.named_parameters()])

    def on_epoch_start(self, ctx: EpochContext) -> None:
        self.epoch = ctx.epoch
        adapters = [n for n in self.named if n.endswith(SSF_PARTS)]
        self.set_trainable([*adapters, *self.model.head_params])


def _exact(names: list[str]) -> str:
    """A regex that matches exactly these module names (peft matches a string in full)."""
    import re

    return "|".join(re.escape(name) for name in names)


def _regroup(model: BuiltModel, names: list[str]) -> list:
    """The model's blocks over its new parameter names: a wrapped layer's weight keeps its
    block, and its adapter joins it."""
    from medft.models import Block

    block_of = {p: block.name for block in model.blocks for p in block.params}
    for param, block in list(block_of.items()):  # each layer's block, by the layer's path
        parts = param.split(".")
        for end in range(1, len(parts)):
            block_of.setdefault(".".join(parts[:end]), block)

    def original(name: str) -> str:
        """The parameter (or, for an adapter, the adapted layer) ``name`` was before."""
        name = name.replace(WRAPPED, "")
        for part in (*LORA_PARTS, *SSF_PARTS):
            if part in name:
                return name.split(part)[0]
        return name

    grouped: dict[str, list[str]] = {block.name: [] for block in model.blocks}
    for name in names:
        grouped[block_of[original(name)]].append(name)
    return [Block(block, tuple(params)) for block, params in grouped.items()]


register_strategy(
    StrategyInfo("BitFit", BitFit, "biases (BatchNorm shifts included) and the head", order=10)
)
register_strategy(
    StrategyInfo(
        "SSF",
        SSF,
        "a per-channel scale and shift after every convolution and linear layer, and the head",
        order=12,
    )
)
register_strategy(
    StrategyInfo(
        "LoRA",
        LoRA,
        "low-rank updates of every convolution and linear layer, and the head",
        options=LoraOptions,
        order=11,
        caption=lambda o: f"LoRA rank {o.lora_rank}, α {o.lora_alpha:g}",
    )
)
