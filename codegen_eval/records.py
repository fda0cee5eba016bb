"""Frozen records passed between the three interfaces (backend, benchmark, sandbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Outcome(StrEnum):
    """Closed set of verdicts for one program. A program's misbehaviour is data, never an exception."""

    PASSED = "passed"
    FAILED = "failed"  # ran to completion but a check failed (AssertionError, wrong value)
    ERROR = "error"  # exception or syntax error; detail carries the exception type
    TIMEOUT = "timeout"  # wall-clock or CPU-time limit
    MEMORY_LIMIT = "memory_limit"  # address-space limit hit (MemoryError) or OOM-killed
    OUTPUT_LIMIT = "output_limit"  # stdout/stderr beyond the cap
    PROCESS_LIMIT = "process_limit"  # could not fork (process limit)
    KILLED = "killed"  # died from a signal not attributable to a limit
    GENERATION_ERROR = "generation_error"  # the backend could not produce text for this item


@dataclass(frozen=True, slots=True)
class Turn:
    """One natural-language turn of a problem (HumanEval has one)."""

    instruction: str
    max_new_tokens: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One scorable item. `payload` holds the benchmark's own typed record (only that benchmark reads it)."""

    id: str
    group: str
    turns: tuple[Turn, ...]
    payload: object = field(compare=False, repr=False, default=None)
    category: str = ""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to sample. temperature 0 means greedy (then n must be 1)."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Text in. `prompt` is the raw context to continue; `messages` is set instead in chat mode."""

    key: str  # opaque id, for logs and error messages only
    prompt: str
    max_new_tokens: int
    n: int = 1
    # Which item this serves. Model backends ignore these; reference/replay backends look answers up by them.
    problem_id: str = ""
    turn: int = 0
    first_sample: int = 0  # the texts are samples first_sample .. first_sample + n - 1
    sampling: SamplingParams = SamplingParams()
    stop: tuple[str, ...] = ()  # a hint; the benchmark's postprocess is authoritative
    messages: tuple[ChatMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    """Text out: exactly `request.n` texts, or an error that becomes a GENERATION_ERROR outcome."""

    texts: tuple[str, ...]
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # What the backend changed about the request, e.g. a max_new_tokens cut to fit the context.
    notes: tuple[str, ...] = ()


# completion: each turn's text continues the rendered prompt (the CodeGen protocol);
# chat: the text is code extracted from an instruct model's reply and stands on its own (not paper-comparable);
# solution: the text is a whole program already (evalplus "solution", bigcode generations).
SampleMode = Literal["completion", "chat", "solution"]


@dataclass(frozen=True, slots=True)
class TurnOutput:
    raw: str
    text: str  # after the benchmark's postprocess


@dataclass(frozen=True, slots=True)
class Sample:
    """One attempt (index `index` of n) at one problem: per-turn completions, raw and postprocessed."""

    problem_id: str
    index: int
    turns: tuple[TurnOutput, ...]
    mode: SampleMode = "completion"
    error: str | None = None  # generation failed; the sample is scored GENERATION_ERROR


@dataclass(frozen=True, slots=True)
class ExecutionJob:
    """Program in. The sandbox knows nothing else about it."""

    program: str
    timeout_s: float
    memory_mb: int | None = None  # None: the sandbox's default


class ExitKind(StrEnum):
    EXITED = "exited"  # normal exit, see exit_code
    SIGNALED = "signaled"  # killed by a signal, see signal
    TIMEOUT = "timeout"  # wall clock or CPU limit
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    PROCESS_LIMIT = "process_limit"


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """Result out. Infrastructure faults raise SandboxError instead."""

    kind: ExitKind
    exit_code: int | None
    signal: int | None
    stdout: str  # the whole of stdout, or its first output_bytes when truncated
    stderr: str  # the last bytes of stderr (a tail of at most 32 KiB)
    duration_s: float
    stdout_truncated: bool = False  # bytes were dropped between `stdout` and `stdout_tail`
    stdout_tail: str = ""  # when truncated: the last bytes of stdout (what a program printed last)
    stderr_truncated: bool = False  # `stderr` is not all of it
    stdout_bytes: int = 0  # bytes the program wrote to each stream, kept or not
    stderr_bytes: int = 0

    def stdout_lines(self) -> list[str]:
        """The lines of stdout that were kept: all of them, or those of the head and of the tail (whose first
        line may be the end of a longer one)."""
        return self.stdout.splitlines() + self.stdout_tail.splitlines()


@dataclass(frozen=True, slots=True)
class Verdict:
    """A benchmark's judgement of one execution."""

    outcome: Outcome
    detail: str = ""  # e.g. the exception type for ERROR
    scores: tuple[tuple[str, bool], ...] = ()  # extra named scorers (MTPB: reference, strict)
