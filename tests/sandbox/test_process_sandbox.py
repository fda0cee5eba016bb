"""ProcessSandbox with real processes: outcomes, limits, tree kill, isolation, worker death, concurrency."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import textwrap
import types
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionJob, ExecutionResult, ExitKind
from codegen_eval.sandbox import SANDBOXES, core, worker
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.sandbox.process import ProcessSandbox

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
NAMESPACES = shutil.which("bwrap") is not None


def run(box: ProcessSandbox, program: str, timeout: float = 5.0, memory_mb: int | None = None) -> ExecutionResult:
    return box.run(ExecutionJob(program=textwrap.dedent(program), timeout_s=timeout, memory_mb=memory_mb))


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(name))
            except OSError:
                continue
    return found


def processes_of(uids: set[int]) -> set[int]:
    """Host pids of live (not zombie) processes owned by `uids`."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    state = f.read().rpartition(b")")[2].split()[0]
                if os.stat(f"/proc/{name}").st_uid in uids and state != b"Z":
                    found.add(int(name))
            except (OSError, IndexError):
                continue
    return found


@pytest.fixture(scope="module")
def box() -> Iterator[ProcessSandbox]:
    with ProcessSandbox(SandboxSettings(workers=2, timeout_s=5.0)) as b:
        yield b


@pytest.fixture(scope="module")
def box1() -> Iterator[ProcessSandbox]:
    """One worker: consecutive jobs are guaranteed to share it."""
    with ProcessSandbox(SandboxSettings(workers=1, timeout_s=5.0)) as b:
        yield b


def worker_uids(b: ProcessSandbox) -> set[int]:
    return {s.uid for s in b._slots if s.uid is not None}


# --------------------------------------------------------------------------------------------- registry, layers


def test_registered_as_process() -> None:
    assert SANDBOXES.load("process") is ProcessSandbox


def test_layers_report_what_is_active(box: ProcessSandbox) -> None:
    layers = box.layers()
    assert layers["workers"] == "2"
    assert layers["rlimits"].startswith("as=4096MiB cpu=timeout+1s fsize=64MiB nofile=256")
    assert layers["interpreter"].split()[0] == box.plan.interpreter
    if os.geteuid() == 0:
        uids = sorted(worker_uids(box))
        assert len(uids) == 2 and all(u >= 60000 for u in uids)
        assert layers["uid"] == f"{uids[0]}-{uids[1]}"
    if NAMESPACES:
        assert layers["bubblewrap"].startswith("on")
        assert layers["network"] == "isolated"
        assert layers["pid_namespace"] == "on"
        assert layers["readonly_root"] == "on"
        assert layers["private_tmp"] == "on"


def test_concurrency_allows_one_queued_job_per_worker(box: ProcessSandbox) -> None:
    assert box.concurrency == 4


def test_worker_runs_under_debians_python() -> None:
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no /usr/bin/python3")
    with ProcessSandbox(SandboxSettings(workers=1, python="/usr/bin/python3")) as b:
        assert b.layers()["interpreter"].startswith("/usr/bin/python3 (3.")
        r = run(b, "import sys; print(sys.executable)")
    assert (r.exit_code, r.stdout) == (0, "/usr/bin/python3\n")


def test_run_outside_the_context_manager_raises() -> None:
    sandbox = ProcessSandbox(SandboxSettings(workers=1))
    with pytest.raises(SandboxError):
        sandbox.run(ExecutionJob(program="pass", timeout_s=1))


def test_a_worker_that_cannot_start_is_a_sandbox_error() -> None:
    with pytest.raises(SandboxError), ProcessSandbox(SandboxSettings(workers=1, python="/nonexistent/python3")):
        pass


# ------------------------------------------------------------------------------------------ like python file.py


def test_normal_exit_and_stdout(box: ProcessSandbox) -> None:
    r = run(box, "print('hello')\nprint(__name__)")
    assert (r.kind, r.exit_code, r.signal) == (ExitKind.EXITED, 0, None)
    assert r.stdout == "hello\n__main__\n"
    assert r.stderr == "" and not r.stdout_truncated
    assert 0 < r.duration_s < 5


@pytest.mark.parametrize("program", ["import sys; sys.exit(0)", "import os; os._exit(0)", "raise SystemExit"])
def test_explicit_exit_zero(box: ProcessSandbox, program: str) -> None:
    r = run(box, program)
    assert (r.kind, r.exit_code) == (ExitKind.EXITED, 0)


def test_exit_codes_follow_system_exit(box: ProcessSandbox) -> None:
    assert run(box, "import sys; sys.exit(3)").exit_code == 3
    r = run(box, "import sys; sys.exit('bad input')")
    assert (r.exit_code, r.stderr) == (1, "bad input\n")


def test_uncaught_exception_exits_1_with_a_traceback_of_the_program_only(box: ProcessSandbox) -> None:
    r = run(
        box,
        """
        def f():
            raise ValueError("boom")
        f()
        """,
    )
    assert (r.kind, r.exit_code) == (ExitKind.EXITED, 1)
    assert r.stderr.startswith("Traceback (most recent call last):\n")
    assert r.stderr.endswith("ValueError: boom\n")
    assert 'raise ValueError("boom")' in r.stderr  # source lines, like a file run by the interpreter
    assert "<string>" not in r.stderr  # no frame of the worker


def test_syntax_error_looks_like_the_interpreters(box: ProcessSandbox) -> None:
    r = run(box, "def f(:\n    pass\n")
    assert r.exit_code == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.rstrip().endswith("SyntaxError: invalid syntax")


def test_a_compile_time_warning_reaches_the_programs_stderr(box: ProcessSandbox) -> None:
    # The worker compiles quiet programs itself before forking; this one's compilation prints, so its child
    # compiles it, and the warning lands on the program's stderr as it always did.
    r = run(box, 'x = 1\nif x is 1:\n    print("one")\n')
    assert (r.exit_code, r.stdout) == (0, "one\n")
    assert r.stderr.startswith('/tmp/program.py:2: SyntaxWarning: "is" with a literal. Did you mean "=="?\n')


def test_the_worker_precompiles_only_small_programs_that_compile_without_a_word() -> None:
    w = worker.Worker(
        {
            "root": "/nonexistent-root",
            "pidns": False,
            "kill_uid": False,
            "file_size_bytes": 0,
            "max_open_files": 0,
            "max_processes": 0,
            "output_bytes": 1024,
            "stderr_tail_bytes": 1024,
        }
    )
    filters = list(warnings.filters)
    code = w.precompile(b"def f(xs):\n    return sorted(xs)\n")
    assert isinstance(code, types.CodeType) and code.co_filename == "/nonexistent-root/program.py"
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["f"]([3, 1]) == [1, 3]  # type: ignore[operator]
    left_to_the_child = {
        "syntax error": b"def f(:\n    pass\n",
        "NUL byte": b"x = 1\0\n",
        "SyntaxWarning": b"x = 1\nif x is 1:\n    pass\n",
        "too large": b"x = 1\n" * (core.PRECOMPILE_MAX_BYTES // 6 + 1),
    }
    for why, program in left_to_the_child.items():
        assert w.precompile(program) is None, why
    assert warnings.filters == filters


def test_stdin_is_empty(box: ProcessSandbox) -> None:
    r = run(box, "input()")
    assert r.exit_code == 1 and r.stderr.endswith("EOFError: EOF when reading a line\n")


def test_threads_are_joined_and_atexit_runs(box: ProcessSandbox) -> None:
    r = run(
        box,
        """
        import atexit, threading, time
        atexit.register(lambda: print("atexit"))
        def late():
            time.sleep(0.2)
            print("thread")
        threading.Thread(target=late).start()
        print("main")
        """,
    )
    assert (r.exit_code, r.stdout) == (0, "main\nthread\natexit\n")


def test_argv_file_cwd_and_imports(box: ProcessSandbox) -> None:
    r = run(
        box,
        """
        import os, sys
        print(sys.argv == [__file__], os.path.dirname(__file__) == sys.path[0])
        print(os.getcwd() != os.path.dirname(__file__), os.listdir("."))
        open("out.txt", "w").write("x")
        print(os.listdir("."))
        """,
    )
    assert r.stdout == "True True\nTrue []\n['out.txt']\n", r.stderr


def test_keyboard_interrupt_dies_of_sigint_like_the_interpreter(box: ProcessSandbox) -> None:
    r = run(box, "raise KeyboardInterrupt")
    assert (r.kind, r.signal) == (ExitKind.SIGNALED, signal.SIGINT)
    assert r.stderr.endswith("KeyboardInterrupt\n")


def test_death_by_signal(box: ProcessSandbox) -> None:
    r = run(box, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert (r.kind, r.exit_code, r.signal) == (ExitKind.SIGNALED, None, signal.SIGSEGV)


def test_hash_seed_is_fixed_so_set_order_is_reproducible(box: ProcessSandbox) -> None:
    program = "print(list({'apple', 'banana', 'cherry', 'date', 'elderberry'}))"
    assert len({run(box, program).stdout for _ in range(4)}) == 1


# ------------------------------------------------------------------------------------------------ time limits


@pytest.mark.parametrize(
    "program",
    [
        "while True: pass",
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: pass",
        "import time; time.sleep(60)",
    ],
    ids=["busy-loop", "ignores-sigterm", "sleep"],
)
def test_wall_clock_timeout(box: ProcessSandbox, program: str) -> None:
    r = run(box, program, timeout=1.0)
    assert r.kind is ExitKind.TIMEOUT
    assert 1.0 <= r.duration_s < 10


def test_cpu_limit_signal_counts_as_timeout(box: ProcessSandbox) -> None:
    r = run(box, "import os, signal; os.kill(os.getpid(), signal.SIGXCPU)")
    assert (r.kind, r.signal) == (ExitKind.TIMEOUT, signal.SIGXCPU)


# ------------------------------------------------------------------------------------------- resource limits


def test_memory_bomb_is_memory_limit(box: ProcessSandbox) -> None:
    r = run(box, "x = bytearray(1 << 30)", memory_mb=256)
    assert (r.kind, r.exit_code) == (ExitKind.MEMORY_LIMIT, 1)
    assert r.stderr.endswith("MemoryError\n")


def test_growing_memory_is_memory_limit(box: ProcessSandbox) -> None:
    r = run(box, "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))", memory_mb=256)
    assert r.kind is ExitKind.MEMORY_LIMIT


def test_default_memory_limit_applies(box: ProcessSandbox) -> None:
    r = run(box, "x = bytearray(6 << 30)")  # above the default 4 GiB
    assert r.kind is ExitKind.MEMORY_LIMIT


def test_memory_error_in_a_forked_child_does_not_mislabel_the_parent(box: ProcessSandbox) -> None:
    r = run(
        box,
        """
        import os
        pid = os.fork()
        if pid == 0:
            raise MemoryError
        os.waitpid(pid, 0)
        raise ValueError("parent")
        """,
    )
    assert (r.kind, r.exit_code) == (ExitKind.EXITED, 1)


def test_fork_bomb_is_contained(box: ProcessSandbox) -> None:
    uids = worker_uids(box)
    before = processes_of(uids) if uids else set()
    r = run(box, "import os\nwhile True:\n    os.fork()", timeout=3.0)
    assert r.kind in (ExitKind.PROCESS_LIMIT, ExitKind.TIMEOUT)
    if uids:
        assert processes_of(uids) == before  # nothing left but the workers themselves
    assert run(box, "print('still here')").stdout == "still here\n"


def test_file_size_limit(box: ProcessSandbox) -> None:
    r = run(box, "open('big', 'wb').write(b'x' * (65 << 20))")
    assert r.exit_code == 1 and "File too large" in r.stderr


def test_open_files_limit(box: ProcessSandbox) -> None:
    r = run(box, "fs = [open('/dev/null') for _ in range(300)]")
    assert r.exit_code == 1 and "Too many open files" in r.stderr


# ---------------------------------------------------------------------------------------------------- output


def test_output_beyond_the_cap_is_drained_not_fatal() -> None:
    # The cap bounds what is kept, never whether the program passes: past it, output is read and discarded.
    with ProcessSandbox(SandboxSettings(workers=1, output_bytes=1000)) as b:
        r = run(b, "print('x' * 5000 + 'END')")
        assert (r.kind, r.exit_code, r.stdout_truncated) == (ExitKind.EXITED, 0, True)
        assert r.stdout == "x" * 1000 and r.stdout_tail.endswith("xEND\n") and len(r.stdout_tail) == 1000
        assert r.stdout_lines()[-1].endswith("END") and (r.stdout_bytes, r.stderr_bytes) == (5004, 0)
        r = run(b, "import sys\nwhile True:\n    sys.stdout.write('y' * 100)", timeout=2)
        assert (r.kind, len(r.stdout), r.stdout_truncated) == (ExitKind.TIMEOUT, 1000, True)
        assert r.stdout_bytes > 100_000  # it kept writing until its time was up
        r = run(b, "import sys\nfor i in range(20000):\n    sys.stderr.write(f'{i}\\n')\nprint('done')")
        assert (r.kind, r.exit_code, r.stdout, r.stderr_truncated) == (ExitKind.EXITED, 0, "done\n", True)
        assert r.stderr.endswith("19999\n") and len(r.stderr) <= 1000
        r = run(b, "import sys; sys.stdout.write('x' * 1500)")  # head and tail together: nothing dropped
        assert (r.kind, r.stdout_truncated, r.stdout, r.stdout_tail) == (ExitKind.EXITED, False, "x" * 1500, "")


def test_a_gigabyte_flood_finishes_within_its_timeout_and_the_sandbox_stays_healthy(box: ProcessSandbox) -> None:
    r = run(
        box, "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n", timeout=20
    )
    assert r.kind in (ExitKind.EXITED, ExitKind.TIMEOUT), r
    assert r.duration_s < 25 and r.stdout_truncated
    if r.kind is ExitKind.EXITED:
        assert r.stdout_bytes == 1 << 30
    assert run(box, "print('alive')").stdout == "alive\n"


def test_stderr_keeps_the_tail(box: ProcessSandbox) -> None:
    r = run(box, "import sys\nfor i in range(20000):\n    print(i, file=sys.stderr)\nraise ValueError('end')")
    assert r.kind is ExitKind.EXITED and r.exit_code == 1
    assert r.stderr.endswith("ValueError: end\n") and "19999\n" in r.stderr
    assert len(r.stderr.encode()) <= 32 * 1024 and "\n0\n" not in r.stderr


def test_binary_garbage_on_stdout(box: ProcessSandbox) -> None:
    r = run(box, "import sys; sys.stdout.buffer.write(bytes(range(256)) * 4); sys.stderr.buffer.write(b'\\xff\\xfe')")
    assert r.kind is ExitKind.EXITED and r.exit_code == 0
    assert "\ufffd" in r.stdout and r.stdout.startswith("\x00\x01\x02") and r.stderr == "\ufffd\ufffd"


# ----------------------------------------------------------------------------------------------- tree kill


def test_setsid_grandchild_is_killed_when_the_program_exits(box1: ProcessSandbox) -> None:
    marker = f"codegen-eval-test-{uuid.uuid4().hex}"
    r = run(
        box1,
        f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "{marker}"])
            os._exit(0)
        print("parent done")
        """,
    )
    assert (r.kind, r.exit_code, r.stdout) == (ExitKind.EXITED, 0, "parent done\n")
    assert processes_with(marker) == []


def test_daemon_child_is_killed_on_timeout(box1: ProcessSandbox) -> None:
    marker = f"codegen-eval-test-{uuid.uuid4().hex}"
    uids = worker_uids(box1)
    before = processes_of(uids) if uids else set()
    r = run(
        box1,
        f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "{marker}"])
        time.sleep(60)
        """,
        timeout=1.0,
    )
    assert r.kind is ExitKind.TIMEOUT
    assert processes_with(marker) == []
    if uids:
        assert processes_of(uids) == before


def test_child_outliving_its_parent_does_not_hold_the_result(box1: ProcessSandbox) -> None:
    r = run(
        box1,
        """
        import os, sys, time
        if os.fork() == 0:
            time.sleep(300)  # keeps stdout open
        print("bye")
        """,
        timeout=30.0,
    )
    assert (r.kind, r.stdout) == (ExitKind.EXITED, "bye\n")
    assert r.duration_s < 10


# ----------------------------------------------------------------------------------------------- isolation


def test_no_network() -> None:
    if not NAMESPACES:
        pytest.skip("needs bubblewrap")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        with ProcessSandbox(SandboxSettings(workers=1)) as b:
            r = run(
                b,
                f"""
                import socket
                socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
                print("connected")
                """,
            )
        assert r.exit_code == 1 and "connected" not in r.stdout
        assert "ConnectionRefusedError" in r.stderr or "OSError" in r.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    finally:
        listener.close()


def test_no_interfaces_but_loopback(box: ProcessSandbox) -> None:
    if not NAMESPACES:
        pytest.skip("needs bubblewrap")
    r = run(box, "import socket; print(sorted(n for _, n in socket.if_nameindex()))")
    assert r.stdout == "['lo']\n"


@pytest.mark.parametrize(
    "target",
    ["/codegen-eval-probe", str(Path.home() / "codegen-eval-probe"), str(REPO / "codegen-eval-probe")],
    ids=["root", "home", "repo"],
)
def test_no_writes_outside_the_working_directory(box: ProcessSandbox, target: str) -> None:
    r = run(box, f"open({target!r}, 'w').write('x')")
    assert r.exit_code == 1
    # A checkout under /tmp is not even visible: the sandbox's /tmp is private; nor, as a normal user, one under
    # $HOME, which the sandbox replaces with an empty tmpfs.
    private = ("/tmp/",) if os.geteuid() == 0 else ("/tmp/", str(Path.home()) + "/")
    hidden = target.startswith(private) and "No such file or directory" in r.stderr
    assert "Read-only file system" in r.stderr or "Permission denied" in r.stderr or hidden, r.stderr
    assert not Path(target).exists()


def test_tmp_is_private_and_emptied_between_programs(box1: ProcessSandbox) -> None:
    if not NAMESPACES:
        pytest.skip("needs bubblewrap")
    name = f"codegen-eval-{uuid.uuid4().hex}"
    r = run(box1, f"open('/tmp/{name}', 'w').write('x'); print(open('/tmp/{name}').read())")
    assert r.stdout == "x\n"
    assert not Path("/tmp", name).exists()
    r = run(box1, f"import os; print(os.path.exists('/tmp/{name}'))")
    assert r.stdout == "False\n"


def test_shared_memory_and_ipc_do_not_reach_the_next_program(box1: ProcessSandbox) -> None:
    if not NAMESPACES:
        pytest.skip("needs bubblewrap")
    r = run(
        box1,
        """
        import ctypes, os
        from multiprocessing import shared_memory
        shm = shared_memory.SharedMemory(name="leftover", create=True, size=1 << 20)
        open("/dev/shm/file", "w").write("x")
        open("/dev/mqueue/queue", "w").close()
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0, 1 << 20, 0o1600) >= 0, libc.semget(0, 1, 0o1600) >= 0, libc.msgget(0, 0o1600) >= 0)
        print(sorted(os.listdir("/dev/shm")), os.listdir("/dev/mqueue"), flush=True)
        os._exit(0)  # no clean-up of our own
        """,
    )
    assert r.stdout == "True True True\n['file', 'leftover'] ['queue']\n", r.stderr
    r = run(
        box1,
        """
        import os
        print(os.listdir("/dev/shm"), os.listdir("/dev/mqueue"))
        for kind in ("shm", "sem", "msg"):
            print(len(open(f"/proc/sysvipc/{kind}").read().splitlines()) - 1)
        """,
    )
    assert r.stdout == "[] []\n0\n0\n0\n", r.stderr


def test_only_tmp_and_shared_memory_take_writes(box: ProcessSandbox) -> None:
    if not NAMESPACES:
        pytest.skip("needs bubblewrap")
    r = run(
        box,
        """
        import os
        for d in ("/dev", "/run", "/var/tmp", "/etc", "/tmp", "/dev/shm"):
            try:
                open(os.path.join(d, "probe"), "w").close()
                print(d, "writable")
            except OSError as e:
                print(d, e.strerror)
        open("/dev/null", "w").write("device nodes still work")
        """,
    )
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:4] == [f"{d} Read-only file system" for d in ("/dev", "/run", "/var/tmp", "/etc")]
    assert lines[4:] == ["/tmp writable", "/dev/shm writable"]


def test_working_directory_is_fresh_for_each_program(box1: ProcessSandbox) -> None:
    run(box1, "open('left-behind', 'w').write('x')")
    assert run(box1, "import os; print(os.listdir('.'))").stdout == "[]\n"


@pytest.mark.parametrize(
    "mess",
    [
        "os.makedirs('a/b/c'); open('a/b/c/f', 'w').write('x'); os.chmod('a/b', 0); os.chmod('a', 0)",
        "os.chdir('/'); os.rmdir(cwd)",
        "os.mkfifo('fifo'); p = 'd'\nfor _ in range(200):\n    os.mkdir(p); p += '/d'",
        "import socket; a, b = socket.socketpair(); os.mkfifo('pipe'); os.symlink('/etc', 'etc')",
    ],
    ids=["unreadable-dirs", "removed-cwd", "fifo-and-deep-tree", "socketpair-fifo-and-symlink"],
)
def test_whatever_a_program_leaves_is_cleaned_up(box1: ProcessSandbox, mess: str) -> None:
    r = run(box1, f"import os\ncwd = os.getcwd()\n{mess}\nprint('messed')")
    assert r.stdout == "messed\n", r.stderr
    r = run(box1, "import os; print(os.listdir('.'), sorted(os.listdir(os.path.dirname(os.getcwd()))))")
    assert r.stdout == "[] ['work']\n"


def test_orphans_and_zombies_do_not_linger(box1: ProcessSandbox) -> None:
    uids = worker_uids(box1)
    before = processes_of(uids) if uids else set()
    r = run(box1, "import os\nfor _ in range(5):\n    if os.fork() == 0:\n        os._exit(0)\nprint('done')")
    assert r.stdout == "done\n"
    if uids:
        assert processes_of(uids) == before


def test_environment_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEN_EVAL_TEST_SECRET", "hunter2")
    with ProcessSandbox(SandboxSettings(workers=1)) as b:
        r = run(b, "import os; print(sorted(os.environ)); print('hunter2' in str(os.environ))")
    names = eval(r.stdout.splitlines()[0])  # a list of names printed by the program
    assert "CODEGEN_EVAL_TEST_SECRET" not in names
    assert r.stdout.splitlines()[1] == "False"
    assert set(names) <= {"PATH", "HOME", "LANG", "PWD", "PYTHONHASHSEED"} | {
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    }


def test_program_cannot_reach_the_worker(box: ProcessSandbox) -> None:
    r = run(
        box,
        """
        import os
        open_fds = []
        for fd in range(3, 64):
            try:
                os.fstat(fd)
                open_fds.append(fd)
            except OSError:
                pass
        print(open_fds)
        for path in (f"/proc/{os.getppid()}/fd", f"/proc/{os.getppid()}/mem"):
            try:
                os.listdir(path) if path.endswith("fd") else open(path, "rb").read(1)
                print("reached", path)
            except OSError as e:
                print(type(e).__name__)
        """,
    )
    assert r.stdout == "[]\nPermissionError\nPermissionError\n", r.stderr


def test_no_capabilities_and_unprivileged_uid(box: ProcessSandbox) -> None:
    r = run(box, "import os\nprint(os.getuid(), os.geteuid())\nprint(open('/proc/self/status').read())")
    uid, euid = map(int, r.stdout.splitlines()[0].split())
    assert uid == euid and uid != 0
    if os.geteuid() == 0:
        assert uid in worker_uids(box)
    if NAMESPACES:
        assert "CapEff:\t0000000000000000" in r.stdout


# ---------------------------------------------------------------------------------------------- worker death


def test_program_cannot_kill_or_stop_its_worker(box1: ProcessSandbox) -> None:
    # Under bubblewrap the worker is PID 1 of its namespace: the kernel drops SIGKILL and SIGSTOP sent to it from
    # inside, so the program's kill is a no-op and the same worker serves the next program.
    before = run(box1, "import os; print(os.getppid())").stdout
    for sig in ("SIGKILL", "SIGSTOP"):
        r = run(box1, f"import os, signal; os.kill(os.getppid(), signal.{sig}); print('still here')")
        assert (r.kind, r.exit_code, r.stdout) == (ExitKind.EXITED, 0, "still here\n"), r
    assert run(box1, "import os; print(os.getppid())").stdout == before == "1\n"


def test_worker_killed_from_outside_is_blamed_on_its_program_and_comes_back(box1: ProcessSandbox) -> None:
    # The harness's own recovery path: the worker dies (here: SIGKILL from the host) while a program runs.
    import threading

    proc = box1._slots[0].process.proc
    assert proc is not None
    outer = proc.pid  # bubblewrap's process in the host's PID namespace; the worker dies with it
    timer = threading.Timer(0.5, os.killpg, (outer, signal.SIGKILL))
    timer.start()
    try:
        r = run(box1, "import time; time.sleep(30)", timeout=20.0)
    finally:
        timer.cancel()
    assert r.kind is ExitKind.SIGNALED and r.signal == signal.SIGKILL
    assert "worker died" in r.stderr
    assert run(box1, "print('next')").stdout == "next\n"


def test_signals_to_the_worker_other_than_kill_and_stop_are_ignored(box1: ProcessSandbox) -> None:
    r = run(
        box1,
        """
        import os, signal
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGTTIN, signal.SIGALRM):
            os.kill(os.getppid(), s)
        """,
    )
    assert (r.kind, r.exit_code) == (ExitKind.EXITED, 0)
    assert run(box1, "print('next')").stdout == "next\n"


# ---------------------------------------------------------------------------------------------- concurrency


def test_concurrent_runs_get_their_own_results(box: ProcessSandbox) -> None:
    programs = []
    for i in range(40):
        if i % 10 == 3:
            programs.append((f"import time\nprint({i})\ntime.sleep(60)", 1.0))
        elif i % 10 == 7:
            programs.append((f"print({i})\nraise ValueError({i})", 5.0))
        else:
            programs.append((f"print({i} * 2)", 5.0))
    with ThreadPoolExecutor(box.concurrency * 2) as pool:
        results = list(pool.map(lambda p: run(box, p[0], timeout=p[1]), programs))
    for i, r in enumerate(results):
        if i % 10 == 3:
            assert r.kind is ExitKind.TIMEOUT
        elif i % 10 == 7:
            assert (r.exit_code, r.stdout) == (1, f"{i}\n") and r.stderr.endswith(f"ValueError: {i}\n")
        else:
            assert (r.exit_code, r.stdout) == (0, f"{i * 2}\n")


def test_large_programs_and_outputs_round_trip(box: ProcessSandbox) -> None:
    body = "x = 1\n" * 40000  # far beyond a pipe buffer
    with ThreadPoolExecutor(box.concurrency) as pool:
        results = list(pool.map(lambda i: run(box, body + f"print('{i}' * 300000)"), range(6)))
    for i, r in enumerate(results):
        assert r.exit_code == 0 and r.stdout == f"{i}" * 300000 + "\n"


def test_the_source_is_not_on_disk_but_tracebacks_show_its_lines(box: ProcessSandbox) -> None:
    # A program must not find its own source (and the checks' nonce in it) through the filesystem.
    probe = "import os\nprint(sorted(os.listdir('..')), os.path.exists(__file__))\n1 / 0  # the failing line\n"
    r = run(box, probe)
    assert r.exit_code == 1
    assert r.stdout.strip() == "['work'] False" or "program.py" not in r.stdout, r.stdout
    assert "False" in r.stdout
    assert 'File "/tmp/program.py", line 3, in <module>' in r.stderr
    assert "1 / 0  # the failing line" in r.stderr and "ZeroDivisionError" in r.stderr


PRELOAD_PROBE = """
import sys
loaded = "numpy" in sys.modules
import numpy as np
print(loaded, np.random.rand())
"""


def test_preloaded_modules_are_loaded_and_numpy_random_differs_per_program() -> None:
    with ProcessSandbox(
        SandboxSettings(workers=1, timeout_s=10.0, preload=("numpy", "numpy.random", "no_such_module_xyz"))
    ) as b:
        first, second = (run(b, PRELOAD_PROBE, timeout=10.0) for _ in range(2))
    assert first.exit_code == second.exit_code == 0, first.stderr + second.stderr
    assert first.stdout.split()[0] == second.stdout.split()[0] == "True"
    # Forks of one worker: without a reseed in each child they would print the same number.
    assert first.stdout.split()[1] != second.stdout.split()[1]


def test_nothing_beyond_the_workers_own_modules_is_preloaded_by_default(box: ProcessSandbox) -> None:
    r = run(box, PRELOAD_PROBE, timeout=10.0)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split()[0] == "False"


# How `python3 program.py` ends: the worker's child must reproduce the interpreter's exit sequence (the execution
# core shared with the container's supervisor). Compared with a real interpreter run on the same file.
ENDINGS = [
    "import sys\nprint('before')\nsys.stdout.close()\n",  # CPython skips a closed stream at exit: status 0
    "import sys\nsys.stderr.close()\nprint('after')\n",
    "raise SystemExit('a message')\n",
    "raise SystemExit(300)\n",
    "import atexit\natexit.register(lambda: 1 / 0)\nprint('registered')\n",
    "import threading\nthreading.Thread(target=lambda: 1 / 0).start()\nprint('main continues')\n",
    "import threading, time\n"
    "threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()\nprint('main done')\n",
    "import os\nprint('lost', end='')\nos._exit(7)\n",
]


@pytest.mark.parametrize("program", ENDINGS, ids=[f"ending-{i}" for i in range(len(ENDINGS))])
def test_programs_end_as_python_program_py(box: ProcessSandbox, program: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "program.py"
    path.write_text(program)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}  # nothing like PYTHONUNBUFFERED
    plain = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env
    )
    r = run(box, program)
    assert r.exit_code == plain.returncode, (r, plain)
    assert r.stdout == plain.stdout
    assert r.stderr.splitlines()[-1:] == plain.stderr.splitlines()[-1:]
