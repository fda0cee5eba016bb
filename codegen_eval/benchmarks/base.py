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
    SamplingParams,
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
    preload: tuple[str, ...]  # modules every program imports first (SandboxSettings.preload); () for none

    def load(self) -> list[Problem]:
        """All problems, in a stable order. Raises UsageError on unusable data."""
        ...

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        """The full context the model continues at `turn`, given postprocessed earlier turns."""
        ...

    def default_sampling(self, n: int) -> SamplingParams:
        """Sampling used when the user sets none (recorded in run.json as resolved values)."""
        ...

    def instruction(self, problem: Problem, turn: int) -> str:
        """The user message for `turn` in chat mode (instruct models)."""
        ...

    def subsets(self) -> Mapping[str, frozenset[str]]:
        """Named subsets of problem groups reported beside the full score (e.g. MTPB's scorable subset)."""
        ...

    def stop_sequences(self, problem: Problem, turn: int, *, kept: bool = True) -> tuple[str, ...]:
        """Stop hints for the backend; postprocess stays authoritative.

        `kept`: whether the backend's text includes the stop string that ended it (transformers' stop strings
        do; the OpenAI API strips it). With kept=False return only hints whose removal, with everything after
        them, cannot change what postprocess makes of the text.
        """
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


def exception_type(stderr: str) -> str | None:
    """The exception type named by the last line of a Python traceback in `stderr`, if any."""
    for line in reversed(stderr.strip().splitlines()):
        line = line.strip()
        if not line:
            continue
        head = line.split(":", 1)[0].strip()
        # "ValueError: ...", "pkg.mod.CustomError", "KeyboardInterrupt"
        looks_like_name = head and head.replace(".", "").replace("_", "").isalnum() and head[0].isalpha()
        if looks_like_name and (head.endswith(("Error", "Exception", "Exit", "Interrupt", "Warning")) or "." in head):
            return head.rsplit(".", 1)[-1]
        return None
    return None


def classify_failure(result: ExecutionResult) -> Verdict:
    """The outcome of a program that did not pass, from how it ended (shared by benchmarks)."""
    from codegen_eval.records import ExitKind, Outcome

    if result.kind is ExitKind.TIMEOUT:
        return Verdict(Outcome.TIMEOUT, f"exceeded the time limit after {result.duration_s:.1f}s")
    if result.kind is ExitKind.MEMORY_LIMIT:
        return Verdict(Outcome.MEMORY_LIMIT, "exceeded the memory limit")
    if result.kind is ExitKind.OUTPUT_LIMIT:
        return Verdict(Outcome.OUTPUT_LIMIT, "exceeded the output limit")
    if result.kind is ExitKind.PROCESS_LIMIT:
        return Verdict(Outcome.PROCESS_LIMIT, "exceeded the process limit")
    if result.kind is ExitKind.SIGNALED:
        import signal as _signal

        try:
            name = _signal.Signals(result.signal or 0).name
        except ValueError:
            name = f"signal {result.signal}"
        return Verdict(Outcome.KILLED, f"killed by {name}")
    exc = exception_type(result.stderr)
    if exc == "MemoryError":
        return Verdict(Outcome.MEMORY_LIMIT, "MemoryError")
    if exc == "AssertionError":
        return Verdict(Outcome.FAILED, "AssertionError")
    if exc is not None and exc != "SystemExit":
        return Verdict(Outcome.ERROR, exc)
    if result.exit_code == 0:
        return Verdict(Outcome.FAILED, "exited before the checks completed")
    return Verdict(Outcome.FAILED, f"exit code {result.exit_code}")
