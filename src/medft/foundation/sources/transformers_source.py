"""Hugging Face ``transformers`` vision backbones (``AutoModel``: DINOv2, RAD-DINO, …): the
model's pooled output (DINOv2's class token after its final norm) enters the head."""

from __future__ import annotations

from medft.data.shards import IMAGENET_MEAN, IMAGENET_STD
from medft.foundation.sources import hub_errors, is_folder


def load(name: str, spec, pretrained: bool):
    from transformers import AutoConfig, AutoModel

    with hub_errors(name, spec):
        if pretrained:
            return AutoModel.from_pretrained(spec.id)
        return AutoModel.from_config(AutoConfig.from_pretrained(spec.id))


def features(tower, images):
    return tower(pixel_values=images).pooler_output


def feature_dim(tower) -> int:
    return tower.config.hidden_size


def preprocessing(tower, spec) -> dict:
    """The model's image processor (saved beside its weights); without one, the config's
    image size and ImageNet's statistics, said so in ``from``."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(spec.id)
    except (OSError, ValueError):
        size = tower.config.image_size
        return {
            "resize": size,
            "crop": size,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "from": f"{spec.id}: no image processor; its config's image_size, ImageNet mean/std",
        }
    size = processor.size
    resize = size.get("shortest_edge") or size.get("height")
    crop_size = getattr(processor, "crop_size", None)
    cropped = crop_size and getattr(processor, "do_center_crop", False)
    crop = crop_size["height"] if cropped else resize
    return {
        "resize": int(resize),
        "crop": int(crop),
        "mean": tuple(float(m) for m in processor.image_mean),
        "std": tuple(float(s) for s in processor.image_std),
        "from": f"{spec.id}'s image processor",
    }


def fetch(name: str, spec) -> str:
    if is_folder(spec.id):
        return spec.id
    from huggingface_hub import snapshot_download

    with hub_errors(name, spec):
        return snapshot_download(spec.id)
