"""The ModelBackend interface and the typed-options helper every backend uses."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from codegen_eval.errors import UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode


class ModelBackend(Protocol):
    """Generates text. Never knows which benchmark it serves.

    Built as `Factory(model: str, options: Mapping[str, str], context: BackendContext)`.
    """

    name: str
    # What the returned texts are (records.SampleMode): "completion" for raw continuation, "chat" when the backend
    # wraps prompts in a chat template (the driver then extracts code), "solution" for whole programs.
    mode: SampleMode
    # Whether a returned text includes the stop string that ended it (transformers: yes; the OpenAI API: no).
    # Benchmarks offer only stop hints that are safe to strip when it does not.
    keeps_stop_strings: bool
    # Progress within one generate() call: None, or a callable the runner sets, taking the number of sequences
    # (samples of requests) just finished. A backend that works through a call in several steps (hf: batches;
    # openai: replies) calls it as they finish, so progress bars move during long calls; others never call it.
    progress: Callable[[int], None] | None

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """One Completion per request, in order. Per-request failures go in Completion.error."""
        ...

    def provenance(self) -> Mapping[str, str]:
        """What to record in run.json about the model (resolved path, revision, dtype, device...)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ReportsStats(Protocol):
    """A backend that counts its work (hf, openai): the runner records `run_stats()` in run.json as
    `backend_stats` when generation ends (tokens, tokens/s, retries; openai: reply latency mean/p50/p95)."""

    def run_stats(self) -> Mapping[str, int | float | None]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class BackendContext:
    """What a backend may know beyond its own options.

    `reference` maps problem id -> known-good raw text per turn, from the benchmark; only the reference
    backend reads it. Model backends must ignore it.
    """

    reference: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    problem_ids: tuple[str, ...] = ()


def throughput(completion_tokens: int, seconds: float) -> dict[str, float | None]:
    """The wall time inside generate() (`generate_s`) and `completion_tokens_per_s` over it, for run_stats()."""
    rate = round(completion_tokens / seconds, 2) if seconds > 0 else None
    return {"generate_s": round(seconds, 3), "completion_tokens_per_s": rate}


OptionsT = TypeVar("OptionsT")


def parse_options(cls: type[OptionsT], options: Mapping[str, str], backend: str) -> OptionsT:
    """Build a frozen options dataclass from `-B key=value` strings; unknown keys are rejected."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    for key, raw in options.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise UsageError(f"backend '{backend}' has no option '{key}' (options: {known})")
        values[key] = _coerce(raw, hints[key], key, backend)
    return cls(**values)


def _coerce(raw: str, hint: object, key: str, backend: str) -> object:
    args = typing.get_args(hint)
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if type(None) in args and raw.lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if base is int:
            return int(raw)
        if base is float:
            return float(raw)
    except ValueError:
        raise UsageError(f"backend '{backend}' option '{key}': cannot read {raw!r} as {base}") from None
    return raw
