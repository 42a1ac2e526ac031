"""One module per backbone source (``medft.foundation.SOURCES``), each with the same four
functions: ``load(spec, pretrained)`` the image tower, ``features(tower, images)`` what
enters the head, ``preprocessing(tower, spec)`` the resize, crop, mean and std the tower was
trained with (from its own config), ``fetch(spec)`` the weights into the local cache."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from medft.errors import DataError


def is_folder(reference: str) -> bool:
    return Path(reference).expanduser().is_dir()


@contextmanager
def hub_errors(name: str, spec):
    """A failed hub download in one line: a gated model names its licence and the token it
    needs; a missing cache on an offline node names ``medft fetch-weights``."""
    try:
        yield
    except OSError as error:  # huggingface_hub's errors (gated, not found, offline) are
        text = str(error)
        if spec.gated or "gated" in text.lower() or "401" in text or "403" in text:
            raise DataError(
                f"model {name!r}: {spec.id} is gated: accept its licence ({spec.licence}) at "
                f"https://huggingface.co/{spec.id.removeprefix('hf-hub:')} and log in "
                "(`hf auth login`, or HF_TOKEN) on the machine that downloads it"
            ) from None
        raise DataError(
            f"model {name!r}: cannot load {spec.id} ({type(error).__name__}: "
            f"{text.splitlines()[0] if text else 'no network?'}). On a node without internet, "
            "run `medft fetch-weights --configfile …` on one with it first (the hub's cache "
            "is shared), or set the backbone's `id:` to a folder saved by the library"
        ) from None
