"""Process sandbox: a warm pool of forking workers, each in bubblewrap under its own unprivileged uid."""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import logging
import math
import os
import pwd
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Self

from codegen_eval.errors import SandboxError, UsageError
from codegen_eval.records import ExecutionJob, ExecutionResult, ExitKind
from codegen_eval.sandbox import core, probe, seccomp, worker
from codegen_eval.sandbox.base import STDERR_TAIL_BYTES, ClosedOnExit, SandboxSettings, decode_output, make_result
from codegen_eval.sandbox.pool import Pending, SlotPool, Take
from codegen_eval.sandbox.probe import probe as probe_layers  # for `codegen-eval list`

log = logging.getLogger(__name__)

PIPELINE_MAX_BYTES = 16 * 1024  # queue a job behind a running one only if it fits a pipe buffer easily
START_TIMEOUT_S = 30.0  # a worker must say "ready" within this
BACKSTOP_GRACE_S = 5.0  # beyond a job's own timeout before the harness gives up on a silent worker
MAX_FAILED_STARTS = 3  # consecutive failed restarts before a worker slot is declared broken


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _UidLease:
    """Exclusive use of unprivileged uids across every sandbox on the machine (flock'ed lock files)."""

    def __init__(self, count: int) -> None:
        self.uids: list[int] = []
        self._locks: list[IO[bytes]] = []
        lock_dir = Path("/run/codegen-eval/uids")
        try:
            lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            lock_dir = Path(tempfile.gettempdir()) / "codegen-eval-uids"
            lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        busy = {uid for state, _, uid in core.processes().values() if state != b"Z"}  # a zombie holds nothing
        for uid in range(probe.UID_BASE, probe.UID_BASE + probe.UID_RANGE):
            if len(self.uids) == count:
                break
            if uid in busy or _has_account(uid):
                continue
            f = open(lock_dir / f"{uid}.lock", "wb")  # noqa: SIM115 - held open for the lease's lifetime
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            self.uids.append(uid)
            self._locks.append(f)
        if len(self.uids) < count:
            self.release()
            raise SandboxError(f"no free uid in {probe.UID_BASE}..{probe.UID_BASE + probe.UID_RANGE - 1}")

    def release(self) -> None:
        for f in self._locks:
            f.close()
        self._locks.clear()


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (root, dedicated uid, no PID namespace to do it for us)."""
    for _ in range(100):
        victims = [pid for pid, (state, _, owner) in core.processes().items() if owner == uid and state != b"Z"]
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


class _WorkerProcess:
    """One worker process: its command line, start (waiting for "ready"), stop, and bounded reads and writes."""

    def __init__(self, box: ProcessSandbox, uid: int | None, root_dir: str) -> None:
        self.box = box
        self.uid = uid
        self.root_dir = root_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.errlog: IO[bytes] | None = None
        self.info: dict[str, object] = {}
        self.silent = False  # the last failed read/write hit its deadline (the worker is alive but stuck)
        self.stderr_text_saved = ""
        self._stop_lock = threading.Lock()

    def command(self) -> list[str]:
        plan = self.box.plan
        settings = self.box.settings
        config = {
            "root": "/tmp" if plan.mode == "bubblewrap" else self.root_dir,
            "pidns": plan.mode == "bubblewrap",
            "kill_uid": plan.mode == "uid",
            "file_size_bytes": settings.file_size_mb << 20,
            "max_open_files": settings.max_open_files,
            "max_processes": settings.max_processes if probe.nproc_enforced(settings, plan.mode) else 0,
            "output_bytes": settings.output_bytes,
            "stderr_tail_bytes": min(STDERR_TAIL_BYTES, settings.output_bytes),
            "scratch": ["/dev/shm", "/dev/mqueue"] if plan.mode == "bubblewrap" else [],
            "owned_scratch": ["/tmp", "/var/tmp", "/dev/shm"] if plan.mode == "uid" else [],
            # Private IPC namespace (bubblewrap) or a uid of our own: every SysV object of our uid is the program's.
            "ipc_cleanup": plan.mode != "none",
            "preload": list(settings.preload),
            "sources": core.shipped_sources(),  # core.py and seccomp.py: the worker cannot import the package
        }
        cmd = [plan.interpreter, "-c", core.source("worker"), json.dumps(config)]
        if plan.mode == "bubblewrap":
            pre = probe.bwrap_args(plan.bwrap, settings, home=plan.home, keep=plan.keep_visible)
            cmd = [*pre, "--", *cmd]
        return cmd

    def spawn(self) -> None:
        """Start the worker and wait for its "ready" message; SandboxError if it cannot start."""
        plan = self.box.plan
        self.silent = False
        if self.root_dir:  # no private /tmp: clear what a retired worker could not
            for name in os.listdir(self.root_dir):
                with contextlib.suppress(OSError, RecursionError):
                    core.remove(os.path.join(self.root_dir, name))
        self.errlog = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop
        home = "/tmp" if plan.mode == "bubblewrap" else self.root_dir
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errlog,
                env=probe.minimal_env(plan.interpreter, home),
                cwd="/",
                start_new_session=True,
                user=self.uid,
                group=self.uid,
                extra_groups=[] if self.uid is not None else None,
            )
        except OSError as e:
            raise SandboxError(f"cannot start sandbox worker ({plan.interpreter}): {e}") from e
        assert self.proc.stdin is not None and self.proc.stdout is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        deadline = time.monotonic() + START_TIMEOUT_S
        size = self.read(core.READY_LEN.size, deadline)
        if size is not None:
            body = self.read(core.READY_LEN.unpack(size)[0], deadline)
            if body is not None:
                self.info = json.loads(body)
                return
        self.stop()
        why = self.stderr_text_saved or "no message"
        raise SandboxError(f"sandbox worker did not start: {why}")

    def stop(self) -> int | None:
        """Kill the worker (and, without a PID namespace, every process of its uid); its exit status."""
        with self._stop_lock:
            rc = None
            errlog, self.errlog = self.errlog, None
            self.stderr_text_saved = ""
            if errlog is not None:
                errlog.seek(0)
                self.stderr_text_saved = decode_output(errlog.read()[-2000:]).strip()
                errlog.close()
            proc = self.proc
            if proc is not None:
                if proc.poll() is None:
                    with contextlib.suppress(OSError):
                        os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
                for stream in (proc.stdin, proc.stdout):
                    if stream is not None:
                        with contextlib.suppress(OSError):
                            stream.close()
                self.proc = None
            if self.uid is not None:
                # The uid is leased to this worker alone: whatever still runs under it (a namespace being torn
                # down, or a daemon outside any namespace) must be gone before the uid is reused.
                _kill_uid(self.uid)
            return rc

    def retire(self, close_input: bool = False) -> int | None:
        """Wait briefly for a worker that closed its end (or whose input we close, so that it exits by itself),
        then make sure it is gone; its exit status."""
        if close_input and self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2.0)
        return self.stop()

    def restart(self) -> None:
        for failures in range(1, MAX_FAILED_STARTS + 1):
            try:
                return self.spawn()
            except SandboxError:
                if failures == MAX_FAILED_STARTS:
                    raise
                time.sleep(0.1 * failures)

    def ready(self, fd: int, event: int, deadline: float) -> bool:
        """Wait until `fd` is ready for `event`; False past the deadline (then self.silent). poll(2), because
        select(2) cannot take descriptors above 1023."""
        poller = select.poll()
        poller.register(fd, event)
        while True:
            wait = deadline - time.monotonic()
            if wait <= 0:
                self.silent = True
                return False
            if poller.poll(wait * 1000.0):
                return True

    def read(self, n: int, deadline: float) -> bytes | None:
        """Exactly n bytes from the worker, or None on EOF or deadline (see self.silent)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        while len(buf) < n:
            if not self.ready(fd, select.POLLIN, deadline):
                return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def write(self, data: bytes, deadline: float) -> bool:
        """Write all of data without ever blocking past the deadline; False if the worker is gone or stuck."""
        assert self.proc is not None and self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        while view:
            if not self.ready(fd, select.POLLOUT, deadline):
                return False
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
            except OSError:
                return False
        return True


class _Slot:
    """One worker fed by its harness thread (the pool's): jobs in, results out, restarted when it dies."""

    def __init__(self, box: ProcessSandbox, index: int, uid: int | None, root_dir: str) -> None:
        self.index = index
        self.uid = uid
        self.process = _WorkerProcess(box, uid, root_dir)
        self.seq = 0
        self.inflight: collections.deque[Pending] = collections.deque()
        self.unsent: collections.deque[Pending] = collections.deque()

    def start(self) -> None:
        self.process.restart()

    def release(self, error: SandboxError) -> None:
        for item in (*self.inflight, *self.unsent):
            item.fail(error)
        self.inflight.clear()
        self.unsent.clear()
        self.process.retire(close_input=True)

    def kill(self) -> None:
        self.process.stop()

    def serve(self, pool: SlotPool) -> None:
        inflight, unsent = self.inflight, self.unsent
        stopping = False
        while True:
            if not inflight and not unsent:
                if stopping:
                    return
                item = pool.take()
                if not isinstance(item, Pending):
                    return
                unsent.append(item)
            # Keep the next job queued in the worker's pipe while one runs, so the worker never waits for us.
            while not stopping and len(inflight) + len(unsent) < 2:
                item = pool.take(wait=False)
                if item is Take.EMPTY:
                    break
                if isinstance(item, Pending):
                    unsent.append(item)
                else:
                    stopping = True
            alive = True
            while unsent:
                nxt = unsent[0]
                # Only small jobs go behind a running one: the pipe buffer must absorb them, or we could
                # block writing while the worker blocks writing a large result.
                if inflight and len(nxt.payload) > PIPELINE_MAX_BYTES:
                    break
                self.seq = (self.seq + 1) & 0xFFFFFFFF
                header = core.JOB.pack(self.seq, nxt.timeout_s, nxt.memory_bytes, len(nxt.payload))
                if not self.process.write(header + nxt.payload, time.monotonic() + START_TIMEOUT_S):
                    alive = False
                    break
                if not inflight:
                    nxt.started = time.monotonic()
                inflight.append(unsent.popleft())
            if alive and inflight:
                alive = self._collect()
            if not alive:
                self._after_death()

    def _collect(self) -> bool:
        """Read the result of the oldest job in flight; False if the worker died or went silent."""
        inflight = self.inflight
        head = inflight[0]
        deadline = head.started + head.timeout_s + BACKSTOP_GRACE_S
        raw = self.process.read(core.RESULT.size, deadline)
        if raw is None:
            return False
        fields = core.RESULT.unpack(raw)
        expected = (self.seq - len(inflight) + 1) & 0xFFFFFFFF
        if fields[0] != expected:
            raise SandboxError(f"sandbox protocol error: result {fields[0]}, expected {expected}")
        size = sum(fields[6:9])  # stdout head, stdout tail, stderr tail
        body = self.process.read(size, time.monotonic() + START_TIMEOUT_S) if size else b""
        if body is None:
            return False
        inflight.popleft()
        if inflight:
            inflight[0].started = time.monotonic()
        head.finish(make_result(fields, body))
        return True

    def _after_death(self) -> None:
        """The worker died or went silent: blame the program it was running, restart, resend the rest."""
        silent = self.process.silent
        rc = self.process.stop() if silent else self.process.retire()
        why = self.process.stderr_text_saved
        inflight, unsent = self.inflight, self.unsent
        if inflight and (silent or rc != worker.RETIRE_STATUS):
            head = inflight.popleft()
            elapsed = time.monotonic() - head.started
            if silent:
                note = "sandbox: the worker stopped responding while this program ran; it was restarted\n"
                result = ExecutionResult(ExitKind.TIMEOUT, None, signal.SIGKILL, "", note, elapsed)
            else:
                sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc is not None and rc > 128 else 0)
                note = f"sandbox: the worker died while this program ran (status {rc}); it was restarted\n"
                result = ExecutionResult(ExitKind.SIGNALED, None, sig or signal.SIGKILL, "", note, elapsed)
            head.finish(result)
            if rc is not None and 0 <= rc < 128:  # not a signal: the worker itself failed, not the program
                log.warning("sandbox worker %d exited with status %s: %s", self.index, rc, why or "no message")
        unsent.extendleft(reversed(inflight))
        inflight.clear()
        self.process.restart()


class ProcessSandbox(ClosedOnExit):
    """Runs each program in a fresh forked child of a warm worker; see docs/execution.md."""

    name = "process"

    def __init__(self, settings: SandboxSettings) -> None:
        if not 0 < settings.timeout_s < math.inf or settings.output_bytes <= 0 or settings.workers < 0:
            raise UsageError("sandbox settings: timeout_s must be finite and > 0, output_bytes > 0, workers >= 0")
        self.settings = settings
        self._workers = settings.workers or _cpu_count()
        self._pool = SlotPool("sandbox-worker")
        self._slots: list[_Slot] = []
        self._lease: _UidLease | None = None
        self._host_dir = ""
        self._layers: dict[str, str] = {}
        self._plan: probe.Plan | None = None

    @property
    def plan(self) -> probe.Plan:
        if self._plan is None:
            raise SandboxError("sandbox is not started (use it as a context manager)")
        return self._plan

    @property
    def concurrency(self) -> int:
        # Two callers per worker: one job running, the next already queued in the worker's pipe.
        return 2 * self._workers

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        root = os.geteuid() == 0
        if root:
            self._lease = _UidLease(self._workers)
        uids: list[int | None] = list(self._lease.uids) if self._lease else [None] * self._workers
        self._plan = plan = probe.plan(self.settings, uids[0])
        if plan.bwrap_off:
            log.warning("process sandbox: bubblewrap is off: %s", plan.bwrap_off)
        if plan.mode == "uid":
            log.warning(
                "process sandbox: running without namespaces: programs share the network and can write "
                "wherever their uid may; only a dedicated uid and rlimits protect this machine"
            )
        elif plan.mode == "none":
            if not self.settings.allow_unsandboxed:
                raise SandboxError(
                    "no isolation layer works here (no usable bubblewrap, not root); install bubblewrap or "
                    "set allow_unsandboxed to run programs with rlimits only"
                )
            log.warning("process sandbox: UNSANDBOXED (allow_unsandboxed): programs run as you, with rlimits only")
        if plan.mode != "bubblewrap":
            self._host_dir = tempfile.mkdtemp(prefix="codegen-eval-sandbox-")
            os.chmod(self._host_dir, 0o711)
        for i, uid in enumerate(uids):
            root_dir = ""
            if self._host_dir:
                root_dir = os.path.join(self._host_dir, f"w{i}")
                os.mkdir(root_dir, 0o700)
                if uid is not None:
                    os.chown(root_dir, uid, uid)
            self._slots.append(_Slot(self, i, uid, root_dir))
        self._pool.start(self._slots)
        self._layers = self._confirm(plan, uids)

    def _confirm(self, plan: probe.Plan, uids: list[int | None]) -> dict[str, str]:
        """Layers as the workers observe them; SandboxError if a layer the plan relies on is not there."""
        known = [u for u in uids if u is not None]
        if known:
            uid_text = str(known[0]) if len(known) == 1 else f"{known[0]}-{known[-1]}"
        else:
            uid_text = f"{os.getuid()} (current user)"
        layers = probe.expected_layers(plan, self.settings, uid_text)
        infos = [slot.process.info for slot in self._slots]
        for slot, info in zip(self._slots, infos, strict=True):
            if known and info.get("uid") != slot.uid:
                raise SandboxError(f"sandbox worker runs as uid {info.get('uid')}, expected {slot.uid}")
            if plan.mode == "bubblewrap":
                if info.get("net") != ["lo"]:
                    raise SandboxError(f"sandbox worker sees network interfaces {info.get('net')}")
                if not info.get("root_read_only"):
                    raise SandboxError("sandbox worker sees a writable root filesystem")
                if info.get("pid") != 1:
                    raise SandboxError(f"sandbox worker is pid {info.get('pid')}, not PID 1 of its own namespace")
                if info.get("CapEff") not in (None, "0000000000000000"):
                    raise SandboxError(f"sandbox worker has capabilities {info.get('CapEff')}")
        off = {str(info.get("seccomp_off", "the worker did not say")) for info in infos} - {""}
        if off:
            log.warning("process sandbox: the syscall filter is OFF: %s", "; ".join(sorted(off)))
        layers["syscall_filter"] = seccomp.describe("; ".join(sorted(off)))
        layers["interpreter"] = f"{plan.interpreter} ({infos[0].get('python', '?')})"
        layers["workers"] = str(self._workers)
        return layers

    def layers(self) -> Mapping[str, str]:
        if not self._layers:
            raise SandboxError("sandbox is not started (use it as a context manager)")
        return dict(self._layers)

    def run(self, job: ExecutionJob) -> ExecutionResult:
        timeout = job.timeout_s if job.timeout_s > 0 else self.settings.timeout_s
        memory_mb = self.settings.memory_mb if job.memory_mb is None else job.memory_mb
        program = job.program.encode("utf-8", errors="surrogatepass")
        return self._pool.run(Pending(program, timeout, max(memory_mb, 0) << 20))

    def close(self) -> None:
        self._pool.close()
        self._slots.clear()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._host_dir:
            shutil.rmtree(self._host_dir, ignore_errors=True)
            self._host_dir = ""


__all__ = ["ProcessSandbox", "probe_layers"]
