"""The Benchmark interface: get prompt -> postprocess generation -> build program -> judge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from codegen_eval.records import (
    ExecutionJob,
    ExecutionResult,
    Problem,
    Sample,
    TurnOutput,
    Verdict,
)


@dataclass(frozen=True, slots=True)
class BenchmarkSettings:
    """Options every benchmark accepts; benchmark-specific ones come as strings in `options`."""

    data_dir: Path | None = None
    turns: str = "multi"  # multi | single (benchmarks with one turn ignore it)
    timeout_s: float | None = None  # None: the benchmark's own default per program
    options: Mapping[str, str] = field(default_factory=dict)


class Benchmark(Protocol):
    """Built as `Factory(settings: BenchmarkSettings)`."""

    name: str
    version: str  # changes whenever prompts or scoring change

    def load(self) -> list[Problem]:
        """All problems, in a stable order. Raises UsageError on unusable data."""
        ...

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        """The full context the model continues at `turn`, given postprocessed earlier turns."""
        ...

    def stop_sequences(self, problem: Problem, turn: int) -> tuple[str, ...]:
        """Stop hints for the backend; postprocess stays authoritative."""
        ...

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str: ...

    def reference(self, problem: Problem) -> tuple[str, ...] | None:
        """Known-good raw text per turn, or None if the benchmark has none for this problem."""
        ...

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob: ...

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict: ...

    def provenance(self) -> Mapping[str, str]:
        """Data source, sha256, version and every prompt/scoring choice, for run.json."""
        ...
