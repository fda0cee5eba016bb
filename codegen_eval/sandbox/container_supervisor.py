"""PID 1 of each sandbox container: runs one program per request, kills its whole tree, reports the result."""

# This file is sent verbatim into the container (`python3 -c <source>`) and runs there under the image's own
# interpreter: standard library only, and nothing newer than Python 3.8 (user images may be old).
#
# Protocol, on the container's attached stdin/stdout (one JSON object per line):
#   supervisor -> host, once: {"ready": true, "pid": 1, "uid": ..., "python": "3.11.2", "protected": true}
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
# Why fork instead of starting an interpreter per program: start-up is most of the cost of a HumanEval program
# (about 20 ms of 25). The forked child is a fresh copy of this process that resets everything a program can
# observe (its __main__, argv, environment, stdio, signal handlers, limits) and then runs the program the way
# `python3 -` would, including the interpreter's exit sequence (threads, atexit, flushing stdio).

from __future__ import annotations

import base64
import contextlib
import errno
import io
import json
import math
import mmap
import os
import platform
import resource
import select
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
_CGROUP_OOM = "/sys/fs/cgroup/memory/memory.oom_control"  # cgroup v1; v2 fallback below
_CGROUP2_MEMORY_EVENTS = "/sys/fs/cgroup/memory.events"
_CGROUP_PIDS_EVENTS = "/sys/fs/cgroup/pids/pids.events"
_CGROUP2_PIDS_EVENTS = "/sys/fs/cgroup/pids.events"
_PR_SET_DUMPABLE = 4
# Imported once here so that every forked program finds them loaded (HumanEval programs import typing, which
# alone costs several milliseconds). Which modules sit in sys.modules is not part of a program's semantics.
_PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "string", "heapq", "bisect", "linecache")


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


def oom_kills() -> int:
    return _counter((_CGROUP_OOM, _CGROUP2_MEMORY_EVENTS), "oom_kill")


def fork_rejections() -> int:
    return _counter((_CGROUP_PIDS_EVENTS, _CGROUP2_PIDS_EVENTS), "max")


def set_dumpable(value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, value, 0, 0, 0) == 0)
    except (ImportError, OSError, AttributeError):
        return False


def kill_all_others() -> tuple[bool, list[tuple[int, int, Any]]]:
    """SIGKILL every process in the namespace except this one and reap them all: (any existed, reaped)."""
    try:
        os.kill(-1, signal.SIGKILL)
        found = True
    except ProcessLookupError:
        found = False
    return found, reap_all(block=True)


def reap_all(block: bool) -> list[tuple[int, int, Any]]:
    reaped: list[tuple[int, int, Any]] = []
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return reaped
        except InterruptedError:
            continue
        if pid == 0:
            return reaped
        reaped.append((pid, status, usage))


def wipe(path: str, keep: frozenset[str]) -> bool:
    """Remove everything in `path` except the names in `keep`. True if nothing else is left."""
    try:
        names = os.listdir(path)
    except PermissionError:
        try:
            os.chmod(path, 0o700)  # a program can make its own directories unreadable
            names = os.listdir(path)
        except OSError:
            return False
    except FileNotFoundError:
        return True
    clean = True
    for name in names:
        if name in keep:
            continue
        full = os.path.join(path, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                os.chmod(full, 0o700)
                clean = wipe(full, frozenset()) and clean
                os.rmdir(full)
            else:
                os.unlink(full)
        except OSError:
            clean = False
    return clean


def observe() -> dict[str, Any]:
    """The isolation this process actually has, seen from inside (the host reports it in layers())."""
    seen: dict[str, Any] = {"pid": os.getpid(), "uid": f"{os.getuid()}:{os.getgid()}"}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp"):
                    seen[key] = value.strip()
    except OSError:
        pass
    try:
        with open("/proc/net/dev") as f:
            seen["net"] = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    except OSError:
        seen["net"] = None
    seen["root_read_only"] = bool(os.statvfs("/").f_flag & os.ST_RDONLY)
    return seen


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


def _child(
    job: dict[str, Any],
    program: bytes,
    compiled: types.CodeType | None,
    stdout_fd: int,
    stderr_fd: int,
    flag: mmap.mmap,
) -> None:
    """In the forked child: reset what a program can see, apply the limits, run it, exit like the interpreter."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)  # input() sees end of file
        os.dup2(null, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.closerange(3, 1 << 16)  # the protocol pipes and everything else of the supervisor's
        set_dumpable(1)  # the program's own /proc entries are its own again
        try:  # the program and its descendants go first when the container runs out of memory
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        os.chdir(job["workdir"])
        os.environ.clear()
        os.environ.update(job["env"])
        os.umask(0o022)
        cpu = job["cpu_s"]
        memory = job["memory_mb"] << 20
        for which, soft, hard in (
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_CPU, cpu, cpu + 1),
            (resource.RLIMIT_FSIZE, job["file_size_mb"] << 20, job["file_size_mb"] << 20),
            (resource.RLIMIT_NOFILE, job["max_open_files"], job["max_open_files"]),
            (resource.RLIMIT_CORE, 0, 0),
        ):
            resource.setrlimit(which, (soft, hard))
        # Fresh standard streams on fds 0-2, configured as the interpreter configures them under C.UTF-8.
        streams = {
            "stdin": io.TextIOWrapper(
                io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="surrogateescape"
            ),
            "stdout": io.TextIOWrapper(
                io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", errors="surrogateescape"
            ),
            "stderr": io.TextIOWrapper(
                io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                encoding="utf-8",
                errors="backslashreplace",
                line_buffering=True,
            ),
        }
        for name, stream in streams.items():
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
    except BaseException as exc:  # anything here must end the child, never return into the supervisor's loop
        try:
            os.write(2, f"sandbox: cannot prepare the program's process: {exc!r}\n".encode())
        finally:
            os._exit(1)
    try:
        code = _run_main(program, compiled, flag)
    finally:
        os._exit(code)


def _run_main(program: bytes, compiled: types.CodeType | None, flag: mmap.mmap) -> int:
    """Run `program` as __main__ the way `python3 -` does; the exit status the interpreter would return."""
    previous = sys.modules["__main__"]
    main = types.ModuleType("__main__")
    main.__dict__.update({"__file__": "<stdin>", "__builtins__": __builtins__, "__cached__": None})
    main.__loader__ = getattr(previous, "__loader__", None)  # BuiltinImporter, as for `python3 -`
    sys.modules["__main__"] = main
    # Tracebacks show source lines although the program exists only in memory (it is never written to a file
    # the program could read back).
    import linecache

    text = program.decode("utf-8", "replace")
    linecache.cache["<stdin>"] = (len(text), None, text.splitlines(True), "<stdin>")
    sys.argv[:] = ["-"]
    import atexit

    atexit._clear()
    return core.Ending(flag, "<stdin>", linecache_hook=False).run(program, compiled, main.__dict__)


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


def run_job(job: dict[str, Any], wake_fd: int, flag: mmap.mmap, host: HostLink) -> dict[str, Any]:
    cap = int(job["output_bytes"])
    err_cap = int(job["stderr_bytes"])
    program = job["program"].encode("utf-8", "surrogatepass")
    oom_before, forks_before = oom_kills(), fork_rejections()
    flag[: core.FLAG.size] = core.FLAG.pack(0, core.FLAG_NONE)
    compiled = core.precompile(program, "<stdin>")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job, program, compiled, out_w, err_w, flag)
    os.close(out_w)
    os.close(err_w)
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)

    # Kept: stdout's first `cap` bytes and the last `err_cap` after them, stderr's last `err_cap`; the rest is
    # drained (core.Capture).
    out = core.Capture(cap, err_cap)
    poller = select.poll()
    open_reads = {out_r, err_r}
    for fd in open_reads:
        poller.register(fd, select.POLLIN)
    poller.register(wake_fd, select.POLLIN)
    poller.register(host.fd, select.POLLIN)

    def read(fd: int) -> None:
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        if not out.take(fd == out_r, data):
            poller.unregister(fd)
            open_reads.discard(fd)

    status = None
    usage = None
    reason = ""
    deadline = started + float(job["timeout_s"])
    while True:
        for reaped_pid, reaped_status, reaped_usage in reap_all(block=False):
            if reaped_pid == pid:
                status, usage = reaped_status, reaped_usage
        if status is not None:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reason = "timeout"
            break
        for fd, _event in poller.poll(max(1, math.ceil(remaining * 1000))):
            if fd == wake_fd:
                try:
                    while os.read(wake_fd, 512):
                        pass
                except BlockingIOError:
                    pass
            elif fd == host.fd:
                if not host.pump():  # the host is gone (killed harness): stop now, not at the timeout
                    poller.unregister(host.fd)
                    reason = "host gone"
            else:
                read(fd)
        if reason:
            break
    ended = time.monotonic()

    # Whatever is still alive now (the program on timeout, or anything it left behind) dies here.
    exited_alone = status is not None
    found, reaped = kill_all_others()
    strays = exited_alone and found
    for reaped_pid, reaped_status, reaped_usage in reaped:
        if reaped_pid == pid:
            status, usage = reaped_status, reaped_usage
    if status is None:  # cannot happen: the child is ours until reaped
        raise RuntimeError("program process vanished")
    for fd in list(open_reads):  # every writer is dead: drain to end of file
        os.set_blocking(fd, True)
        while fd in open_reads:
            read(fd)
    for fd in (out_r, err_r):
        os.close(fd)

    cpu_s = usage.ru_utime + usage.ru_stime if usage is not None else 0.0
    exit_code = None
    sig = None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    else:
        exit_code = os.WEXITSTATUS(status)
    flag_pid, flag_kind = core.FLAG.unpack(flag[: core.FLAG.size])
    flagged = flag_kind if flag_pid == pid else core.FLAG_NONE
    oom = oom_before >= 0 and oom_kills() > oom_before
    fork_refused = forks_before >= 0 and fork_rejections() > forks_before
    if reason == "timeout":
        kind = "timeout"
    elif sig is not None:
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_s >= job["cpu_s"]):
            kind = "timeout"
        elif (sig == signal.SIGKILL and oom) or (
            sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) and core.out_of_memory(out.stderr)
        ):
            kind = "memory_limit"
        else:
            kind = "signaled"
    elif exit_code == 0:
        kind = "exited"
    elif flagged == core.FLAG_MEMORY or oom:
        kind = "memory_limit"
    elif flagged == core.FLAG_PROCESS or fork_refused:
        kind = "process_limit"
    else:
        kind = "exited"

    clean = True
    for path, keep in job["wipe"]:
        clean = wipe(path, frozenset(keep)) and clean
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
        "cpu_s": cpu_s,
        "strays": strays,
        "clean": clean and not sysv_ipc_in_use(),
        "oom": oom,
        "fork_refused": fork_refused,
    }


def _load_shipped(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(f"codegen_eval_sandbox_{name}")
    exec(compile(source, f"<codegen-eval {name}>", "exec"), module.__dict__)
    return module


def main() -> None:
    global core
    if os.getpid() != 1:
        # kill(-1, SIGKILL) after every program is only safe as the init of a PID namespace of our own.
        sys.exit("container_supervisor: refusing to run: not PID 1 of a container")
    sources = json.loads(sys.argv[2])  # core.py and seccomp.py, as the host shipped them
    core = _load_shipped("core", sources["core"])
    protected = set_dumpable(0)
    for name in _PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    # The benchmark's modules (SandboxSettings.preload), passed as argv[1]; numpy's global random state is
    # reseeded in every child, as `random` does for itself, so programs do not share a stream.
    for name in json.loads(sys.argv[1]) if len(sys.argv) > 1 else []:
        with contextlib.suppress(Exception):
            __import__(name)

    def reseed_numpy() -> None:
        random = sys.modules.get("numpy.random")  # numpy 2 imports it lazily; then it seeds on first use
        if random is not None:
            random.seed()

    os.register_at_fork(after_in_child=reseed_numpy)
    # The syscall filter (codegen_eval/sandbox/seccomp.py, shipped in argv[2] with the execution core): installed
    # on this process before the first fork, so every program inherits it and none can remove it.
    try:
        seccomp_off = _load_shipped("seccomp", sources["seccomp"]).install()
    except Exception as exc:
        seccomp_off = f"{type(exc).__name__}: {exc}"
    flag = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and shared: survives fork in both directions
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
            "pid": os.getpid(),
            "uid": os.getuid(),
            "python": platform.python_version(),
            "protected": protected,
            "seccomp_off": seccomp_off,
            "observed": observe(),
        }
    )
    host = HostLink()
    while not host.closed:
        line = host.next_line()
        if line is None:
            break
        if not line.strip():
            continue
        try:
            result = run_job(json.loads(line), wake_r, flag, host)
        except Exception as exc:  # report the fault to the host instead of dying silently
            kill_all_others()
            result = {"fault": f"{type(exc).__name__}: {exc}"}
        if not host.closed:
            say(result)
    # End of stdin: the host went away (StdinOnce closes it when the attached client disconnects).
    kill_all_others()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
