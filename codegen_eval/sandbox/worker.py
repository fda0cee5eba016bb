"""Sandbox worker: runs inside the sandbox and forks one child per program (stdlib only, Python >= 3.9).

The harness starts this file's source as `python -c SOURCE CONFIG_JSON`, so the unprivileged uid never has to
read the repository. The protocol travels on the worker's original stdin/stdout, little-endian:

  worker -> harness, once:    u32 length + JSON object describing the isolation the worker observes
  harness -> worker, per job: JOB header (seq, timeout_s, memory_bytes, program_len) + program (UTF-8)
  worker -> harness, per job: RESULT header + stdout head + stdout tail + stderr tail (bytes)

EOF on stdin ends the worker. It exits with RETIRE_STATUS when it cannot promise a clean state for the next
program; the harness then restarts it without blaming any job.

Nothing here may print: fds 0-2 are handed to programs and the protocol uses private descriptors.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stubs; see pthread_sigmask below
import atexit
import contextlib
import gc
import importlib
import importlib.machinery
import json
import mmap
import os
import resource
import select
import signal
import stat
import struct
import sys
import time
import types
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from codegen_eval.sandbox import core, seccomp
else:
    try:  # on the host (tests); inside a sandbox main() loads the sources the harness shipped
        from codegen_eval.sandbox import core, seccomp
    except ImportError:
        core = seccomp = None

JOB = struct.Struct("<IdQI")  # seq, timeout_s, memory_bytes (0: unlimited), program_len
# seq, kind, has_exit_code, exit_code, signal (0: none), duration_s, stdout head / stdout tail / stderr tail lengths,
# stdout and stderr bytes seen in all
RESULT = struct.Struct("<IBBiidIIIQQ")
READY_LEN = struct.Struct("<I")

# KIND_OUTPUT is no longer produced (output past the cap is drained, not fatal); kept so the numbering stays.
KIND_EXITED, KIND_SIGNALED, KIND_TIMEOUT, KIND_MEMORY, KIND_OUTPUT, KIND_PROCESS = range(6)
RETIRE_STATUS = 17

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_BLOCKED_IN_WORKER = (
    "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU",
    "SIGIO", "SIGPROF", "SIGVTALRM", "SIGPWR",
)  # fmt: skip
# Pure stdlib modules that HumanEval-style programs import all the time. Imported once in the worker, they
# reach every child initialised (a program could tell only from sys.modules). `random` reseeds itself from
# os.urandom in every forked child (CPython registers that at-fork hook), so children do not share a sequence.
_PRELOAD = (
    *("bisect", "collections", "copy", "functools", "heapq", "itertools", "math", "random", "re", "string"),
    "typing",
)
_DRAIN_S = 1.0  # after the main process ends, how long to wait for its pipes to reach EOF


def preload_benchmark_modules(names: list[str]) -> None:
    """Import the benchmark's modules before forking (SandboxSettings.preload). A module that fails to import is
    skipped: the program's own import then fails the way it would have. numpy.random seeds its global state once,
    at import; reseed it in every child, as `random` does for itself, so programs do not share a stream."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            continue
    if names:
        os.register_at_fork(after_in_child=_reseed_numpy)


def _reseed_numpy() -> None:
    # numpy.random may not be loaded yet (numpy 2 imports it lazily); then the child seeds it on first use.
    random = sys.modules.get("numpy.random")
    if random is not None:
        random.seed()


_LIMITS = (
    resource.RLIMIT_CORE,
    resource.RLIMIT_CPU,
    resource.RLIMIT_FSIZE,
    resource.RLIMIT_NOFILE,
    resource.RLIMIT_NPROC,
    resource.RLIMIT_AS,
)
_IPC_RMID = 0
_SYSV_IPC = (("shm", "shmid"), ("sem", "semid"), ("msg", "msqid"))  # /proc/sysvipc file, id column


class _Libc:
    """The few libc calls the standard library lacks (prctl, removing SysV IPC objects), through ctypes."""

    def __init__(self) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self.prctl = libc.prctl
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        self.prctl.restype = ctypes.c_int
        self.shmctl = libc.shmctl
        self.semctl = libc.semctl
        self.msgctl = libc.msgctl

    def remove_ipc(self, kind: str, ident: int) -> None:
        if kind == "shm":
            self.shmctl(ident, _IPC_RMID, None)
        elif kind == "sem":
            self.semctl(ident, 0, _IPC_RMID)
        else:
            self.msgctl(ident, _IPC_RMID, None)


def _load_libc() -> _Libc | None:
    try:
        return _Libc()
    except (OSError, AttributeError):
        return None


class _Cleaner:
    """Between programs: kills whatever a program left and empties everything it could write to."""

    def __init__(self, config: dict[str, Any], libc: _Libc | None) -> None:
        self.root: str = config["root"]  # emptied after every program
        self.work = os.path.join(self.root, "work")
        self.pidns = bool(config["pidns"])  # alone in a PID namespace whose init we are
        self.kill_uid = bool(config["kill_uid"])  # our uid is ours alone: any process of it may be killed
        self.pid = os.getpid()
        self.uid = os.getuid()
        self.libc = libc
        # Emptied after every program as well: private scratch mounts (inside bubblewrap), or, with a dedicated
        # uid but no namespaces, whatever that uid left in the host's shared scratch directories.
        self.scratch: list[str] = list(config.get("scratch", ()))
        self.owned_scratch: list[str] = list(config.get("owned_scratch", ()))
        self.subreaper = False  # set by the worker once prctl says so
        self.sysvipc_fds: list[tuple[str, str, int]] = []  # (kind, id column, open /proc/sysvipc file)

    def kill_others(self) -> bool:
        """SIGKILL every process the program left behind; True when none is left."""
        if self.subreaper and self._reap_all():
            return True  # no descendant at all (the usual case): no need to look at /proc
        for _ in range(200):
            victims = self._victims()
            if not victims:
                return True
            for pid in victims:
                _kill(pid)
            self._reap_all()
        return False

    def _reap_all(self) -> bool:
        """Reap exited children; True when no child is left at all."""
        while True:
            try:
                got, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if got == 0:
                return False

    def _victims(self) -> list[int]:
        procs: dict[int, tuple[bytes, int, int]] = {}  # pid -> (state, ppid, uid)
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid == self.pid or (self.pidns and pid == 1):
                continue
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    data = f.read()
                uid = os.stat(f"/proc/{pid}").st_uid
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2 :].split()
            procs[pid] = (fields[0], int(fields[1]), uid)
        if self.pidns:  # everything in our namespace but its init and us
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

    def clear_scratch(self) -> bool:
        """Empty /dev/shm, /dev/mqueue and SysV IPC: they outlive a program, and must not reach the next one."""
        ok = True
        for directory in self.scratch:
            ok = _empty(directory, None) and ok
        for directory in self.owned_scratch:
            _empty(directory, self.uid)  # best effort: shared with the host
        if self.libc is not None:
            for kind, id_column, fd in self.sysvipc_fds:
                lines = os.pread(fd, 1 << 20, 0).decode().splitlines()  # procfs regenerates it on every read
                if len(lines) < 2:
                    continue
                names = lines[0].split()
                for line in lines[1:]:
                    row = dict(zip(names, line.split()))  # noqa: B905 - zip(strict=) needs 3.10
                    if str(self.uid) in (row.get("uid"), row.get("cuid")):
                        self.libc.remove_ipc(kind, int(row[id_column]))
        return ok

    def wipe(self) -> bool:
        """Empty the root (the working dir and, inside bubblewrap, all of the private /tmp)."""
        # Fast path for the usual case: an untouched working directory, alone in the root (the program itself is
        # never written to disk).
        with contextlib.suppress(OSError):
            os.rmdir(self.work)
        try:
            entries = os.listdir(self.root)
        except OSError:
            return False
        ok = True
        for name in entries:
            try:
                _remove(os.path.join(self.root, name))
            except (OSError, RecursionError):
                ok = False
        return ok


def _look_like_the_program(path: str, work: str) -> dict[str, object]:
    """Interpreter state that is the same for every program, set once here instead of in every child; returns
    the template of the program's `__main__` namespace.

    Each object a child touches costs it a copy-on-write page fault, so children do as little as possible.
    """
    sys.argv = [path]
    sys.orig_argv = [sys.executable, path]
    if sys.path:
        sys.path[0] = os.path.dirname(path)
    os.environ["PWD"] = work
    atexit._clear()  # only the program's own callbacks run at its exit
    return {
        "__loader__": importlib.machinery.SourceFileLoader("__main__", path),
        "__file__": path,
        "__cached__": None,
        "__spec__": None,
        "__package__": None,
        "__builtins__": __builtins__,
    }


def _warm_up(program_path: str) -> None:
    """Compile, run, print and format a traceback once before the first fork.

    CPython initialises much of this lazily; done here, every child inherits it instead of redoing it, and
    page faults are most of what a child costs.
    """
    saved = sys.stdout, sys.stderr
    with open(os.devnull, "w") as sink:
        sys.stdout = sys.stderr = sink
        try:
            code = compile(_WARM_UP, program_path, "exec", dont_inherit=True)
            exec(code, {"__name__": "__warm_up__", "__builtins__": __builtins__})
        except AssertionError as e:
            sys.excepthook(type(e), e, e.__traceback__)
        finally:
            sys.stdout, sys.stderr = saved


def _describe(subreaper: bool, undumpable: bool, seccomp_off: str, pidfd: bool) -> dict[str, object]:
    """What the worker observes of its own isolation (the harness checks it against the plan)."""
    info: dict[str, object] = {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "subreaper": subreaper,
        "undumpable": undumpable,
        "seccomp_off": seccomp_off,
        "pidfd": pidfd,
        "root_readonly": bool(os.statvfs("/").f_flag & os.ST_RDONLY),
    }
    try:
        with open("/proc/net/dev") as f:
            info["net_interfaces"] = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    except OSError:
        info["net_interfaces"] = None
    try:
        with open("/proc/self/status") as f:
            info["cap_eff"] = next(line.split()[1] for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        info["cap_eff"] = None
    return info


def _ending(
    status: int, rusage: Any, timed_out: bool, cpu_soft: int, out: core.Capture, flag: mmap.mmap, pid: int
) -> tuple[int, int, int, int]:
    """How a program ended, as (kind, has_code, exit_code, signal) for the RESULT header."""
    kind = KIND_EXITED
    exit_code = sig = has_code = 0
    if os.WIFEXITED(status):
        has_code, exit_code = 1, os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        kind = KIND_SIGNALED
    if timed_out:
        kind = KIND_TIMEOUT
    elif kind == KIND_SIGNALED:
        cpu = rusage.ru_utime + rusage.ru_stime if rusage is not None else 0.0
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cpu_soft):
            kind = KIND_TIMEOUT
        elif sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) and core.out_of_memory(out.stderr):
            kind = KIND_MEMORY
    elif exit_code == 1:
        flag_pid, flag_kind = core.FLAG.unpack(flag[: core.FLAG.size])
        if flag_pid == pid and flag_kind == core.FLAG_MEMORY:
            kind = KIND_MEMORY
        elif flag_pid == pid and flag_kind == core.FLAG_PROCESS:
            kind = KIND_PROCESS
    return kind, has_code, exit_code, sig


class Worker:
    """Runs programs one at a time, each in a child forked from this warm interpreter."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.root: str = config["root"]  # emptied after every program
        self.preload: list[str] = list(config.get("preload", []))  # the benchmark's modules (SandboxSettings)
        self.pidns = bool(config["pidns"])  # alone in a PID namespace whose init is pid 1
        self.out_cap = int(config["output_bytes"])
        self.err_tail = int(config["stderr_tail_bytes"])
        self.work = os.path.join(self.root, "work")
        self.program_path = os.path.join(self.root, "program.py")
        self.flag = mmap.mmap(-1, mmap.PAGESIZE)
        self.signal_mask: set[int] = set()  # the mask children get back
        self.config = config
        self.child: _Child | None = None  # made at the end of setup, once everything it copies is known
        libc = _load_libc()
        self.prctl = libc.prctl if libc is not None else None
        self.ipc_cleanup = bool(config.get("ipc_cleanup", False))
        self.cleaner = _Cleaner(config, libc)
        self.has_pidfd = hasattr(os, "pidfd_open")
        self.proto_in = self.proto_out = self.devnull = -1
        self.main_template: dict[str, object] = {}
        self.seccomp_off = "not installed"  # why the filter is not in effect; "" once it is

    # ----------------------------------------------------------------------------------------- setup

    def setup(self) -> dict[str, object]:
        """Move the protocol off fds 0/1, harden the worker, and describe what isolation is in effect."""
        if self.pidns:
            # PID 1 of the namespace, in a session bubblewrap made outside it: programs would see process group 0.
            # A session of our own here gives them an ordinary one (the worker's), as `python3 program.py` has.
            with contextlib.suppress(OSError):
                os.setsid()
        self.proto_in = os.dup(0)
        self.proto_out = os.dup(1)
        self.devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(self.devnull, 0)
        os.dup2(self.devnull, 1)
        # Programs share our uid and can signal us: block the usual terminating and stopping signals (a child
        # gets the original mask back with one call). SIGKILL and SIGSTOP remain; the harness notices both.
        blocked = {getattr(signal, name) for name in _BLOCKED_IN_WORKER if hasattr(signal, name)}
        # _signal, not signal: the wrapper converts to enums, which costs every child page faults.
        self.signal_mask = set(_signal.pthread_sigmask(signal.SIG_BLOCK, blocked))
        if self.prctl is not None:
            # Not dumpable: a program with our uid cannot ptrace us or open /proc/<us>/fd or /proc/<us>/mem.
            self.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
            # Orphans are reparented to us, so "no child left" means "no process of this program left".
            self.cleaner.subreaper = self.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            if not self.pidns:
                self.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() == 1:  # the harness died before the death signal was armed
                    os._exit(RETIRE_STATUS)
        os.makedirs(self.root, exist_ok=True)
        self.cleaner.wipe()
        if self.ipc_cleanup:
            for kind, id_column in _SYSV_IPC:
                with contextlib.suppress(OSError):
                    fd = os.open(f"/proc/sysvipc/{kind}", os.O_RDONLY)
                    self.cleaner.sysvipc_fds.append((kind, id_column, fd))
        self.cleaner.clear_scratch()
        for name in _PRELOAD:
            importlib.import_module(name)
        preload_benchmark_modules(self.preload)
        _warm_up(self.program_path)
        self.main_template = _look_like_the_program(self.program_path, self.work)
        self.child = _Child(self, self.config)
        # Last, once nothing else needs setting up: every program forked from now on inherits the filter.
        self.seccomp_off = seccomp.install()
        gc.collect()
        gc.freeze()  # a child's collector then never walks (so never copies) the worker's own objects
        return _describe(self.cleaner.subreaper, self.prctl is not None, self.seccomp_off, self.has_pidfd)

    # ------------------------------------------------------------------------------------- main loop

    def serve(self) -> int:
        ready = json.dumps(self.setup()).encode()
        self.write(READY_LEN.pack(len(ready)) + ready)
        while True:
            head = self.read_exactly(JOB.size)
            if head is None:
                return 0
            seq, timeout_s, memory_bytes, length = JOB.unpack(head)
            program = self.read_exactly(length)
            if program is None:
                return 0
            header, body, clean = self.run(program, timeout_s, memory_bytes)
            self.write(RESULT.pack(seq, *header) + body)
            if not clean:
                return RETIRE_STATUS

    def read_exactly(self, n: int) -> bytes | None:
        """n bytes of the protocol, None at end of file. Unbuffered on purpose: the harness queues the next job
        while one runs, and a buffered read would pull it into this process's memory, where the forked program
        could read it. It stays in the pipe instead, out of the program's reach."""
        chunks = []
        while n > 0:
            chunk = os.read(self.proto_in, n)
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.proto_out, view) :]

    # ------------------------------------------------------------------------------------ one program

    def run(self, program: bytes, timeout_s: float, memory_bytes: int) -> tuple[tuple[Any, ...], bytes, bool]:
        os.mkdir(self.work, 0o700)
        # The source is never written to disk: a program could read the file (and the checks' nonce in it) through
        # /proc/self/cwd/... Tracebacks still show source lines: run_main() puts them in linecache first.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.flag[: core.FLAG.size] = core.FLAG.pack(0, core.FLAG_NONE)
        cpu_soft = int(timeout_s) + 1
        main = types.ModuleType("__main__")  # made here, where it costs no page faults
        main.__dict__.update(self.main_template)
        compiled = self.precompile(program)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            assert self.child is not None  # made by setup()
            self.child.become_the_program(program, compiled, main, out_w, err_w, cpu_soft, memory_bytes)
        del main
        os.close(out_w)
        os.close(err_w)
        status, rusage, out, timed_out = self.supervise(pid, out_r, err_r, start + timeout_s)
        duration = time.monotonic() - start
        clean = self.cleaner.kill_others()
        clean = self.cleaner.wipe() and clean
        clean = self.cleaner.clear_scratch() and clean

        kind, has_code, exit_code, sig = _ending(status, rusage, timed_out, cpu_soft, out, self.flag, pid)
        body = bytes(out.stdout) + bytes(out.stdout_tail) + bytes(out.stderr)
        header = (
            *(kind, has_code, exit_code, sig, duration),
            *(len(out.stdout), len(out.stdout_tail), len(out.stderr), out.out_total, out.err_total),
        )
        return header, body, clean

    def precompile(self, program: bytes) -> types.CodeType | None:
        """The program's code object compiled before forking, or None (core.precompile says when and why)."""
        return core.precompile(program, self.program_path)

    def supervise(self, pid: int, out_r: int, err_r: int, deadline: float) -> tuple[int, Any, core.Capture, bool]:
        """Read both pipes without blocking until the child exits or time runs out."""
        out = core.Capture(self.out_cap, self.err_tail)
        timed_out = False
        status: int | None = None
        rusage: Any = None
        poller = select.poll()
        pidfd = -1
        if self.has_pidfd:
            try:
                pidfd = os.pidfd_open(pid)
                poller.register(pidfd, select.POLLIN)
            except OSError:
                pidfd = -1
        poller.register(out_r, select.POLLIN)
        poller.register(err_r, select.POLLIN)
        open_fds = {out_r, err_r}
        while True:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            wait = deadline - now
            if pidfd < 0:
                wait = min(wait, 0.002)  # no pidfd: look at the child every couple of milliseconds
            child_done = pidfd < 0
            for fd, _ in poller.poll(wait * 1000.0):
                if fd == pidfd:
                    child_done = True
                elif not out.take(fd == out_r, os.read(fd, 1 << 16)):
                    poller.unregister(fd)
                    open_fds.discard(fd)
            if child_done:
                got, st, ru = os.wait4(pid, os.WNOHANG)
                if got == pid:
                    status, rusage = st, ru
                    break
        if status is None:
            _kill(pid)
            _, status, rusage = os.wait4(pid, 0)
        if pidfd >= 0:
            poller.unregister(pidfd)
            os.close(pidfd)
        # The main process is gone: kill whatever it left (daemons, setsid grandchildren). That also closes
        # the pipes' last write ends; then drain what is still buffered.
        self.cleaner.kill_others()
        drain_until = time.monotonic() + _DRAIN_S
        while open_fds and time.monotonic() < drain_until:
            for fd, _ in poller.poll(100):
                if not out.take(fd == out_r, os.read(fd, 1 << 16)):
                    poller.unregister(fd)
                    open_fds.discard(fd)
        os.close(out_r)
        os.close(err_r)
        return status, rusage, out, timed_out


class _Child:
    """The forked child's side: become `python program.py` (descriptors, signal mask, limits, working directory),
    run the program through the execution core, exit with its status. Set up by the worker before any fork."""

    def __init__(self, worker: Worker, config: dict[str, Any]) -> None:
        self.devnull = worker.devnull
        self.maxfd = max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1024)
        self.pidns = worker.pidns
        self.signal_mask = worker.signal_mask  # the mask to give children back
        self.prctl = worker.prctl
        self.hard_limits = {which: resource.getrlimit(which)[1] for which in _LIMITS}
        self.fsize = int(config["file_size_bytes"])
        self.nofile = int(config["max_open_files"])
        self.nproc = int(config["max_processes"])
        self.work = worker.work
        self.flag = worker.flag
        self.program_path = worker.program_path
        self.main_pid = 0  # in a child: the pid of the program's main process

    def become_the_program(
        self,
        program: bytes,
        compiled: types.CodeType | None,
        main: types.ModuleType,
        out_w: int,
        err_w: int,
        cpu_soft: int,
        memory_bytes: int,
    ) -> NoReturn:
        """Become `python program.py` in a fresh working directory (`compiled`: the program, already compiled
        by precompile, or None). Never returns."""
        self.main_pid = os.getpid()
        try:
            os.dup2(self.devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            # Nothing but 0/1/2 survives: the program can never reach the worker's protocol.
            os.closerange(3, self.maxfd)
            if self.pidns:
                # Its own process group, as a shell gives `python3 program.py`: the worker's group is 1, and
                # killpg(1) would mean kill(-1).
                os.setpgid(0, 0)
            _signal.pthread_sigmask(signal.SIG_SETMASK, self.signal_mask)
            if self.prctl is not None:
                self.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
            self.limit(resource.RLIMIT_CORE, 0)
            self.limit(resource.RLIMIT_CPU, cpu_soft, cpu_soft + 1)
            if self.fsize:
                self.limit(resource.RLIMIT_FSIZE, self.fsize)
            if self.nofile:
                self.limit(resource.RLIMIT_NOFILE, self.nofile)
            if self.nproc:
                self.limit(resource.RLIMIT_NPROC, self.nproc)
            if memory_bytes:
                self.limit(resource.RLIMIT_AS, memory_bytes)
            os.chdir(self.work)
        except BaseException as e:
            try:
                os.write(2, f"sandbox: could not prepare the program's process: {e!r}\n".encode())
            finally:
                os._exit(1)
        code = 1
        try:
            code = self.run_main(program, compiled, main)
        finally:
            os._exit(code)

    def limit(self, which: int, soft: int, hard: int | None = None) -> None:
        """Set soft and hard limit (so the program cannot raise them), never above the worker's hard limit."""
        current_hard = self.hard_limits[which]
        hard = soft if hard is None else hard
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))

    def run_main(self, program: bytes, compiled: types.CodeType | None, main: types.ModuleType) -> int:
        """Execute the program as __main__ and finish the way `python program.py` does; the exit status."""
        sys.modules["__main__"] = main
        return core.Ending(self.flag, self.program_path, linecache_hook=True).run(program, compiled, main.__dict__)


_WARM_UP = b'''
import math
from typing import List


def f(xs: List[int], k: int = 2) -> List[int]:
    """A docstring, a comprehension, a lambda and an f-string."""
    return sorted({x * k for x in xs if x % 2 == 0}, key=lambda v: -v)


class C:
    def __init__(self, v):
        self.v = v

    def __repr__(self):
        return f"C({self.v!r})"


def check(candidate):
    assert candidate([1, 2, 3, 4]) == [8, 4]
    assert abs(math.sqrt(2.0) - 1.4142) < 1e-3
    d = {"a": [1, 2], "b": (3, 4.5)}
    print(d, C("x"), [str(i) for i in range(3)], " ".join(["p", "q"]).upper())
    try:
        int("x")
    except ValueError:
        pass


check(f)
assert f([2]) == [5], "deliberately failing, to format a traceback"
'''


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _empty(directory: str, owner: int | None) -> bool:
    """Remove every entry of `directory` (only those owned by `owner` unless None); False if one remains."""
    try:
        names = os.listdir(directory)
    except OSError:
        return True  # nothing there (not mounted, or not ours to list)
    ok = True
    for name in names:
        path = os.path.join(directory, name)
        try:
            if owner is not None and os.lstat(path).st_uid != owner:
                continue
            _remove(path)
        except (OSError, RecursionError):
            ok = False
    return ok


def _remove(path: str) -> None:
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


def _load_shipped(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(f"codegen_eval_sandbox_{name}")
    exec(compile(source, f"<codegen-eval {name}>", "exec"), module.__dict__)
    return module


def main() -> int:
    global core, seccomp
    config = json.loads(sys.argv[1])
    sources = config.get("sources") or {}
    if sources:  # inside a sandbox: core.py and seccomp.py as the harness shipped them
        core = _load_shipped("core", sources["core"])
        seccomp = _load_shipped("seccomp", sources["seccomp"])
    return Worker(config).serve()


if __name__ == "__main__":
    sys.exit(main())
