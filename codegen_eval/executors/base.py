"""The Executor interface: jobs in (keyed, lazily), results out in completion order; one result per key."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Protocol, Self

from codegen_eval.records import ExecutionJob, ExecutionResult
from codegen_eval.summaries import ExecutorInfo, SandboxInfo


class Executor(Protocol):
    """Runs sandbox jobs somewhere. A context manager: the sandbox(es) are open inside the block.

    `stream` pulls jobs from `jobs` only as it has room (a bounded number in flight, so an interrupt loses little
    and memory stays flat) and yields each key exactly once, with its result, as results arrive. A program's
    misbehaviour is a result; SandboxError is raised only when no sandbox can run the job.
    """

    kind: str

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def stream(self, jobs: Iterator[tuple[str, ExecutionJob]]) -> Iterator[tuple[str, ExecutionResult]]: ...

    def sandbox_info(self) -> SandboxInfo:
        """The sandbox and its isolation layers (run.json's `sandbox`; per node in `info().nodes`)."""

    def info(self) -> ExecutorInfo:
        """Where the jobs ran (run.json's `executor`), with the retries so far."""
