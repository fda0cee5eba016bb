"""The CodeGen paper's analyses over runs: `difficulty` (MTPB easy/medium/hard split), `perplexity` (prompt
perplexity, single- vs multi-turn), `plots` (their PNGs), `cli` (`codegen-eval analyze`). docs/analyses.md."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from codegen_eval.summaries import encode_json, read_record

R = TypeVar("R")


def record_json(record: Any) -> dict[str, Any]:
    """An analysis record's fields, in their order, as JSON (a None written as null): the run records' codec."""
    return {f.name: encode_json(getattr(record, f.name)) for f in dataclasses.fields(record)}


def record_from_json(cls: type[R], d: Mapping[str, Any]) -> R:
    """The record back from record_json, each field read as its annotated type (records by their from_json, if
    they have one); an absent or null field takes its default."""
    return read_record(cls, d)
