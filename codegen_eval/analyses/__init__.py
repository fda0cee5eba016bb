"""The CodeGen paper's analyses over runs: `difficulty` (MTPB easy/medium/hard split), `perplexity` (prompt
perplexity, single- vs multi-turn), `plots` (their PNGs), `cli` (`codegen-eval analyze`). docs/analyses.md."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

R = TypeVar("R")


def record_json(record: Any) -> dict[str, Any]:
    """An analysis record's fields, in their order, as JSON: tuples as lists, records by their own to_json()."""
    return {f.name: _json_value(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return value.to_json() if hasattr(value, "to_json") else value


def record_from_json(cls: type[R], d: Mapping[str, Any]) -> R:
    """The record back from record_json, each field read as its annotated type (records by their from_json, if
    they have one); an absent field takes its default, or None if it is optional."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        if f.name in d or f.default is dataclasses.MISSING:
            values[f.name] = _from_json(tp, d.get(f.name) if type(None) in typing.get_args(tp) else d[f.name])
    return cls(**values)


def _from_json(tp: Any, value: Any) -> Any:
    args = typing.get_args(tp)
    if type(None) in args:  # X | None
        return None if value is None else _from_json(args[0], value)
    if typing.get_origin(tp) is tuple:
        if args[-1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(t, v) for t, v in zip(args, value, strict=True))
    if hasattr(tp, "from_json"):
        return tp.from_json(value)
    return record_from_json(tp, value) if isinstance(tp, type) and dataclasses.is_dataclass(tp) else tp(value)
