"""The in-sandbox execution core shared by both sandboxes: capture, precompile, and the interpreter's ending.

Shipped as source into the bubblewrap worker and the container's supervisor (like seccomp.py), so it must run on
Python 3.8 and import nothing outside the standard library. What differs between the two stays with them: how a
program's process is prepared (file name, environment, streams), how its tree is killed, how results travel.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import linecache
import mmap
import os
import signal
import struct
import sys
import traceback  # imported here, before forking: a program's sys.path[0] could shadow it later
import types
import warnings
from typing import Any

# A shared page the child writes to when its main process dies of an uncaught exception that means "limit hit".
# It is memory, not a descriptor, so it survives closing every inherited fd in the child.
FLAG = struct.Struct("<iB")  # pid, kind
FLAG_NONE, FLAG_MEMORY, FLAG_PROCESS = 0, 1, 2
# A native crash with one of these in the stderr tail ran out of memory.
MEMORY_WORDS = (b"MemoryError", b"Cannot allocate memory", b"out of memory", b"std::bad_alloc")
PRECOMPILE_MAX_BYTES = 64 * 1024  # larger programs are compiled by their child, under its limits


def out_of_memory(stderr_tail: bytes | bytearray) -> bool:
    """Whether a native crash's stderr says it ran out of memory."""
    return any(word in stderr_tail for word in MEMORY_WORDS)


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
    Only a compilation that succeeds without a word is taken: anything it warns (a SyntaxWarning) or raises
    (SyntaxError, ValueError for a NUL byte, RecursionError) is left to the child, where it happens exactly as
    before, on the program's own stderr and under the program's warning filters. Large programs are compiled by
    the child too, under its limits.
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


class Ending:
    """How the interpreter ends a program in the child: SystemExit codes, uncaught exceptions (printed as the
    interpreter prints them, limit-related ones flagged), then threads, atexit and the flushing of stdio.

    `filename`: the program's own (frames before its first are the sandbox's and are hidden). `linecache_hook`:
    print tracebacks through `traceback` (which reads linecache) while the default hook is installed, for a
    program whose file does not exist but whose lines should show, as with `python3 program.py`.
    """

    def __init__(self, flag: mmap.mmap, filename: str, linecache_hook: bool) -> None:
        self.flag = flag
        self.filename = filename
        self.linecache_hook = linecache_hook
        self.main_pid = os.getpid()

    def run(self, program: bytes, compiled: types.CodeType | None, namespace: dict[str, Any]) -> int:
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


def pop_line(buffer: bytearray) -> bytes | None:
    """Take the first complete line (without its newline) off `buffer`; None if there is none yet. The
    supervisor's protocol is JSON lines in both directions; each end splits them with this."""
    end = buffer.find(b"\n")
    if end < 0:
        return None
    line = bytes(buffer[:end])
    del buffer[: end + 1]
    return line


@functools.cache
def shipped_sources() -> dict[str, str]:
    """The sources of core.py and seccomp.py, as sent into a sandbox (the worker and the supervisor load them
    before anything else; the package is not importable there). Host side only; read once."""
    here = os.path.dirname(os.path.abspath(__file__))
    sources = {}
    for name in ("core", "seccomp"):
        with open(os.path.join(here, f"{name}.py"), encoding="utf-8") as f:
            sources[name] = f.read()
    return sources
