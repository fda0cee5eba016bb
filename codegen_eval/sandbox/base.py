"""The Sandbox interface: program in, result out; raises only for infrastructure faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from codegen_eval.records import ExecutionJob, ExecutionResult, ExitKind
from codegen_eval.sandbox import core

STDERR_TAIL_BYTES = 32 * 1024  # how much of the end of stderr a result keeps (at most output_bytes)


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """Limits and switches common to every sandbox (docs/execution.md)."""

    workers: int = 0  # 0: one per core
    timeout_s: float = 3.0  # default wall-clock limit; a job's own timeout_s wins
    memory_mb: int = 4096  # address space
    output_bytes: int = 1 << 20  # per stream
    file_size_mb: int = 64
    max_processes: int = 64
    max_open_files: int = 256
    python: str = ""  # interpreter for programs; "" = the sandbox's default
    allow_unsandboxed: bool = False  # run even if no isolation layer works (explicit opt-in)
    image: str = ""  # container sandboxes only
    # Modules every program imports first (the benchmark says which): a sandbox may import them once before it
    # forks, so each program finds them loaded. A program can tell only from sys.modules; numpy.random's global
    # state is reseeded in every child, as `random` reseeds itself, so programs do not share a stream.
    preload: tuple[str, ...] = ()


class Sandbox(Protocol):
    """A context manager that runs programs. Thread-safe `run`; use `concurrency` threads to fill it.

    Built as `Factory(settings: SandboxSettings)`. A program's misbehaviour (crash, hang, bomb) is a normal
    ExecutionResult; only a fault of the sandbox itself raises codegen_eval.errors.SandboxError.
    """

    name: str

    @property
    def concurrency(self) -> int: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def run(self, job: ExecutionJob) -> ExecutionResult: ...

    def layers(self) -> Mapping[str, str]:
        """Isolation layers and whether each is active, e.g. {"network_namespace": "on", "uid": "65534"}.

        Recorded verbatim in run.json so a reader knows what protected the run.
        """
        ...


class ClosedOnExit:
    """A sandbox's context-manager exit: close(), whatever happened inside the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def make_result(fields: tuple[Any, ...], body: bytes) -> ExecutionResult:
    """An ExecutionResult from a result message (core.RESULT, unpacked, and the body after it: stdout's head and
    tail and stderr's tail)."""
    _, kind, has_code, code, sig, duration, out_len, tail_len, _, out_total, err_total, _ = fields
    out, tail, err = body[:out_len], body[out_len : out_len + tail_len], body[out_len + tail_len :]
    truncated = out_total > out_len + tail_len
    return ExecutionResult(
        kind=ExitKind(core.KINDS[kind]),
        exit_code=code if has_code else None,
        signal=sig or None,
        # Head and tail are one stream unless bytes were dropped between them: decode them together then.
        stdout=decode_output(out) if truncated else decode_output(out + tail),
        stderr=decode_output(err),
        duration_s=duration,
        stdout_truncated=truncated,
        stdout_tail=decode_output(tail) if truncated else "",
        stderr_truncated=err_total > len(err),
        stdout_bytes=out_total,
        stderr_bytes=err_total,
    )


def decode_output(data: bytes) -> str:
    """A program's bytes as text: UTF-8, undecodable bytes replaced."""
    return data.decode("utf-8", errors="replace")
