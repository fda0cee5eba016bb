"""The slot pool both sandboxes share: one job queue, one harness thread per slot, failures every caller sees."""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Protocol

from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionResult

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0  # how long close() waits for a slot's thread before forcing its slot down


class Pending:
    """One job on its way through a slot; `done` is set once `result` or `error` is filled in."""

    __slots__ = ("done", "error", "memory_bytes", "payload", "result", "started", "timeout_s")

    def __init__(self, payload: bytes, timeout_s: float, memory_bytes: int = 0) -> None:
        self.payload = payload  # what the slot sends: the program (process) or the whole request (container)
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes
        self.started = 0.0  # when the program began running, for a slot's own backstop
        self.done = threading.Event()
        self.result: ExecutionResult | None = None
        self.error: SandboxError | None = None

    def finish(self, result: ExecutionResult) -> None:
        self.result = result
        self.done.set()

    def fail(self, error: SandboxError) -> None:
        self.error = error
        self.done.set()


class Take(enum.Enum):
    """What `SlotPool.take` returns instead of a job."""

    EMPTY = "empty"  # nothing queued right now (only with wait=False)
    STOP = "stop"  # the pool is closing: finish what you hold and return


class Slot(Protocol):
    """One unit of concurrency (a worker process, a container), served by its own thread."""

    index: int

    def start(self) -> None:
        """Bring the slot up; SandboxError if it cannot start (the pool's start then fails)."""
        ...

    def serve(self, pool: SlotPool) -> None:
        """Take jobs from `pool` and finish each one until `take` says STOP. SandboxError: the slot cannot go on,
        and nothing more can run (the pool fails every queued job)."""
        ...

    def release(self, error: SandboxError) -> None:
        """The thread is ending: fail every job still held with `error`, shut down in an orderly way."""
        ...

    def kill(self) -> None:
        """Force the slot down (close() after its thread ended or was given up on). Idempotent."""
        ...


class SlotPool:
    """Jobs go into one queue; each slot's thread takes them. A broken slot fails everything queued."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.slots: list[Slot] = []
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._error: SandboxError | None = None
        self._open = False

    def start(self, slots: Sequence[Slot]) -> None:
        """Start a thread per slot and wait until each slot is up; the first start error is raised."""
        self.slots = list(slots)
        ready = [threading.Event() for _ in self.slots]
        errors: list[SandboxError | None] = [None] * len(self.slots)
        self._open = True
        for slot, event in zip(self.slots, ready, strict=True):

            def main(slot: Slot = slot, event: threading.Event = event) -> None:
                try:
                    slot.start()
                except SandboxError as e:
                    errors[slot.index] = e
                    event.set()
                    return
                event.set()
                self._serve(slot)

            thread = threading.Thread(target=main, name=f"{self.name}-slot-{slot.index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        for event in ready:
            event.wait()
        failed = [e for e in errors if e is not None]
        if failed:
            raise failed[0]

    def _serve(self, slot: Slot) -> None:
        error = SandboxError("sandbox closed")
        try:
            slot.serve(self)
        except SandboxError as e:
            error = e
            self._broken(e)
        except Exception as e:  # a bug here must not leave callers waiting forever
            log.exception("%s slot %d crashed", self.name, slot.index)
            error = SandboxError(f"sandbox slot thread crashed: {e!r}")
            self._broken(error)
        finally:
            slot.release(error)

    def run(self, pending: Pending) -> ExecutionResult:
        """Queue one job and wait for it (thread-safe); SandboxError for an infrastructure fault."""
        if not self._open:
            raise SandboxError("sandbox is not open")
        if self._error is not None:
            raise self._error
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def take(self, wait: bool = True) -> Pending | Take:
        """The next job for a slot's thread; Take.STOP once the pool closes, Take.EMPTY if nothing is queued."""
        try:
            item = self._queue.get() if wait else self._queue.get_nowait()
        except queue.Empty:
            return Take.EMPTY
        return Take.STOP if item is None else item

    def _broken(self, error: SandboxError) -> None:
        """A slot cannot continue: fail everything queued and refuse further jobs."""
        self._error = error
        self._fail_queued(error, up_to_a_stop=True)

    def _fail_queued(self, error: SandboxError, up_to_a_stop: bool) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.fail(error)
            elif up_to_a_stop:
                self._queue.put(None)  # another slot's stop: leave it for that slot
                return

    def close(self) -> None:
        """Stop every slot (each finishes what it holds), then force each down and fail anything left. Idempotent."""
        was_open, self._open = self._open, False
        if was_open:
            for _ in self._threads:
                self._queue.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=JOIN_TIMEOUT_S)
        for slot in self.slots:
            slot.kill()
        self._fail_queued(SandboxError("sandbox closed"), up_to_a_stop=False)
        self._threads.clear()
