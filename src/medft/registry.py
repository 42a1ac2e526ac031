"""A tiny name → object registry, so each strategy, model or data source is added in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Case-insensitive names → objects; an unknown name raises ``ValueError`` listing all.
    Names come in registration order, or sorted by ``order`` of their objects."""

    def __init__(self, kind: str, order: Callable[[T], Any] | None = None) -> None:
        self.kind = kind
        self.order = order
        self._entries: dict[str, T] = {}
        self._display: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            key = name.lower()
            if key in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[key] = obj
            self._display[key] = name
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name.lower()]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def canonical(self, name: str) -> str:
        """The registered spelling of ``name`` (e.g. ``g-lf`` → ``G-LF``)."""
        self.get(name)
        return self._display[name.lower()]

    def names(self) -> list[str]:
        if self.order is None:
            return list(self._display.values())
        return sorted(self._display.values(), key=lambda name: self.order(self.get(name)))

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._entries
