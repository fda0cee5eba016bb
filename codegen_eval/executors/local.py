"""The local executor: one sandbox on this machine, filled from a thread pool sized by its concurrency."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Self

from codegen_eval.records import ExecutionJob, ExecutionResult
from codegen_eval.sandbox import SANDBOXES, Sandbox
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.summaries import ExecutorInfo, NodeInfo, SandboxInfo


class LocalExecutor:
    kind = "local"

    def __init__(self, sandbox: str, settings: SandboxSettings | None = None) -> None:
        """The sandbox named `sandbox`, built from `settings`: opened on enter, closed on exit."""
        self._name = sandbox
        self._settings = settings or SandboxSettings()
        self._sandbox: Sandbox | None = None

    def __enter__(self) -> Self:
        self._sandbox = SANDBOXES.load(self._name)(self._settings).__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sandbox is not None:
            sandbox, self._sandbox = self._sandbox, None
            sandbox.__exit__(exc_type, exc, tb)

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("LocalExecutor used outside its context manager")
        return self._sandbox

    def sandbox_info(self) -> SandboxInfo:
        return SandboxInfo(self._name, dict(self.sandbox.layers()))

    def info(self) -> ExecutorInfo:
        node = NodeInfo(hostname=socket.gethostname(), layers=dict(self.sandbox.layers()))
        return ExecutorInfo(kind=self.kind, nodes=(node,))

    def stream(self, jobs: Iterator[tuple[str, ExecutionJob]]) -> Iterator[tuple[str, ExecutionResult]]:
        sandbox = self.sandbox
        in_flight: dict[Future[ExecutionResult], str] = {}
        limit = max(1, sandbox.concurrency) * 4
        with ThreadPoolExecutor(max_workers=max(1, sandbox.concurrency), thread_name_prefix="exec") as pool:
            try:
                while True:
                    while len(in_flight) < limit:
                        item = next(jobs, None)
                        if item is None:
                            break
                        in_flight[pool.submit(sandbox.run, item[1])] = item[0]
                    if not in_flight:
                        return
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        key = in_flight.pop(fut)
                        yield key, fut.result()
            finally:  # an interrupt, an infrastructure fault, or the consumer stopped early
                for fut in in_flight:
                    fut.cancel()
