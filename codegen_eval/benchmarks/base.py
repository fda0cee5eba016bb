"""The Benchmark interface: get prompt -> postprocess generation -> build program -> judge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from codegen_eval.records import ExecutionJob, ExecutionResult, Problem, Sample, SamplingParams, TurnOutput, Verdict


@dataclass(frozen=True, slots=True)
class BenchmarkSettings:
    """Options every benchmark accepts; benchmark-specific ones come as strings in `options`."""

    data_dir: Path | None = None
    timeout_s: float | None = None  # None: the benchmark's own default per program
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StopHints:
    """Stop strings for the backend; postprocess stays authoritative.

    `strippable` are safe whether or not the backend's text includes the stop string that ended it: removing one,
    with everything after it, cannot change what postprocess makes of the text. `kept_only` are safe only when the
    backend keeps it (transformers' stop strings do; the OpenAI API strips it).
    """

    strippable: tuple[str, ...] = ()
    kept_only: tuple[str, ...] = ()

    def for_backend(self, keeps_stop_strings: bool) -> tuple[str, ...]:
        return self.strippable + self.kept_only if keeps_stop_strings else self.strippable


class Benchmark(Protocol):
    """The core contract: what every benchmark implements. Built as `Factory(settings: BenchmarkSettings)`."""

    version: str  # changes whenever prompts or scoring change

    def load(self) -> list[Problem]:
        """All problems, in a stable order. Raises UsageError on unusable data."""

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        """The full context the model continues at `turn`, given postprocessed earlier turns."""

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str: ...

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob: ...

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict: ...


class FullBenchmark(Benchmark, Protocol):
    """The core plus the optional capabilities, as the pipeline sees a benchmark (BenchmarkBase has the defaults)."""

    preload: tuple[str, ...]  # modules every program imports first (SandboxSettings.preload); () for none

    def default_sampling(self, n: int) -> SamplingParams:
        """Sampling used when the user sets none (recorded in run.json as resolved values)."""

    def instruction(self, problem: Problem, turn: int) -> str:
        """The user message for `turn` in chat mode (instruct models)."""

    def subsets(self) -> Mapping[str, frozenset[str]]:
        """Named subsets of problem groups reported beside the full score (e.g. MTPB's scorable subset)."""

    def stop_hints(self, problem: Problem, turn: int) -> StopHints:
        """Where the backend may stop generating `turn`, no earlier than postprocess would cut."""

    def reference(self, problem: Problem) -> tuple[str, ...] | None:
        """Known-good raw text per turn, or None if the benchmark has none for this problem."""

    def provenance(self) -> Mapping[str, str]:
        """Data source, sha256, version and every prompt/scoring choice, for run.json."""

    def data_warnings(self, problems: Sequence[Problem]) -> list[str]:
        """Known defects of the data that concern `problems` (the selected ones), worded for a warning."""


class BenchmarkBase:
    """The optional capabilities' defaults: a benchmark that inherits this implements only the core six."""

    version: str
    preload: tuple[str, ...] = ()

    def default_sampling(self, n: int) -> SamplingParams:
        # Greedy for a single sample; the Codex paper's T=0.8, top-p 0.95 when estimating pass@k from n samples.
        return SamplingParams(temperature=0.0, top_p=1.0) if n == 1 else SamplingParams(0.8, 0.95)

    def instruction(self, problem: Problem, turn: int) -> str:
        return problem.turns[turn].instruction

    def subsets(self) -> Mapping[str, frozenset[str]]:
        return {}

    def stop_hints(self, problem: Problem, turn: int) -> StopHints:
        return StopHints()

    def reference(self, problem: Problem) -> tuple[str, ...] | None:
        return None

    def provenance(self) -> Mapping[str, str]:
        return {"benchmark_version": self.version}

    def data_warnings(self, problems: Sequence[Problem]) -> list[str]:
        return []


OPTIONAL = (
    "preload",
    "default_sampling",
    "instruction",
    "subsets",
    "stop_hints",
    "reference",
    "provenance",
    "data_warnings",
)


class _WithDefaults(BenchmarkBase):
    """A benchmark that does not inherit BenchmarkBase: its own optional members where it has them, else defaults."""

    def __init__(self, inner: Benchmark) -> None:
        self.inner = inner
        self.version = inner.version
        for name in OPTIONAL:
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def load(self) -> list[Problem]:
        return self.inner.load()

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        return self.inner.render(problem, turn, history)

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str:
        return self.inner.postprocess(problem, turn, raw)

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob:
        return self.inner.build_job(problem, sample, nonce)

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict:
        return self.inner.judge(problem, sample, result, nonce)


def with_defaults(benchmark: Benchmark) -> FullBenchmark:
    """`benchmark` with every optional capability (BenchmarkBase's default where it has none)."""
    if isinstance(benchmark, BenchmarkBase):
        return benchmark  # it inherits every default; the core is its own
    return _WithDefaults(benchmark)


def exception_type(stderr: str) -> str | None:
    """The exception type named by the last line of a Python traceback in `stderr`, if any."""
    lines = stderr.strip().splitlines()  # stripped: the last line is not blank
    head = lines[-1].split(":", 1)[0].strip() if lines else ""
    # "ValueError: ...", "pkg.mod.CustomError", "KeyboardInterrupt"
    looks_like_name = head and head.replace(".", "").replace("_", "").isalnum() and head[0].isalpha()
    if looks_like_name and (head.endswith(("Error", "Exception", "Exit", "Interrupt", "Warning")) or "." in head):
        return head.rsplit(".", 1)[-1]
    return None


def classify_failure(result: ExecutionResult) -> Verdict:
    """The outcome of a program that did not pass, from how it ended (shared by benchmarks)."""
    from codegen_eval.records import ExitKind, Outcome

    if result.kind is ExitKind.TIMEOUT:
        return Verdict(Outcome.TIMEOUT, f"exceeded the time limit after {result.duration_s:.1f}s")
    # A limit's Outcome has the name of its ExitKind.
    limit = {ExitKind.MEMORY_LIMIT: "memory", ExitKind.OUTPUT_LIMIT: "output", ExitKind.PROCESS_LIMIT: "process"}
    if result.kind in limit:
        return Verdict(Outcome(result.kind.value), f"exceeded the {limit[result.kind]} limit")
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
