"""The CodeGen paper's analyses over runs: `difficulty` (MTPB easy/medium/hard split), `perplexity` (prompt
perplexity, single- vs multi-turn), `plots` (their PNGs), `cli` (`codegen-eval analyze`). docs/analyses.md."""

from __future__ import annotations

import dataclasses
from typing import Any


def record_json(record: Any) -> dict[str, Any]:
    """An analysis record's fields, in their order, as JSON: tuples as lists, records by their own to_json()."""
    return {f.name: _json_value(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return value.to_json() if hasattr(value, "to_json") else value
