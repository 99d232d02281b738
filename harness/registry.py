"""A typed registry per plug-in kind (models, datasets, tasks, metrics).

Registration is explicit: a decorator on a small factory, and packages import their plug-in modules in their
``__init__``. Unknown names get "did you mean"; duplicate names are an error, not a silent override.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from harness.errors import UserError, available, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry mapping with did-you-mean lookups.

    Args:
        kind: what the registry holds ("model", "dataset", ...), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"Expected a name for the {self.kind} registry entry, but got {obj!r}")
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"Duplicate {self.kind} name {key!r}: it is already registered")
            self._entries[key] = obj
            return obj

        return deco

    def get(self, name: str, where: str = "") -> T:
        """Look up ``name``; unknown names raise :class:`UserError` with suggestions."""
        if name in self._entries:
            return self._entries[name]
        prefix = f"{where}: " if where else ""
        raise UserError(
            f"{prefix}unknown {self.kind} {name!r}.{did_you_mean(name, self._entries)} {available(self._entries)}"
        )

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
