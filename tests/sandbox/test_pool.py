"""The slot pool both sandboxes share, with slots that run no program (the sandbox suites cover the real ones)."""

from __future__ import annotations

import threading

import pytest

from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionResult, ExitKind
from codegen_eval.sandbox.pool import Pending, SlotPool, Take


def result(text: str) -> ExecutionResult:
    return ExecutionResult(ExitKind.EXITED, 0, None, text, "", 0.0)


class EchoSlot:
    """Finishes each job with its payload as stdout; breaks on b"break"; records what happened to it."""

    def __init__(self, index: int, fail_start: bool = False, gate: threading.Event | None = None) -> None:
        self.index = index
        self.fail_start = fail_start
        self.gate = gate
        self.served: list[bytes] = []
        self.released: SandboxError | None = None
        self.killed = 0
        self.held: Pending | None = None

    def start(self) -> None:
        if self.fail_start:
            raise SandboxError(f"slot {self.index} cannot start")

    def serve(self, pool: SlotPool) -> None:
        while isinstance(item := pool.take(), Pending):
            if item.payload == b"break":
                self.held = item
                raise SandboxError("slot broke")
            if self.gate is not None:
                self.gate.wait()
            self.served.append(item.payload)
            item.finish(result(item.payload.decode()))

    def release(self, error: SandboxError) -> None:
        self.released = error
        if self.held is not None:
            self.held.fail(error)

    def kill(self) -> None:
        self.killed += 1


def test_each_of_many_callers_gets_its_own_result_and_every_slot_is_shut_down() -> None:
    pool = SlotPool("t")
    slots = [EchoSlot(0), EchoSlot(1)]
    pool.start(slots)
    got: dict[int, str] = {}

    def call(i: int) -> None:
        got[i] = pool.run(Pending(str(i).encode(), 1.0)).stdout

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.close()
    assert got == {i: str(i) for i in range(40)}
    assert sorted(p for s in slots for p in s.served) == sorted(str(i).encode() for i in range(40))
    assert all(s.killed == 1 and s.released is not None for s in slots)


def test_a_slot_that_cannot_start_fails_the_start_with_its_own_error() -> None:
    pool = SlotPool("t")
    with pytest.raises(SandboxError, match="slot 1 cannot start"):
        pool.start([EchoSlot(0), EchoSlot(1, fail_start=True)])
    pool.close()


def test_a_broken_slot_fails_its_job_and_everything_queued_and_refuses_more() -> None:
    gate = threading.Event()
    pool = SlotPool("t")
    pool.start([EchoSlot(0, gate=gate)])
    outcomes: list[str] = []

    def call(payload: bytes) -> None:
        try:
            outcomes.append(pool.run(Pending(payload, 1.0)).stdout)
        except SandboxError as e:
            outcomes.append(f"error: {e}")

    first = threading.Thread(target=call, args=(b"slow",))
    first.start()
    while pool._queue.qsize():  # the slot has taken "slow" and waits at the gate
        pass
    others = [threading.Thread(target=call, args=(p,)) for p in (b"break", b"queued")]
    for t in others:
        t.start()
    while pool._queue.qsize() < 2:
        pass
    gate.set()
    for t in (first, *others):
        t.join()
    assert sorted(outcomes) == ["error: slot broke", "error: slot broke", "slow"]
    with pytest.raises(SandboxError, match="slot broke"):
        pool.run(Pending(b"after", 1.0))
    pool.close()


def test_close_fails_what_is_still_queued_and_take_says_stop() -> None:
    pool = SlotPool("t")
    pool.start([])  # no slot: nothing will ever take the job
    pending = Pending(b"never", 1.0)
    pool._queue.put(pending)
    pool.close()
    assert pending.done.is_set() and pending.error is not None and "closed" in str(pending.error)
    with pytest.raises(SandboxError, match="not open"):
        pool.run(Pending(b"late", 1.0))
    pool._queue.put(None)
    assert pool.take() is Take.STOP
    assert pool.take(wait=False) is Take.EMPTY
