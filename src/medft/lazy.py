"""Modules imported on first use. The strategy modules register themselves when imported, and
the planner imports them to read those entries; torch loads only when training code runs."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


class _Deferred(ModuleType):
    """Stands for a module and imports it at the first attribute read. It never enters
    ``sys.modules``, so every ordinary ``import`` of the module elsewhere is untouched (the
    standard library's ``LazyLoader`` does enter it, and torchvision's imports of torch's
    submodules then fail)."""

    def __getattr__(self, attribute: str):
        module = import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attribute)


def lazy_module(name: str) -> ModuleType:
    """``name``, imported when one of its attributes is first read."""
    return _Deferred(name)
