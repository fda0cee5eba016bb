"""The in-sandbox execution core shared by both sandboxes: fork and limits, capture, supervision, tree kill, the
program's ending and its classification, clean-up, and the protocol both speak with their host.

Shipped as source into the bubblewrap worker and the container's supervisor (like seccomp.py), so it must run on
Python 3.8 and import nothing outside the standard library. What differs between the two is a parameter here.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stubs; the signal wrapper's enums cost a child page faults
import atexit
import contextlib
import errno
import functools
import json
import linecache
import mmap
import os
import resource
import select
import signal
import stat
import struct
import sys
import time
import traceback  # imported here, before forking: a program's sys.path[0] could shadow it later
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

# A shared page the child writes to when its main process dies of an uncaught exception that means "limit hit".
# It is memory, not a descriptor, so it survives closing every inherited fd in the child.
FLAG = struct.Struct("<iB")  # pid, kind
FLAG_NONE, FLAG_MEMORY, FLAG_PROCESS = 0, 1, 2
# A native crash with one of these in the stderr tail ran out of memory.
MEMORY_WORDS = (b"MemoryError", b"Cannot allocate memory", b"out of memory", b"std::bad_alloc")
PRECOMPILE_MAX_BYTES = 64 * 1024  # larger programs are compiled by their child, under its limits
# Pure stdlib modules that HumanEval-style programs import all the time. Imported once before forking, they reach
# every child initialised (a program could tell only from sys.modules). `random` reseeds itself from os.urandom in
# every forked child (CPython registers that at-fork hook), so children do not share a sequence.
STDLIB_PRELOAD = (
    *("bisect", "collections", "copy", "functools", "heapq", "itertools", "linecache", "math", "random", "re"),
    *("string", "typing"),
)
DRAIN_S = 1.0  # after the main process ends, how long to wait for its pipes to reach end of file
PR_SET_DUMPABLE = 4
_LIMITS = (
    *(resource.RLIMIT_CORE, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE, resource.RLIMIT_NOFILE),
    *(resource.RLIMIT_NPROC, resource.RLIMIT_AS),
)
_IPC_RMID = 0


# The protocol between the worker or the supervisor and its host, little-endian (each says over which descriptors):
#   sandbox -> host, once:    u32 length + JSON object describing the isolation the sandbox observes (ready)
#   host -> sandbox, per job: JOB header + program (UTF-8)
#   sandbox -> host, per job: RESULT header + stdout head + stdout tail + stderr tail (bytes)
JOB = struct.Struct("<IdQI")  # seq, timeout_s, memory_bytes (0: unlimited), program_len
# seq, kind, has_exit_code, exit_code, signal (0: none), duration_s, stdout head / stdout tail / stderr tail lengths,
# stdout and stderr bytes seen in all, clean (0: something may be left behind for the next program)
RESULT = struct.Struct("<IBBiidIIIQQB")
READY_LEN = struct.Struct("<I")
# A result's kind is its index here (an ExitKind value). "output_limit" is no longer produced (output past the
# cap is drained, not fatal); kept so the numbering stays.
KINDS = ("exited", "signaled", "timeout", "memory_limit", "output_limit", "process_limit")
FAULT = 255  # a result kind that is no ExitKind: the sandbox itself failed, and its stderr tail says why


class Capture:
    """What is kept of a program's output: the first `cap` bytes of stdout and the last `tail` bytes after them,
    the last `tail` bytes of stderr, and how many bytes each stream carried in all.

    Past what is kept, output is read and discarded: a program never blocks on a full pipe and never dies for
    being chatty (volume says nothing about correctness); its CPU and wall limits bound a flood.
    """

    def __init__(self, cap: int, tail: int) -> None:
        self.cap = cap
        self.tail = tail
        self.stdout = bytearray()
        self.stdout_tail = bytearray()
        self.stderr = bytearray()
        self.out_total = 0
        self.err_total = 0

    def take(self, is_stdout: bool, chunk: bytes) -> bool:
        """Record a chunk; False at end of file."""
        if not chunk:
            return False
        if is_stdout:
            self.out_total += len(chunk)
            room = self.cap - len(self.stdout)
            if room > 0:
                self.stdout += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.stdout_tail += chunk
                if len(self.stdout_tail) > self.tail:
                    del self.stdout_tail[: len(self.stdout_tail) - self.tail]
        else:
            self.err_total += len(chunk)
            self.stderr += chunk
            if len(self.stderr) > self.tail:
                del self.stderr[: len(self.stderr) - self.tail]
        return True


def precompile(program: bytes, filename: str) -> types.CodeType | None:
    """The program's code object, compiled before forking, or None to leave compiling to the child.

    A forked child pays a copy-on-write fault for every page the compiler writes (docs/execution.md, "Speed").
    Only a compilation that succeeds without a word is taken: anything it warns or raises is left to the child,
    where it happens as before, on the program's stderr and under its warning filters. Large programs are compiled
    by the child too, under its limits.
    """
    if len(program) > PRECOMPILE_MAX_BYTES:
        return None
    with warnings.catch_warnings(record=True) as said:  # filters and hooks restored on the way out
        warnings.simplefilter("always")  # every warning is recorded here, none printed, none remembered
        try:
            code = compile(program, filename, "exec", dont_inherit=True)
        except Exception:
            return None
    return None if said else code


def exit_status(e: SystemExit) -> int:
    """The exit status for a SystemExit, computed the way the interpreter does."""
    value = e.code
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    with contextlib.suppress(BaseException):
        sys.stderr.write(f"{value}\n")
    return 1


def source_lines(program: bytes, filename: str) -> None:
    """Give linecache the program's lines (its file does not exist; mtime None: never checked against disk)."""
    with contextlib.suppress(BaseException):
        text = program.decode("utf-8", "replace")
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)


def ready(info: dict[str, Any]) -> bytes:
    """The ready message."""
    body = json.dumps(info).encode()
    return READY_LEN.pack(len(body)) + body


def jobs(read: Callable[[int], bytes | None]) -> Iterator[tuple[int, float, int, bytes]]:
    """(seq, timeout_s, memory_bytes, program) of every job; `read` returns n bytes, None once the host is gone."""
    while True:
        head = read(JOB.size)
        if head is None:
            return
        seq, timeout_s, memory_bytes, length = JOB.unpack(head)
        program = read(length)
        if program is None:
            return
        yield seq, timeout_s, memory_bytes, program


def result(seq: int, kind: str, exit_code: int | None, sig: int | None, duration: float, out: Capture,
           clean: bool) -> bytes:  # fmt: skip
    """A result message: its header and what `out` kept."""
    kept = bytes(out.stdout), bytes(out.stdout_tail), bytes(out.stderr)
    header = RESULT.pack(
        *(seq, KINDS.index(kind), exit_code is not None, exit_code or 0, sig or 0, duration),
        *(len(kept[0]), len(kept[1]), len(kept[2]), out.out_total, out.err_total, clean),
    )
    return header + b"".join(kept)


# ------------------------------------------------------------------------------------ before the first fork


def preload(names: list[str]) -> None:
    """Import modules before forking (STDLIB_PRELOAD, then the benchmark's SandboxSettings.preload). One that fails
    to import is skipped: the program's own import then fails the way it would have. numpy.random seeds its global
    state once, at import; reseed it in every child, as `random` does for itself, so programs do not share a
    stream."""
    for name in (*STDLIB_PRELOAD, *names):
        with contextlib.suppress(Exception):
            __import__(name)
    if "numpy" in sys.modules:
        os.register_at_fork(after_in_child=_reseed_numpy)


def _reseed_numpy() -> None:
    random = sys.modules.get("numpy.random")  # numpy 2 imports it lazily; then the child seeds it on first use
    if random is not None:
        random.seed()


class Libc:
    """The few libc calls the standard library lacks (prctl, removing SysV IPC objects), through ctypes."""

    def __init__(self) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self.prctl = libc.prctl
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        self.prctl.restype = ctypes.c_int
        self.shmctl, self.semctl, self.msgctl = libc.shmctl, libc.semctl, libc.msgctl

    @staticmethod
    def load() -> Libc | None:
        try:
            return Libc()
        except (ImportError, OSError, AttributeError):
            return None

    def remove_ipc(self, kind: str, ident: int) -> None:
        if kind == "shm":
            self.shmctl(ident, _IPC_RMID, None)
        elif kind == "sem":
            self.semctl(ident, 0, _IPC_RMID)
        else:
            self.msgctl(ident, _IPC_RMID, None)


# ------------------------------------------------------------------------------------------- the program


class Child:
    """Forks the program's process and makes it `python program.py`: standard descriptors, nothing else inherited,
    its own process group or session, the original signal mask and handlers, dumpable again, the limits (soft =
    hard, never above the parent's hard limit), its working directory; then `enter` (the sandbox's own part:
    __main__, environment, streams), the program, and its end as the interpreter ends it: SystemExit codes,
    uncaught exceptions (printed as the interpreter prints them, limit-related ones flagged), then threads, atexit
    and the flushing of stdio. Made once, before the first fork, with the flag page its programs share with us.

    `filename`: the program's own (frames before its first are the sandbox's and are hidden). `linecache_hook`:
    print tracebacks through `traceback` (which reads linecache) while the default hook is installed, for a
    program whose file does not exist but whose lines should show, as with `python3 program.py`. `group`:
    "session" (setsid), "group" (setpgid) or "" (stay in the parent's). `signal_mask`: the mask to give back
    (None: unchanged). `default_signals`: handlers the parent installed, reset (and its wakeup fd dropped). Limits
    of 0 are not set; CPU and address space come with each program.
    """

    def __init__(self, filename: str, linecache_hook: bool, *, stdin_fd: int, maxfd: int, workdir: str, group: str,
                 prctl: Any, fsize: int, nofile: int, nproc: int = 0, signal_mask: set[int] | None = None,
                 default_signals: tuple[int, ...] = (), oom_score_adj: bool = False) -> None:  # fmt: skip
        self.flag = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and shared: survives fork in both directions
        self.filename, self.linecache_hook = filename, linecache_hook
        self.stdin_fd, self.maxfd, self.workdir, self.group, self.prctl = stdin_fd, maxfd, workdir, group, prctl
        self.signal_mask, self.default_signals, self.oom_score_adj = signal_mask, default_signals, oom_score_adj
        self.limits = [(resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NOFILE, nofile)]
        if nproc:
            self.limits.append((resource.RLIMIT_NPROC, nproc))
        self.hard_limits = {which: resource.getrlimit(which)[1] for which in _LIMITS}

    def run(self, program: bytes, compiled: types.CodeType | None, cpu_s: int, memory_bytes: int,
            enter: Callable[[], dict[str, Any]], out: Capture, timeout_s: float, tree: Tree,
            **watching: Any) -> tuple[int, Any, str, int, float, float]:  # fmt: skip
        """Fork the program with a pipe for each of its stdout and stderr, and supervise it to its end (supervise,
        which also takes `watching`); (status, rusage, why the wait ended early, what its main process recorded in
        the flag page, when it started, when the wait ended)."""
        self.flag[: FLAG.size] = FLAG.pack(0, FLAG_NONE)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            self.be_the_program(program, compiled, out_w, err_w, cpu_s, memory_bytes, enter)
        os.close(out_w)
        os.close(err_w)
        status, rusage, why, ended = supervise(pid, out_r, err_r, out, started + timeout_s, tree, **watching)
        flag_pid, kind = FLAG.unpack(self.flag[: FLAG.size])
        return status, rusage, why, int(kind) if flag_pid == pid else FLAG_NONE, started, ended

    def be_the_program(self, program: bytes, compiled: types.CodeType | None, out_w: int, err_w: int, cpu_s: int,
                       memory_bytes: int, enter: Callable[[], dict[str, Any]]) -> NoReturn:  # fmt: skip
        """In the forked child: become the program's process and run it; never returns. `compiled`: precompile's."""
        self.main_pid = os.getpid()
        try:
            self.become(out_w, err_w, cpu_s, memory_bytes)
            namespace = enter()
        except BaseException as e:  # anything here must end the child, never return into the parent's loop
            try:
                os.write(2, f"sandbox: could not prepare the program's process: {e!r}\n".encode())
            finally:
                os._exit(1)
        code = 1
        try:
            code = self.execute(program, compiled, namespace)
        finally:
            os._exit(code)

    def become(self, out_w: int, err_w: int, cpu_s: int, memory_bytes: int) -> None:
        if self.default_signals:  # the wakeup fd first: its descriptor is about to be closed and reused
            _signal.set_wakeup_fd(-1)
            for signum in self.default_signals:
                _signal.signal(signum, _signal.SIG_DFL)
        if self.group == "session":
            os.setsid()
        elif self.group == "group":  # as a shell gives `python3 program.py` (in a PID namespace, killpg(1) = kill(-1))
            os.setpgid(0, 0)
        os.dup2(self.stdin_fd, 0)  # /dev/null: input() sees end of file
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, self.maxfd)  # nothing but 0/1/2 survives: the program can never reach the protocol
        if self.signal_mask is not None:
            _signal.pthread_sigmask(signal.SIG_SETMASK, self.signal_mask)
        if self.prctl is not None:
            self.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the program's own /proc entries are its own again
        if self.oom_score_adj:  # the program and its descendants go first when the container runs out of memory
            with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        self.limit(resource.RLIMIT_CORE, 0)
        self.limit(resource.RLIMIT_CPU, cpu_s, cpu_s + 1)
        for which, value in self.limits:
            if value:
                self.limit(which, value)
        if memory_bytes:
            self.limit(resource.RLIMIT_AS, memory_bytes)
        os.chdir(self.workdir)

    def limit(self, which: int, soft: int, hard: int | None = None) -> None:
        """Set soft and hard limit (so the program cannot raise them), never above the parent's hard limit."""
        current_hard = self.hard_limits[which]
        hard = soft if hard is None else hard
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))

    def execute(self, program: bytes, compiled: types.CodeType | None, namespace: dict[str, Any]) -> int:
        """Execute the program in `namespace` and finish as the interpreter does; the exit status."""
        code = 0
        try:
            if compiled is None:
                compiled = compile(program, self.filename, "exec", dont_inherit=True)
            exec(compiled, namespace)
        except SystemExit as e:
            code = exit_status(e)
        except BaseException as e:
            if self.linecache_hook:
                source_lines(program, self.filename)
            code = self.uncaught(e)
        return self.finalize(code)

    def uncaught(self, e: BaseException) -> int:
        """Print an uncaught exception like the interpreter, flag limit-related ones; the exit status."""
        if os.getpid() != self.main_pid:
            pass  # a forked descendant: only the main process's fate decides the verdict
        elif isinstance(e, MemoryError):
            self.flag[: FLAG.size] = FLAG.pack(self.main_pid, FLAG_MEMORY)
        elif (isinstance(e, BlockingIOError) and e.errno == errno.EAGAIN) or (
            isinstance(e, RuntimeError) and "can't start new thread" in str(e)
        ):
            self.flag[: FLAG.size] = FLAG.pack(self.main_pid, FLAG_PROCESS)
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != self.filename:
            tb = tb.tb_next  # hide the sandbox's frames, as if the file had been run directly
        e.__traceback__ = tb  # the default hook prints the exception's own traceback, not its argument
        try:
            if self.linecache_hook and sys.excepthook is sys.__excepthook__:
                # The C hook reads source lines from the file, which does not exist; this one reads linecache.
                traceback.print_exception(type(e), e, tb)
            else:
                sys.excepthook(type(e), e, tb)
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exception(type(e), e, tb)
        return -signal.SIGINT if isinstance(e, KeyboardInterrupt) else 1

    def finalize(self, code: int) -> int:
        """Join non-daemon threads, run atexit callbacks, flush stdio: CPython's Py_FinalizeEx order."""
        threading = sys.modules.get("threading")
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except SystemExit as e:
                code = exit_status(e)
            except BaseException as e:
                self.uncaught(e)
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()  # prints a failing callback's traceback itself, like the interpreter
        for stream in (sys.stdout, sys.stderr):
            try:
                # A stream the program closed is skipped, as CPython's flush_std_files skips it.
                if stream is not None and not getattr(stream, "closed", False):
                    stream.flush()
            except BaseException:
                if stream is sys.stdout and code == 0:
                    code = 120  # what CPython exits with when flushing stdout fails at exit
        if code == -signal.SIGINT:
            # CPython turns an uncaught KeyboardInterrupt into a real death by SIGINT.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            code = 130
        return code


def supervise(pid: int, out_r: int, err_r: int, out: Capture, deadline: float, tree: Tree, wake_fd: int = -1,
              watch: tuple[int, Callable[[], bool]] | None = None) -> tuple[int, Any, str, float]:  # fmt: skip
    """Read both pipes without blocking until the main process exits or time runs out, kill what is left
    (the main process first), drain the pipes; (status, rusage, why the wait ended early, when it ended).

    The main process's end is noticed through its pidfd, or a SIGCHLD `wake_fd` (non-blocking; drained), or by
    looking every 2 ms; then every exited child is reaped, and the main process's (status, rusage) kept.
    `watch`: one more descriptor and what to do when it is readable; False stops the wait ("abandoned").
    """
    poller = select.poll()
    pidfd = -1
    if wake_fd >= 0:
        poller.register(wake_fd, select.POLLIN)
    elif hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
        except OSError:
            pidfd = -1
    looking = pidfd < 0 and wake_fd < 0
    poller.register(out_r, select.POLLIN)
    poller.register(err_r, select.POLLIN)
    if watch is not None:
        poller.register(watch[0], select.POLLIN)
    open_fds = {out_r, err_r}
    ended: tuple[int, Any] | None = None
    why = ""
    while True:
        now = time.monotonic()
        if now >= deadline:
            why = "timeout"
            break
        wait = min(deadline - now, 0.002) if looking else deadline - now
        child_done = looking
        for fd, _ in poller.poll(wait * 1000.0):
            if fd == pidfd:
                child_done = True
            elif fd == wake_fd:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_fd, 512):
                        pass
                child_done = True
            elif watch is not None and fd == watch[0]:
                if not watch[1]():
                    poller.unregister(fd)
                    why = "abandoned"
            elif not out.take(fd == out_r, os.read(fd, 1 << 16)):
                poller.unregister(fd)
                open_fds.discard(fd)
        if child_done:
            ended = Tree.reap(block=False, main=pid)
            if ended is not None:
                break
        if why:
            break
    end = time.monotonic()
    if ended is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        ended = os.wait4(pid, 0)[1:]
    for fd in (pidfd, wake_fd, -1 if watch is None or why == "abandoned" else watch[0]):
        if fd >= 0:
            poller.unregister(fd)  # from here on the poller holds only the pipes
    if pidfd >= 0:
        os.close(pidfd)
    # The main process is gone: kill whatever it left (daemons, setsid grandchildren). That also closes the
    # pipes' last write ends; then drain what is still buffered.
    tree.kill_others()
    drain_until = time.monotonic() + DRAIN_S
    while open_fds and time.monotonic() < drain_until:
        for fd, _ in poller.poll(100):
            if not out.take(fd == out_r, os.read(fd, 1 << 16)):
                poller.unregister(fd)
                open_fds.discard(fd)
    os.close(out_r)
    os.close(err_r)
    return ended[0], ended[1], why, end


def classify(status: int, rusage: Any, timed_out: bool, cpu_s: int, stderr_tail: bytes | bytearray, flagged: int,
             oom: bool = False, fork_refused: bool = False) -> tuple[str, int | None, int | None]:  # fmt: skip
    """How a program ended: (kind, exit code or None, signal or None); the kind is an ExitKind value.

    `cpu_s`: its CPU limit (a SIGKILL at or past it is RLIMIT_CPU's hard limit). `flagged`: what its main
    process recorded in the flag page (Child.run). `oom`, `fork_refused`: a memory or pids cgroup said so.
    """
    exit_code = sig = None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    elif os.WIFEXITED(status):
        exit_code = os.WEXITSTATUS(status)
    if timed_out:
        return "timeout", exit_code, sig
    if sig is not None:
        cpu = rusage.ru_utime + rusage.ru_stime if rusage is not None else 0.0
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cpu_s):
            return "timeout", exit_code, sig
        if (sig == signal.SIGKILL and oom) or (
            sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) and any(w in stderr_tail for w in MEMORY_WORDS)
        ):
            return "memory_limit", exit_code, sig
        return "signaled", exit_code, sig
    if exit_code in (0, None):
        return "exited", exit_code, sig
    if flagged == FLAG_MEMORY or oom:
        return "memory_limit", exit_code, sig
    if flagged == FLAG_PROCESS or fork_refused:
        return "process_limit", exit_code, sig
    return "exited", exit_code, sig


# ------------------------------------------------------------------------------------------- clean-up


class Tree:
    """Kills every process a program left behind (a setsid() grandchild, a daemon, a child that outlived its
    parent) and reaps them.

    `init`: we are PID 1 of a PID namespace of our own, so kill(-1) reaches exactly every other process in it and
    every orphan is ours to reap (`found` says whether there was any). Otherwise the victims come from /proc: in
    a namespace (`pidns`) every process but its init and us; else our descendants, plus (`kill_uid`) every process
    of our uid. As a `subreaper`, no child left means no process left.
    """

    def __init__(self, init: bool, pidns: bool = False, kill_uid: bool = False) -> None:
        self.init, self.pidns, self.kill_uid = init, pidns, kill_uid
        self.pid = os.getpid()
        self.uid = os.getuid()
        self.subreaper = False
        self.found = False

    def kill_others(self) -> bool:
        """SIGKILL every process the program left behind; True when none is left."""
        if self.init:
            try:
                os.kill(-1, signal.SIGKILL)
                self.found = True
            except ProcessLookupError:
                self.found = False
            self.reap(block=True)
            return True
        if self.subreaper and self.reap(block=False):
            return True  # no descendant at all (the usual case): no need to look at /proc
        for _ in range(200):
            victims = self._victims()
            if not victims:
                return True
            self.found = True
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            self.reap(block=False)
        return False

    @staticmethod
    def reap(block: bool, main: int = 0) -> Any:
        """Reap exited children (all of them if `block`). With `main`: its (status, rusage) if it was among them;
        else True when no child is left at all."""
        ended = None
        while True:
            try:
                pid, status, usage = os.wait4(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return ended if main else True
            except InterruptedError:
                continue
            if pid == 0:
                return ended if main else False
            if pid == main:
                ended = (status, usage)

    def _victims(self) -> list[int]:
        procs = processes()
        procs.pop(self.pid, None)
        if self.pidns:  # everything in our namespace but its init and us
            procs.pop(1, None)
            return [p for p, (state, _, _) in procs.items() if state != b"Z"]
        children: dict[int, list[int]] = {}
        for pid, (_, ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        found: set[int] = set()
        stack = [self.pid]
        while stack:
            for c in children.get(stack.pop(), ()):
                if c not in found:
                    found.add(c)
                    stack.append(c)
        if self.kill_uid:
            found.update(p for p, (_, _, uid) in procs.items() if uid == self.uid)
        return [p for p in found if procs[p][0] != b"Z"]


def processes() -> dict[int, tuple[bytes, int, int]]:
    """Every process /proc shows: pid -> (state, ppid, uid)."""
    procs: dict[int, tuple[bytes, int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
            uid = os.stat(f"/proc/{name}").st_uid
            fields = data[data.rfind(b")") + 2 :].split()
            procs[int(name)] = (fields[0], int(fields[1]), uid)
        except (OSError, IndexError, ValueError):
            continue
    return procs


def observe() -> dict[str, Any]:
    """The isolation this process has, seen from inside (the host checks it, and reports it in layers())."""
    seen: dict[str, Any] = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "net": None}
    seen["root_read_only"] = bool(os.statvfs("/").f_flag & os.ST_RDONLY)
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp"):
                seen[key] = value.strip()
    with contextlib.suppress(OSError), open("/proc/net/dev") as f:
        seen["net"] = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    return seen


def empty(directory: str, owner: int | None = None) -> bool:
    """Remove every entry of `directory` (only those owned by `owner` unless None); False if one remains or the
    directory cannot be listed (a program can make it unreadable: then it is not known clean)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    ok = True
    for name in names:
        path = os.path.join(directory, name)
        try:
            if owner is not None and os.lstat(path).st_uid != owner:
                continue
            remove(path)
        except (OSError, RecursionError):
            ok = False
    return ok


def remove(path: str) -> None:
    """Remove a file or a whole tree the program left, whatever permissions it set (it has our uid)."""
    if not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
        return
    dirs = []
    stack = [path]
    while stack:  # iterative: a program may nest directories deeper than the recursion limit
        current = stack.pop()
        os.chmod(current, stat.S_IRWXU)
        dirs.append(current)
        with os.scandir(current) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    os.unlink(entry.path)
    for current in reversed(dirs):
        os.rmdir(current)


def load_shipped(name: str, source: str) -> types.ModuleType:
    """A shipped module (seccomp.py) as a module object: the package is not importable inside a sandbox."""
    module = types.ModuleType(f"codegen_eval_sandbox_{name}")
    exec(compile(source, f"<codegen-eval {name}>", "exec"), module.__dict__)
    return module


@functools.lru_cache(maxsize=None)  # noqa: UP033 (functools.cache is 3.9+; this module also runs on 3.8)
def source(name: str) -> str:
    """The source of the sandbox module `name`, as sent into a sandbox (the package is not importable there, and
    the sandbox's uid need not read our files). Host side only; read once."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py"), encoding="utf-8") as f:
        return f.read()


def shipped_sources() -> dict[str, str]:
    """core.py and seccomp.py, which the worker and the supervisor load before anything else."""
    return {name: source(name) for name in ("core", "seccomp")}
