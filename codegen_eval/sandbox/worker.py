"""Sandbox worker: runs inside the sandbox and forks one child per program (stdlib only, Python >= 3.9).

The harness starts this file's source as `python -c SOURCE CONFIG_JSON`, so the unprivileged uid never has to
read the repository. The protocol (core.py: a ready message, then a JOB and its RESULT per program) travels on the
worker's original stdin/stdout. EOF on stdin ends the worker. It exits with RETIRE_STATUS when it cannot promise a
clean state for the next program; the harness then restarts it without blaming any job.

Nothing here may print: fds 0-2 are handed to programs and the protocol uses private descriptors.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stubs; see pthread_sigmask below
import atexit
import contextlib
import functools
import gc
import importlib.machinery
import json
import os
import resource
import signal
import sys
import time
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codegen_eval.sandbox import core, seccomp
else:
    try:  # on the host (tests); inside a sandbox main() loads the sources the harness shipped
        from codegen_eval.sandbox import core, seccomp
    except ImportError:
        core = seccomp = None

RETIRE_STATUS = 17

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_BLOCKED_IN_WORKER = (
    "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU",
    "SIGIO", "SIGPROF", "SIGVTALRM", "SIGPWR",
)  # fmt: skip
_SYSV_IPC = (("shm", "shmid"), ("sem", "semid"), ("msg", "msqid"))  # /proc/sysvipc file, id column


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


class Worker:
    """Runs programs one at a time, each in a child forked from this warm interpreter (through the core)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.root: str = config["root"]  # emptied after every program
        self.pidns = bool(config["pidns"])  # alone in a PID namespace whose init is pid 1
        self.out_cap = int(config["output_bytes"])
        self.err_tail = int(config["stderr_tail_bytes"])
        self.work = os.path.join(self.root, "work")
        self.program_path = os.path.join(self.root, "program.py")
        self.config = config
        self.child: core.Child | None = None  # made at the end of setup, once everything it copies is known
        self.libc = core.Libc.load()
        self.prctl = self.libc.prctl if self.libc is not None else None
        # As PID 1 of the namespace (bubblewrap's --as-pid-1), kill(-1) reaches every process a program left.
        init = self.pidns and os.getpid() == 1
        self.tree = core.Tree(init, pidns=self.pidns, kill_uid=bool(config["kill_uid"]))
        # Emptied after every program as well: private scratch mounts (inside bubblewrap), or, with a dedicated
        # uid but no namespaces, whatever that uid left in the host's shared scratch directories.
        self.scratch: list[str] = list(config.get("scratch", ()))
        self.owned_scratch: list[str] = list(config.get("owned_scratch", ()))
        self.sysvipc_fds: list[tuple[str, str, int]] = []  # (kind, id column, open /proc/sysvipc file)
        self.proto_in = self.proto_out = self.devnull = -1
        self.main_template: dict[str, object] = {}

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
        signal_mask = set(_signal.pthread_sigmask(signal.SIG_BLOCK, blocked))  # what children get back
        if self.prctl is not None:
            # Not dumpable: a program with our uid cannot ptrace us or open /proc/<us>/fd or /proc/<us>/mem.
            self.prctl(core.PR_SET_DUMPABLE, 0, 0, 0, 0)
            # Orphans are reparented to us, so "no child left" means "no process of this program left".
            self.tree.subreaper = self.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            if not self.pidns:
                self.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() == 1:  # the harness died before the death signal was armed
                    os._exit(RETIRE_STATUS)
        os.makedirs(self.root, exist_ok=True)
        self.wipe()
        if self.config.get("ipc_cleanup", False):
            for kind, id_column in _SYSV_IPC:
                with contextlib.suppress(OSError):
                    fd = os.open(f"/proc/sysvipc/{kind}", os.O_RDONLY)
                    self.sysvipc_fds.append((kind, id_column, fd))
        self.clear_scratch()
        core.preload(list(self.config.get("preload", [])))
        _warm_up(self.program_path)
        self.main_template = _look_like_the_program(self.program_path, self.work)
        self.child = core.Child(
            self.program_path, True, stdin_fd=self.devnull, workdir=self.work, prctl=self.prctl,
            maxfd=max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1024), group="group" if self.pidns else "",
            fsize=int(self.config["file_size_bytes"]), nofile=int(self.config["max_open_files"]),
            nproc=int(self.config["max_processes"]), signal_mask=signal_mask,
        )  # fmt: skip
        # Last, once nothing else needs setting up: every program forked from now on inherits the filter.
        seccomp_off = seccomp.install()  # why the filter is not in effect; "" once it is
        gc.collect()
        gc.freeze()  # a child's collector then never walks (so never copies) the worker's own objects
        return {**core.observe(), "python": sys.version.split()[0], "seccomp_off": seccomp_off}

    # ------------------------------------------------------------------------------------- main loop

    def serve(self) -> int:
        self.write(core.ready(self.setup()))
        for seq, timeout_s, memory_bytes, program in core.jobs(self.read_exactly):
            message, clean = self.run(seq, program, timeout_s, memory_bytes)
            self.write(message)
            if not clean:
                return RETIRE_STATUS
        return 0

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

    def run(self, seq: int, program: bytes, timeout_s: float, memory_bytes: int) -> tuple[bytes, bool]:
        assert self.child is not None  # made by setup()
        os.mkdir(self.work, 0o700)
        # The source is never written to disk: a program could read the file (and the checks' nonce in it) through
        # /proc/self/cwd/... Tracebacks still show source lines: the core puts them in linecache first.
        cpu_s = int(timeout_s) + 1
        main = types.ModuleType("__main__")  # made here, where it costs no page faults
        main.__dict__.update(self.main_template)
        out = core.Capture(self.out_cap, self.err_tail)
        enter = functools.partial(_enter, main)
        status, rusage, why, flagged, start, _ = self.child.run(
            program, self.precompile(program), cpu_s, memory_bytes, enter, out, timeout_s, self.tree
        )
        duration = time.monotonic() - start
        clean = self.tree.kill_others()
        clean = self.wipe() and clean
        clean = self.clear_scratch() and clean
        kind, exit_code, sig = core.classify(status, rusage, why == "timeout", cpu_s, out.stderr, flagged)
        return core.result(seq, kind, exit_code, sig, duration, out, clean), clean

    def precompile(self, program: bytes) -> types.CodeType | None:
        """The program's code object compiled before forking, or None (core.precompile says when and why)."""
        return core.precompile(program, self.program_path)

    def wipe(self) -> bool:
        """Empty the root (the working dir and, inside bubblewrap, all of the private /tmp)."""
        # Fast path for the usual case: an untouched working directory, alone in the root (the program itself is
        # never written to disk).
        with contextlib.suppress(OSError):
            os.rmdir(self.work)
        return core.empty(self.root)

    def clear_scratch(self) -> bool:
        """Empty /dev/shm, /dev/mqueue and SysV IPC: they outlive a program, and must not reach the next one."""
        ok = True
        for directory in self.scratch:
            ok = core.empty(directory) and ok
        for directory in self.owned_scratch:
            core.empty(directory, owner=self.tree.uid)  # best effort: shared with the host
        if self.libc is not None:
            for kind, id_column, fd in self.sysvipc_fds:
                lines = os.pread(fd, 1 << 20, 0).decode().splitlines()  # procfs regenerates it on every read
                if len(lines) < 2:
                    continue
                names = lines[0].split()
                for line in lines[1:]:
                    row = dict(zip(names, line.split()))  # noqa: B905 - zip(strict=) needs 3.10
                    if str(self.tree.uid) in (row.get("uid"), row.get("cuid")):
                        self.libc.remove_ipc(kind, int(row[id_column]))
        return ok


def _enter(main: types.ModuleType) -> dict[str, Any]:
    """In the child: the program's __main__ (made in the worker, where it costs no page faults)."""
    sys.modules["__main__"] = main
    return main.__dict__


def main() -> int:
    global core, seccomp
    config = json.loads(sys.argv[1])
    sources = config.get("sources") or {}
    if sources:  # inside a sandbox: core.py and seccomp.py as the harness shipped them
        core = types.ModuleType("codegen_eval_sandbox_core")
        exec(compile(sources["core"], "<codegen-eval core>", "exec"), core.__dict__)
        seccomp = core.load_shipped("seccomp", sources["seccomp"])
    return Worker(config).serve()


if __name__ == "__main__":
    sys.exit(main())
