"""open_clip image towers (OpenAI/LAION CLIP, BiomedCLIP): the tower's projected image
embedding — what CLIP compares with text — enters the head."""

from __future__ import annotations

from medft.foundation.sources import hub_errors, is_folder


def _model_name(spec) -> str:
    """open_clip's own name: a folder becomes ``local-dir:``."""
    return f"local-dir:{spec.id}" if is_folder(spec.id) else spec.id


def load(name: str, spec, pretrained: bool):
    import open_clip

    model_name = _model_name(spec)
    schema = ":" in model_name  # hf-hub: or local-dir: carry their own weights
    with hub_errors(name, spec):
        model = open_clip.create_model(
            model_name,
            pretrained=None if schema or not pretrained else spec.tag,
            load_weights=pretrained,
        )
    return model.visual


def features(tower, images):
    return tower(images)


def feature_dim(tower) -> int:
    """The embedding's width: a CLIP VisionTransformer says it; a timm trunk (BiomedCLIP's)
    has it as its projection's width, or the trunk's own without one."""
    if hasattr(tower, "output_dim"):
        return int(tower.output_dim)
    projection = getattr(getattr(tower, "head", None), "proj", None)
    if projection is not None and hasattr(projection, "out_features"):
        return int(projection.out_features)
    return int(tower.trunk.num_features)


def preprocessing(tower, spec) -> dict:
    """open_clip's ``preprocess_cfg`` of the tower: its size (resized on the shorter side and
    centre-cropped, or squashed, to it either way), mean and std."""
    cfg = tower.preprocess_cfg
    size = cfg["size"]
    size = int(size if isinstance(size, int) else size[-1])
    return {
        "resize": size,
        "crop": size,
        "mean": tuple(float(m) for m in cfg["mean"]),
        "std": tuple(float(s) for s in cfg["std"]),
        "from": f"{spec.id}'s open_clip preprocess_cfg",
    }


def fetch(name: str, spec) -> str:
    if is_folder(spec.id):
        return spec.id
    load(name, spec, pretrained=True)  # open_clip downloads into the hub's cache
    return f"{spec.id} (the Hugging Face hub's cache)"
