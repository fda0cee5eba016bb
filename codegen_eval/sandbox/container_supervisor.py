"""PID 1 of each sandbox container: runs one program per request, kills its whole tree, reports the result."""

# This file is sent verbatim into the container (`python3 -c <source>`) and runs there under the image's own
# interpreter: standard library only, and nothing newer than Python 3.8 (user images may be old).
#
# argv[1]: the configuration, JSON (the limits, the environment, what to wipe, the modules to preload, and the
# sources of core.py and seccomp.py). The protocol is the worker's (core.py: a ready message, then a JOB and its
# RESULT per program), on the container's attached stdin/stdout; the ready message is {"python": "3.11.2",
# "protected": true, "seccomp_off": "", "observed": {...}}.
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

import errno
import io
import json
import os
import platform
import signal
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codegen_eval.sandbox import core
else:
    core = None  # the shared execution core (core.py): main() loads the source the host shipped in argv[1]

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


def _enter(env: dict[str, str], program: bytes) -> dict[str, Any]:
    """In the forked child, after the core's part: the environment, fresh standard streams and a __main__ as
    `python3 -` has them; the namespace to run `program` in."""
    os.environ.clear()
    os.environ.update(env)
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


class Supervisor:
    """Runs one program per request in a forked child, through the execution core. Requests come from the host on
    fd 0, read raw so that its end can be noticed while a program runs."""

    def __init__(self, config: dict[str, Any], libc: core.Libc | None, wake_fd: int) -> None:
        self.config = config
        self.wake_fd = wake_fd
        self.buffer = bytearray()  # from the host
        self.closed = False  # the host has gone
        self.null = os.open(os.devnull, os.O_RDONLY)  # the programs' stdin
        self.tree = core.Tree(init=True)  # PID 1 of the container's namespace (main() checks)
        self.child = core.Child(
            "<stdin>", False, stdin_fd=self.null, maxfd=1 << 16, workdir=config["workdir"], group="session",
            prctl=libc.prctl if libc is not None else None, fsize=config["file_size_bytes"],
            nofile=config["max_open_files"], default_signals=(signal.SIGCHLD,), oom_score_adj=True,
        )  # fmt: skip

    def run(self, seq: int, program: bytes, timeout_s: float, memory_bytes: int) -> bytes:
        cpu_s = int(timeout_s) + 1  # as the process sandbox: the wall limit rounded down, + 1 s
        oom_before, forks_before = _counter(*_OOM_KILLS), _counter(*_FORKS_REFUSED)
        # Kept: stdout's first `output_bytes` and the last `stderr_bytes` after them, stderr's last `stderr_bytes`;
        # the rest is drained (core.Capture).
        out = core.Capture(self.config["output_bytes"], self.config["stderr_bytes"])
        enter = lambda: _enter(self.config["env"], program)  # noqa: E731
        # The host link is watched too: if the host is gone (killed harness), stop now, not at the timeout.
        status, usage, why, flagged, started, ended = self.child.run(
            program, core.precompile(program, "<stdin>"), cpu_s, memory_bytes, enter, out, timeout_s, self.tree,
            wake_fd=self.wake_fd, watch=(0, self.pump),
        )  # fmt: skip
        strays = not why and self.tree.found  # the main process exited on its own, but left processes

        oom = oom_before >= 0 and _counter(*_OOM_KILLS) > oom_before
        fork_refused = forks_before >= 0 and _counter(*_FORKS_REFUSED) > forks_before
        kind, exit_code, sig = core.classify(
            status, usage, why == "timeout", cpu_s, out.stderr, flagged, oom, fork_refused
        )
        clean = not strays
        for path in self.config["wipe"]:
            clean = core.empty(path) and clean
        return core.result(seq, kind, exit_code, sig, ended - started, out, clean and not sysv_ipc_in_use())

    def pump(self) -> bool:
        """Read what the host sent (blocking if nothing is there); False once it has gone (end of file)."""
        data = os.read(0, 1 << 16)
        if not data:
            self.closed = True
        self.buffer.extend(data)
        return not self.closed

    def read(self, n: int) -> bytes | None:
        """The next n bytes from the host; None once it has gone."""
        while len(self.buffer) < n:
            if self.closed or not self.pump():
                return None
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data


def main() -> None:
    global core
    if os.getpid() != 1:
        # kill(-1, SIGKILL) after every program is only safe as the init of a PID namespace of our own.
        sys.exit("container_supervisor: refusing to run: not PID 1 of a container")
    config = json.loads(sys.argv[1])
    core = types.ModuleType("codegen_eval_sandbox_core")
    exec(compile(config["sources"]["core"], "<codegen-eval core>", "exec"), core.__dict__)
    libc = core.Libc.load()
    protected = libc is not None and libc.prctl(core.PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    core.preload(config["preload"])  # SandboxSettings.preload
    # The syscall filter (codegen_eval/sandbox/seccomp.py, shipped with the execution core): installed on this
    # process before the first fork, so every program inherits it and none can remove it.
    try:
        seccomp_off = core.load_shipped("seccomp", config["sources"]["seccomp"]).install()
    except Exception as exc:
        seccomp_off = f"{type(exc).__name__}: {exc}"
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)  # a handler, so SIGCHLD interrupts poll()
    signal.set_wakeup_fd(wake_w)
    out = sys.stdout.buffer
    info = {"python": platform.python_version(), "protected": protected, "seccomp_off": seccomp_off}
    out.write(core.ready({**info, "observed": core.observe()}))
    out.flush()
    supervisor = Supervisor(config, libc, wake_r)
    for seq, timeout_s, memory_bytes, program in core.jobs(supervisor.read):
        try:
            message = supervisor.run(seq, program, timeout_s, memory_bytes)
        except Exception as exc:  # report the fault to the host instead of dying silently
            supervisor.tree.kill_others()
            why = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
            message = core.RESULT.pack(seq, core.FAULT, 0, 0, 0, 0.0, 0, 0, len(why), 0, len(why), 0) + why
        if supervisor.closed:
            break
        out.write(message)
        out.flush()
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
