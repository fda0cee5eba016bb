"""One small generic registry with lazy discovery and "did you mean" errors."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from codegen_eval.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to "module:attribute"; the module is imported only when the name is used."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def target(self, name: str) -> str:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"unknown {self.kind} '{name}'{hint} (known: {', '.join(self.names())})")
        return self._entries[name]

    def load(self, name: str) -> Callable[..., T]:
        module_name, _, attr = self.target(name).partition(":")
        factory: Callable[..., T] = getattr(importlib.import_module(module_name), attr)
        return factory
