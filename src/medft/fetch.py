"""``medft fetch-weights``: every model's weights of a config into the local caches, on a
machine with internet (a cluster's login node), so compute nodes without it need none.

A foundation backbone's hub files go to the Hugging Face cache (``HF_HOME``); timm weights
too; torchvision's to torch's hub folder (``TORCH_HOME``). Share those folders with the
compute nodes, and set ``HF_HUB_OFFLINE=1`` there so nothing tries the network."""

from __future__ import annotations

from collections.abc import Iterator


def fetch_weights(grid) -> Iterator[tuple[str, str]]:
    """(model, where its weights are now) for each model of ``grid``'s config."""
    from medft.foundation import backbone, source_module
    from medft.models import create_model

    weights = grid.config["weights"]
    for model in grid.config["models"]:
        spec = backbone(model)
        if spec is not None:
            yield model, source_module(spec).fetch(model, spec)
        elif weights == "imagenet" or weights.startswith("timm:"):
            create_model(model, 2, weights)  # the library downloads into its cache
            yield model, f"{weights} weights, in the library's cache"
        elif weights == "none":
            yield model, "nothing to fetch (weights: none)"
        else:
            yield model, f"nothing to fetch (weights: {weights}, a local file or package)"
