"""PID 1 of each sandbox container: runs one program per request, kills its whole tree, reports the result."""

# This file is sent verbatim into the container (`python3 -c <source>`) and runs there under the image's own
# interpreter: standard library only, and nothing newer than Python 3.8 (user images may be old).
#
# Protocol, on the container's attached stdin/stdout (one JSON object per line):
#   supervisor -> host, once: {"ready": true, "python": "3.11.2", "protected": true, "observed": {...}, ...}
#   host -> supervisor:   {"program": str, "timeout_s": float, "memory_mb": int, "output_bytes": int, ...}
#   supervisor -> host:   {"kind": ..., "exit_code": ..., "signal": ..., "stdout": b64, "stderr": b64, ...}
#
# Why PID 1 and not an `exec` per program: the program runs under the same uid as its supervisor (all
# capabilities are dropped), so it could kill or trace any supervisor it can reach. Signals from inside a PID
# namespace never reach its init unless init installed a handler, and a non-dumpable process's /proc entries
# (fd, environ, mem) belong to root: the program can neither kill this process, nor write to its pipes, nor
# forge its report. `kill(-1, SIGKILL)` from init reaches every other process in the namespace, which ends
# setsid() escapees and orphaned grandchildren too.
#
# Why fork instead of an interpreter per program: start-up is most of a program's cost (docs/execution.md). The
# child resets everything a program can observe and runs it as `python3 -` would, exit sequence included.

from __future__ import annotations

import base64
import errno
import io
import json
import mmap
import os
import platform
import signal
import sys
import time
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codegen_eval.sandbox import core
else:
    core = None  # the shared execution core (core.py): main() loads the source the host passed as argv[2]

_READ_CHUNK = 1 << 16
# (cgroup v1 file, v2 file), key: the memory cgroup's OOM kills and the pids cgroup's refused forks
_OOM_KILLS = ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"), "oom_kill"
_FORKS_REFUSED = ("/sys/fs/cgroup/pids/pids.events", "/sys/fs/cgroup/pids.events"), "max"


def _counter(paths: tuple[str, ...], key: str) -> int:
    """A named counter from a cgroup events file (-1 when unreadable: then that signal is not used)."""
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return -1


def sysv_ipc_in_use() -> bool:
    """SysV shared memory, semaphores and queues outlive their creator: their presence taints a container."""
    for kind in ("shm", "sem", "msg"):
        try:
            with open("/proc/sysvipc/" + kind) as f:
                if len(f.read().splitlines()) > 1:
                    return True
        except OSError:
            continue
    return False


# ----------------------------------------------------------------------------------------- the program's side


def _enter(job: dict[str, Any], program: bytes) -> dict[str, Any]:
    """In the forked child, after the core's part: the environment, fresh standard streams and a __main__ as
    `python3 -` has them; the namespace to run `program` in."""
    os.environ.clear()
    os.environ.update(job["env"])
    os.umask(0o022)
    # Fresh standard streams on fds 0-2, configured as the interpreter configures them under C.UTF-8.
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        errors = "backslashreplace" if fd == 2 else "surrogateescape"
        stream = io.TextIOWrapper(buffered, encoding="utf-8", errors=errors, line_buffering=fd == 2)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    previous = sys.modules["__main__"]
    main = types.ModuleType("__main__")
    main.__dict__.update({"__file__": "<stdin>", "__builtins__": __builtins__, "__cached__": None})
    main.__loader__ = getattr(previous, "__loader__", None)  # BuiltinImporter, as for `python3 -`
    sys.modules["__main__"] = main
    # Tracebacks show source lines although the program exists only in memory (it is never written to a file
    # the program could read back).
    core.source_lines(program, "<stdin>")
    sys.argv[:] = ["-"]
    import atexit

    atexit._clear()
    return main.__dict__


# ----------------------------------------------------------------------------------------- the supervisor's side


class HostLink:
    """Requests from the host on fd 0, read raw so that its end can be noticed while a program runs."""

    def __init__(self) -> None:
        self.fd = 0
        self.buffer = bytearray()
        self.closed = False

    def pump(self) -> bool:
        """Read what is available (blocking if nothing is); False once the host has gone (end of file)."""
        data = os.read(self.fd, _READ_CHUNK)
        if not data:
            self.closed = True
        self.buffer.extend(data)
        return not self.closed

    def next_line(self) -> bytes | None:
        while True:
            line = core.pop_line(self.buffer)
            if line is not None:
                return line
            if self.closed or not self.pump():
                return None


class Supervisor:
    """Runs one program per request in a forked child, through the execution core."""

    def __init__(self, libc: core.Libc | None, wake_fd: int, host: HostLink) -> None:
        self.prctl = libc.prctl if libc is not None else None
        self.wake_fd = wake_fd
        self.host = host
        self.flag = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and shared: survives fork in both directions
        self.null = os.open(os.devnull, os.O_RDONLY)  # the programs' stdin
        self.tree = core.Tree(init=True)  # PID 1 of the container's namespace (main() checks)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        program = job["program"].encode("utf-8", "surrogatepass")
        oom_before, forks_before = _counter(*_OOM_KILLS), _counter(*_FORKS_REFUSED)
        self.flag[: core.FLAG.size] = core.FLAG.pack(0, core.FLAG_NONE)
        child = core.Child(
            self.flag, "<stdin>", False, stdin_fd=self.null, maxfd=1 << 16, workdir=job["workdir"], group="session",
            prctl=self.prctl, fsize=job["file_size_mb"] << 20, nofile=job["max_open_files"],
            default_signals=(signal.SIGCHLD,), oom_score_adj=True,
        )  # fmt: skip
        compiled = core.precompile(program, "<stdin>")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        started = time.monotonic()
        enter = lambda: _enter(job, program)  # noqa: E731
        pid = child.fork(program, compiled, out_w, err_w, job["cpu_s"], job["memory_mb"] << 20, enter)
        os.close(out_w)
        os.close(err_w)
        # Kept: stdout's first `output_bytes` and the last `stderr_bytes` after them, stderr's last `stderr_bytes`;
        # the rest is drained (core.Capture).
        out = core.Capture(int(job["output_bytes"]), int(job["stderr_bytes"]))
        # The host link is watched too: if the host is gone (killed harness), stop now, not at the timeout.
        status, usage, why, ended = core.supervise(
            pid, out_r, err_r, out, started + float(job["timeout_s"]), self.tree, wake_fd=self.wake_fd,
            reap=lambda: core.Tree.reap(block=False, main=pid), watch=(self.host.fd, self.host.pump),
        )  # fmt: skip
        strays = not why and self.tree.found  # the main process exited on its own, but left processes

        oom = oom_before >= 0 and _counter(*_OOM_KILLS) > oom_before
        fork_refused = forks_before >= 0 and _counter(*_FORKS_REFUSED) > forks_before
        kind, exit_code, sig = core.classify(
            status, usage, why == "timeout", job["cpu_s"], out.stderr, core.flag_of(self.flag, pid), oom, fork_refused
        )
        clean = True
        for path in job["wipe"]:
            clean = core.empty(path) and clean
        return {
            "kind": kind,
            "exit_code": exit_code,
            "signal": sig,
            "stdout": base64.b64encode(bytes(out.stdout)).decode("ascii"),
            "stdout_tail": base64.b64encode(bytes(out.stdout_tail)).decode("ascii"),
            "stderr": base64.b64encode(bytes(out.stderr)).decode("ascii"),
            "stdout_bytes": out.out_total,
            "stderr_bytes": out.err_total,
            "duration_s": ended - started,
            "cpu_s": usage.ru_utime + usage.ru_stime if usage is not None else 0.0,
            "strays": strays,
            "clean": clean and not sysv_ipc_in_use(),
            "oom": oom,
            "fork_refused": fork_refused,
        }


def main() -> None:
    global core
    if os.getpid() != 1:
        # kill(-1, SIGKILL) after every program is only safe as the init of a PID namespace of our own.
        sys.exit("container_supervisor: refusing to run: not PID 1 of a container")
    sources = json.loads(sys.argv[2])  # core.py and seccomp.py, as the host shipped them
    core = types.ModuleType("codegen_eval_sandbox_core")
    exec(compile(sources["core"], "<codegen-eval core>", "exec"), core.__dict__)
    libc = core.Libc.load()
    protected = libc is not None and libc.prctl(core.PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    core.preload(json.loads(sys.argv[1]) if len(sys.argv) > 1 else [])  # argv[1]: SandboxSettings.preload
    # The syscall filter (codegen_eval/sandbox/seccomp.py, shipped in argv[2] with the execution core): installed
    # on this process before the first fork, so every program inherits it and none can remove it.
    try:
        seccomp_off = core.load_shipped("seccomp", sources["seccomp"]).install()
    except Exception as exc:
        seccomp_off = f"{type(exc).__name__}: {exc}"
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)  # a handler, so SIGCHLD interrupts poll()
    signal.set_wakeup_fd(wake_w)
    out = sys.stdout.buffer

    def say(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode("ascii") + b"\n")
        out.flush()

    say(
        {
            "ready": True,
            "python": platform.python_version(),
            "protected": protected,
            "seccomp_off": seccomp_off,
            "observed": core.observe(),
        }
    )
    host = HostLink()
    supervisor = Supervisor(libc, wake_r, host)
    while not host.closed:
        line = host.next_line()
        if line is None:
            break
        if not line.strip():
            continue
        try:
            result = supervisor.run(json.loads(line))
        except Exception as exc:  # report the fault to the host instead of dying silently
            supervisor.tree.kill_others()
            result = {"fault": f"{type(exc).__name__}: {exc}"}
        if not host.closed:
            say(result)
    # End of stdin: the host went away (StdinOnce closes it when the attached client disconnects).
    supervisor.tree.kill_others()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
