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

from __future__ import annotations

import base64
import errno
import json
import math
import os
import platform
import re
import resource
import select
import signal
import sys
import time
from typing import Any

_READ_CHUNK = 1 << 16
_MEMORY_ERROR_LINE = re.compile(rb"^([A-Za-z_][\w.]*\.)?\w*MemoryError\b")
_CGROUP_OOM = "/sys/fs/cgroup/memory/memory.oom_control"  # cgroup v1; v2 fallback below
_CGROUP2_MEMORY_EVENTS = "/sys/fs/cgroup/memory.events"
_CGROUP_PIDS_EVENTS = "/sys/fs/cgroup/pids/pids.events"
_CGROUP2_PIDS_EVENTS = "/sys/fs/cgroup/pids.events"


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


def make_nondumpable() -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(4, 0, 0, 0, 0) == 0)  # PR_SET_DUMPABLE = 4
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


def _child(job: dict[str, Any], stdin_fd: int, stdout_fd: int, stderr_fd: int) -> None:
    """In the forked child: limits, clean environment, exec the interpreter reading the program on stdin."""
    try:
        os.setsid()
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.closerange(3, 1 << 16)
        os.chdir(job["workdir"])
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        try:  # the program and its descendants go first when the container runs out of memory
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        cpu = job["cpu_s"]
        memory = job["memory_mb"] << 20
        limits = (
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_DATA, memory, memory),
            (resource.RLIMIT_CPU, cpu, cpu + 1),
            (resource.RLIMIT_FSIZE, job["file_size_mb"] << 20, job["file_size_mb"] << 20),
            (resource.RLIMIT_NOFILE, job["max_open_files"], job["max_open_files"]),
            (resource.RLIMIT_CORE, 0, 0),
        )
        for which, soft, hard in limits:
            resource.setrlimit(which, (soft, hard))
        python = job["python"]
        # "-": the interpreter reads the whole program from the pipe before running it, so the source is not
        # left in a file or argv for the program to find; input() sees end of file.
        os.execvpe(python, [python, "-"], job["env"])
    except BaseException as exc:  # anything here must end the child, never return into the supervisor's loop
        try:
            os.write(2, f"sandbox: cannot start {job.get('python')}: {exc!r}\n".encode())
        finally:
            os._exit(127)


def run_job(job: dict[str, Any], wake_fd: int) -> dict[str, Any]:
    cap = int(job["output_bytes"])
    program = job["program"].encode("utf-8", "surrogatepass")
    oom_before, forks_before = oom_kills(), fork_rejections()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job, in_r, out_w, err_w)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    for fd in (in_w, out_r, err_r):
        os.set_blocking(fd, False)

    stdout = bytearray()
    stdout_total = 0
    stderr_tail = bytearray()
    stderr_total = 0
    pending = memoryview(program)
    poller = select.poll()
    open_reads = {out_r, err_r}
    for fd in open_reads:
        poller.register(fd, select.POLLIN)
    poller.register(wake_fd, select.POLLIN)
    if pending:
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
        in_w = -1

    def read(fd: int) -> None:
        nonlocal stdout_total, stderr_total, stderr_tail
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        if not data:
            poller.unregister(fd)
            open_reads.discard(fd)
            return
        if fd == out_r:
            if stdout_total < cap:
                stdout.extend(data[: cap - stdout_total])
            stdout_total += len(data)
        else:
            stderr_tail.extend(data)
            if len(stderr_tail) > cap:
                stderr_tail = stderr_tail[-cap:]
            stderr_total += len(data)

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
        if stdout_total > cap or stderr_total > cap:
            reason = "output"
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
            elif fd == in_w:
                try:
                    pending = pending[os.write(in_w, pending[:_READ_CHUNK]) :]
                except (BrokenPipeError, BlockingIOError) as exc:
                    if isinstance(exc, BrokenPipeError):
                        pending = pending[:0]
                if not pending:
                    poller.unregister(in_w)
                    os.close(in_w)
                    in_w = -1
            else:
                read(fd)
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
    if in_w >= 0:
        os.close(in_w)
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
    oom = oom_before >= 0 and oom_kills() > oom_before
    fork_refused = forks_before >= 0 and fork_rejections() > forks_before
    last_line = b""
    for line in reversed(bytes(stderr_tail).splitlines()):
        if line.strip():
            last_line = line.strip()
            break
    if reason == "timeout":
        kind = "timeout"
    elif reason == "output" or stdout_total > cap or stderr_total > cap:
        kind = "output_limit"
    elif sig is not None:
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_s >= job["cpu_s"] - 0.05):
            kind = "timeout"
        elif sig == signal.SIGKILL and oom:
            kind = "memory_limit"
        else:
            kind = "signaled"
    elif exit_code != 0 and oom:
        kind = "memory_limit"
    elif exit_code != 0 and fork_refused:
        kind = "process_limit"
    elif exit_code != 0 and _MEMORY_ERROR_LINE.match(last_line):
        kind = "memory_limit"
    else:
        kind = "exited"

    clean = True
    for path, keep in job["wipe"]:
        clean = wipe(path, frozenset(keep)) and clean
    return {
        "kind": kind,
        "exit_code": exit_code,
        "signal": sig,
        "stdout": base64.b64encode(bytes(stdout)).decode("ascii"),
        "stderr": base64.b64encode(bytes(stderr_tail)).decode("ascii"),
        "stdout_truncated": stdout_total > cap,
        "stdout_bytes": stdout_total,
        "stderr_bytes": stderr_total,
        "duration_s": ended - started,
        "cpu_s": cpu_s,
        "strays": strays,
        "clean": clean and not sysv_ipc_in_use(),
        "oom": oom,
        "fork_refused": fork_refused,
    }


def main() -> None:
    protected = make_nondumpable()
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
        }
    )
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            result = run_job(json.loads(line), wake_r)
        except Exception as exc:  # report the fault to the host instead of dying silently
            kill_all_others()
            result = {"fault": f"{type(exc).__name__}: {exc}"}
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
