"""Hostile programs for every sandbox: what each tries, what it may end as, and the checks run after it.

Shared by tests/sandbox/hostile/test_hostile.py (asserts) and bench/hostile_table.py (the markdown table in
docs/execution.md). A program "passes" as a HumanEval program does: exit status 0 and, on a line of its own, a
sentinel that the suite appends after the hostile code, so it is printed only if that code returned normally.

Tokens in a case's code, filled in per run: @SENTINEL@ (the sentinel line: cases that try to forge it know it,
the worst case), @NONCE@ (in every file name a case creates, so the host can be searched for it), @MARK@ (in the
argv of every process a case execs), @PORT@ (a listener on the host's 127.0.0.1), @HOME@ (the harness's $HOME),
@REMOTE@ (an address outside the machine), @UNIX@ (the host's Unix-socket listeners, '|'-separated; '@name' is an
abstract one), @FOLLOWER@ (a token in the source of the jobs queued right behind the case's own) and
@FOLLOWER_REVERSED@ (the same, reversed).

Every case is run with followers: programs submitted while it runs (so that some queue behind it in the same
worker), whose results must come back exactly as they would without it: an attack on one job leaves every other
job's verdict untouched.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from codegen_eval.records import ExecutionJob, ExecutionResult, ExitKind
from codegen_eval.sandbox.base import Sandbox

SECRET_NAME = "CODEGEN_EVAL_HOSTILE_SECRET"
SENTINEL_PREFIX = "__hostile_sentinel__"
# Every program starts by naming its process (PR_SET_NAME): its forks inherit the name, so the host can find any
# of them that survive, whatever they do; processes it execs carry @MARK@ in their argv instead.
_PREFIX = "import ctypes as _c\n_c.CDLL(None).prctl(15, b'@COMM@', 0, 0, 0)\ndel _c\n"


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    code: str
    expect: tuple[str, ...]  # acceptable labels: "exit 0", "exit !0", "exit N", "signal", "signal N", or a kind
    timeout_s: float = 2.0
    memory_mb: int | None = None
    # Sandboxes under which this case is known to pass, and why: a weakness recorded, not hidden. The test
    # expects these to fail (strictly: once fixed, the entry must go).
    known: tuple[tuple[str, str], ...] = ()

    def known_reason(self, sandbox: str) -> str:
        return dict(self.known).get(sandbox, "")


def label(result: ExecutionResult) -> str:
    if result.kind is ExitKind.EXITED:
        return f"exit {result.exit_code}"
    if result.kind is ExitKind.SIGNALED:
        return f"signal {result.signal}"
    return result.kind.value


def matches(got: str, expect: tuple[str, ...]) -> bool:
    for want in expect:
        if got == want or (want == "exit !0" and got.startswith("exit ") and got != "exit 0"):
            return True
        if want == "signal" and got.startswith("signal "):
            return True
    return False


CASES: tuple[Case, ...] = (
    Case("infinite_loop", "busy loop", "while True:\n    pass\n", ("timeout",), timeout_s=1.5),
    Case(
        "sigterm_ignoring_loop",
        "ignores SIGTERM/SIGINT/SIGHUP/SIGXCPU, then loops",
        "import signal\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGUSR1):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass\n",
        ("timeout",),
        timeout_s=1.5,
    ),
    Case("sleep_past_timeout", "sleeps an hour", "import time\ntime.sleep(3600)\n", ("timeout",), timeout_s=1.5),
    Case(
        "fork_bomb",
        "forks without end",
        "import os\nwhile True:\n    os.fork()\n",
        ("process_limit", "timeout"),
        timeout_s=3.0,
    ),
    Case(
        "memory_bomb",
        "allocates 50 MB blocks without end",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n",
        ("memory_limit",),
        memory_mb=512,
    ),
    Case(
        "stdout_1gb",
        "writes 1 GB to stdout, then fails (output past the cap is drained: the flood must end by itself or time out)",
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
        "raise SystemExit(1)\n",
        ("exit 1", "timeout"),
        timeout_s=10.0,
    ),
    Case(
        "huge_file",
        "writes a 10 GB file in its working directory",
        "chunk = bytes(1 << 20)\n"
        "with open('big-@NONCE@.bin', 'wb') as f:\n"
        "    for _ in range(10 * 1024):\n"
        "        f.write(chunk)\n",
        ("exit !0", "signal"),
        timeout_s=10.0,
    ),
    Case(
        "deep_recursion",
        "recursion limit 10**7, unbounded recursion",
        "import sys\nsys.setrecursionlimit(10 ** 7)\ndef down(n):\n    return down(n + 1) + 1\ndown(0)\n",
        ("exit !0", "signal", "memory_limit", "timeout"),
        memory_mb=1024,
        timeout_s=5.0,
    ),
    Case("ctypes_segfault", "reads address 0 through ctypes", "import ctypes\nctypes.string_at(0)\n", ("signal 11",)),
    Case(
        "setsid_daemon",
        "double fork + setsid; the daemon prints the sentinel after its parent exited 0",
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.5)\n"
        "        print('@SENTINEL@', flush=True)\n"
        "        time.sleep(3600)\n"
        "    os._exit(0)\n"
        "os._exit(0)\n",
        ("exit 0",),
    ),
    Case(
        "child_outlives_parent",
        "a child prints the sentinel after its parent exited 0",
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    time.sleep(0.5)\n"
        "    print('@SENTINEL@', flush=True)\n"
        "    time.sleep(3600)\n"
        "os._exit(0)\n",
        ("exit 0",),
    ),
    Case(
        "exec_orphan",
        "starts a long-lived interpreter in a new session, then fails",
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)', '@MARK@'],\n"
        "                 start_new_session=True)\n"
        "raise SystemExit(3)\n",
        ("exit 3",),
    ),
    Case(
        "tcp_localhost",
        "connects to a listener the test opened on the host's 127.0.0.1",
        "import os, socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', @PORT@), timeout=1).close()\n"
        "except OSError as exc:\n"
        "    raise SystemExit(f'no connection: {exc}')\n"
        "print('@SENTINEL@', flush=True)\n"
        "os._exit(0)\n",
        ("exit !0",),
    ),
    Case(
        "tcp_remote",
        "connects to an address outside the machine",
        "import os, socket\n"
        "try:\n"
        "    socket.create_connection(('@REMOTE@', 80), timeout=1).close()\n"
        "except OSError as exc:\n"
        "    raise SystemExit(f'no connection: {exc}')\n"
        "print('@SENTINEL@', flush=True)\n"
        "os._exit(0)\n",
        ("exit !0",),
    ),
    Case(
        "dns_lookup",
        "resolves deb.debian.org",
        "import os, socket\n"
        "try:\n"
        "    socket.getaddrinfo('deb.debian.org', 80)\n"
        "except OSError as exc:\n"
        "    raise SystemExit(f'no dns: {exc}')\n"
        "print('@SENTINEL@', flush=True)\n"
        "os._exit(0)\n",
        ("exit !0",),
    ),
    Case(
        "write_root",
        "creates a file in /",
        "open('/hostile-@NONCE@', 'w').write('x')\n",
        ("exit !0",),
    ),
    Case(
        "write_home",
        "creates files in $HOME and in the harness's home directory",
        "import os\n"
        "for path in (os.path.expanduser('~/hostile-@NONCE@'), '@HOME@/hostile-@NONCE@'):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "write_shared_tmp",
        "creates files in /tmp, /var/tmp and /dev/shm",
        "for path in ('/tmp', '/var/tmp', '/dev/shm'):\n"
        "    try:\n"
        "        open(path + '/hostile-@NONCE@', 'w').write('x')\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "env_secret",
        "looks for the harness's planted secret in its environment and every /proc/*/environ",
        "import os\n"
        "print(sorted(os.environ.items()))\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        try:\n"
        "            print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "        except OSError:\n"
        "            pass\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "kill_parent_and_group",
        "SIGKILLs its parent, pid 1, every process it may (kill -1), then its own process group",
        "import os, signal\n"
        "for pid in (os.getppid(), 1, -1):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError as exc:\n"
        "        print('kill', pid, exc, flush=True)\n"
        "os.killpg(os.getpgrp(), signal.SIGKILL)\n",
        ("signal 9",),
    ),
    Case("close_stdout", "closes file descriptor 1", "import os\nos.close(1)\n", ("exit !0",)),
    Case(
        "replace_stdout",
        "replaces sys.stdout with a StringIO",
        "import io, sys\nsys.stdout = io.StringIO()\n",
        ("exit 0",),
    ),
    Case(
        "stdout_to_devnull",
        "points file descriptor 1 at /dev/null",
        "import os\nos.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n",
        ("exit 0",),
    ),
    Case("sys_exit_0", "sys.exit(0) before the checks", "import sys\nsys.exit(0)\n", ("exit 0",)),
    Case("os_exit_0", "os._exit(0) before the checks", "import os\nos._exit(0)\n", ("exit 0",)),
    Case(
        "redefine_print",
        "replaces builtins.print with a no-op",
        "import builtins\nbuiltins.print = lambda *args, **kwargs: None\n",
        ("exit 0",),
    ),
    Case(
        "delete_builtins",
        "deletes every builtin",
        "import builtins\nfor name in list(vars(builtins)):\n    if not name.startswith('__'):\n"
        "        delattr(builtins, name)\n",
        ("exit !0",),
    ),
    Case(
        "monkeypatch_assertion",
        "rebinds AssertionError (builtins and module) and swallows the rebound class around failing checks",
        "import builtins\n"
        "class Harmless(Exception):\n"
        "    pass\n"
        "builtins.AssertionError = AssertionError = Harmless\n"
        "def candidate(x):\n"
        "    return x + 1\n"
        "def check(f):\n"
        "    assert f(1) == 3, 'wrong'\n"
        "try:\n"
        "    check(candidate)\n"
        "except Harmless:\n"
        "    pass\n",
        ("exit !0",),
    ),
    Case(
        "systemexit_in_checks",
        "the candidate raises SystemExit(0) inside check()",
        "def candidate(x):\n    raise SystemExit(0)\ndef check(f):\n    assert f(1) == 2\ncheck(candidate)\n",
        ("exit 0",),
    ),
    Case("input_call", "calls input()", "input()\n", ("exit !0",)),
    Case(
        "proc_self_nonce",
        "searches /proc/self (cmdline, environ, open files, cwd and its parent) for the sentinel",
        "import os, re, stat\n"
        "pattern = re.compile(rb'__hostile_sentinel__ [0-9a-f]{32}')\n"
        "paths = ['/proc/self/cmdline', '/proc/self/environ']\n"
        "for d in ('/proc/self/fd', '/proc/self/cwd', '/proc/self/cwd/..'):\n"
        "    try:\n"
        "        paths += [os.path.join(d, n) for n in os.listdir(d)]\n"
        "    except OSError:\n"
        "        pass\n"
        "for path in paths:\n"
        "    try:\n"
        "        if not path.startswith('/proc/self/c') and not stat.S_ISREG(os.stat(path).st_mode):\n"
        "            continue\n"
        "        with open(path, 'rb') as f:\n"
        "            found = pattern.search(f.read(1 << 22))\n"
        "    except OSError:\n"
        "        continue\n"
        "    if found:\n"
        "        print(found.group().decode(), flush=True)\n"
        "        os._exit(0)\n"
        "raise SystemExit('no sentinel found')\n",
        ("exit !0",),
    ),
    Case(
        "code_object_nonce",
        "finds the sentinel among its own module's code constants and prints it",
        "import os, sys\n"
        "prefix = '__hostile_' + 'sentinel__ '\n"
        "for const in sys._getframe().f_code.co_consts:\n"
        "    if isinstance(const, str) and const.startswith(prefix) and len(const) > len(prefix) + 8:\n"
        "        print(const, flush=True)\n"
        "        os._exit(0)\n"
        "if prefix:  # not a bare raise: the compiler would drop the unreachable sentinel line and its constant\n"
        "    raise SystemExit('no sentinel found')\n",
        ("exit !0",),
        known=(
            ("process", "inherent: the checks run in the program's own process, which can read their code"),
            ("docker", "inherent: the checks run in the program's own process, which can read their code"),
        ),
    ),
    Case(
        "thread_keeps_running",
        "a non-daemon thread spins while the main thread exits 0",
        "import threading\n"
        "def spin():\n"
        "    while True:\n"
        "        pass\n"
        "threading.Thread(target=spin).start()\n"
        "raise SystemExit(0)\n",
        ("timeout",),
        timeout_s=1.5,
    ),
    Case(
        "daemon_thread_prints_later",
        "a daemon thread would print the sentinel after os._exit(0)",
        "import os, threading, time\n"
        "def later():\n"
        "    time.sleep(0.3)\n"
        "    print('@SENTINEL@', flush=True)\n"
        "threading.Thread(target=later, daemon=True).start()\n"
        "os._exit(0)\n",
        ("exit 0",),
    ),
    Case(
        "signal_handlers",
        "handles SIGTERM/SIGINT/SIGHUP/SIGALRM/SIGXCPU and keeps sleeping",
        "import signal, time\n"
        "def refuse(signum, frame):\n"
        "    print('refusing', signum, flush=True)\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGXCPU):\n"
        "    signal.signal(s, refuse)\n"
        "while True:\n"
        "    time.sleep(0.01)\n",
        ("timeout",),
        timeout_s=1.5,
    ),
    Case(
        "chdir_root_then_write",
        "os.chdir('/') then writes relative paths",
        "import os\n"
        "os.chdir('/')\n"
        "for name in ('hostile-@NONCE@', 'tmp/hostile-@NONCE@', 'root/hostile-@NONCE@'):\n"
        "    try:\n"
        "        open(name, 'w').write('x')\n"
        "        print('wrote', os.path.abspath(name))\n"
        "    except OSError as exc:\n"
        "        print('refused', name, exc)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "symlink_escape",
        "symlinks to /, /root, /tmp, $HOME, /proc/1/root and writes through them",
        "import os\n"
        "targets = ['/', '@HOME@', '/tmp', os.path.expanduser('~'), '/proc/1/root', '/proc/1/cwd']\n"
        "for i, target in enumerate(targets):\n"
        "    try:\n"
        "        os.symlink(target, f'link{i}')\n"
        "        open(f'link{i}/hostile-@NONCE@', 'w').write('x')\n"
        "        print('wrote through', target)\n"
        "    except OSError as exc:\n"
        "        print('refused', target, exc)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "long_line",
        "one 64 MB line without a newline, then fails",
        "import sys\nsys.stdout.write('y' * (64 << 20))\nraise SystemExit(1)\n",
        ("exit 1", "timeout"),
        timeout_s=10.0,
    ),
    Case(
        "binary_garbage",
        "random bytes, NUL and invalid UTF-8 on stdout",
        "import os, sys\n"
        "sys.stdout.flush()\n"
        "sys.stdout.buffer.write(os.urandom(1 << 16) + b'\\0\\xff\\xfe\\n')\n"
        "sys.stdout.buffer.flush()\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "ptrace_worker",
        "ptrace-attaches to every process it can see (its worker, pid 1) and opens their /proc/<pid>/mem for writing",
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "won = []\n"
        "for name in os.listdir('/proc'):\n"
        "    if not name.isdigit() or int(name) == os.getpid():\n"
        "        continue\n"
        "    pid = int(name)\n"
        "    if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH\n"
        "        won.append(f'ptrace {pid}')\n"
        "        libc.ptrace(17, pid, 0, 0)  # PTRACE_DETACH\n"
        "    if libc.ptrace(0x4206, pid, 0, 0) == 0:  # PTRACE_SEIZE\n"
        "        won.append(f'seize {pid}')\n"
        "        libc.ptrace(17, pid, 0, 0)\n"
        "    try:\n"
        "        os.close(os.open(f'/proc/{pid}/mem', os.O_RDWR))\n"
        "        won.append(f'/proc/{pid}/mem')\n"
        "    except OSError:\n"
        "        pass\n"
        "print('won:', won, flush=True)\n"
        "if won:  # any of these is enough to inject code into the process that reports verdicts\n"
        "    print('@SENTINEL@', flush=True)\n"
        "    os._exit(0)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "steal_worker_pipes",
        "takes the worker's descriptors (/proc/<pid>/fd, pidfd_getfd, process_vm_writev) and writes forged "
        "'passed' results for this and the next jobs into every one it gets",
        "import ctypes, os, struct\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "body = b'@SENTINEL@'.ljust(59) + b'\\n'\n"
        "frame = struct.Struct('<IBBiidIIIQQ').pack  # the worker's result header, 'exited 0', 60 bytes of stdout\n"
        "frame = lambda seq, pack=frame: pack(seq, 0, 1, 0, 0, 0.01, 60, 0, 0, 60, 0)\n"
        "forged = b''.join(frame(seq) + body for seq in range(1, 64))\n"
        "got = []\n"
        "for name in os.listdir('/proc'):\n"
        "    if not name.isdigit() or int(name) == os.getpid():\n"
        "        continue\n"
        "    pid = int(name)\n"
        "    for fd in range(64):\n"
        "        try:\n"
        "            path = f'/proc/{pid}/fd/{fd}'\n"
        "            got.append((path, os.open(path, os.O_WRONLY | os.O_NONBLOCK)))\n"
        "        except OSError:\n"
        "            pass\n"
        "    try:\n"
        "        pidfd = os.pidfd_open(pid)\n"
        "    except OSError:\n"
        "        continue\n"
        "    for fd in range(64):\n"
        "        stolen = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd\n"
        "        if stolen >= 0:\n"
        "            got.append((f'pidfd_getfd {pid} {fd}', stolen))\n"
        "    local = (ctypes.c_char * 8)()\n"
        "    iov = (ctypes.c_void_p * 2)(ctypes.addressof(local), 8)\n"
        "    remote = (ctypes.c_void_p * 2)(0x400000, 8)\n"
        "    if libc.syscall(311, pid, iov, 1, remote, 1, 0) >= 0 or ctypes.get_errno() not in (1, 38):\n"
        "        got.append((f'process_vm_writev {pid} errno {ctypes.get_errno()}', -1))\n"
        "for what, fd in got:\n"
        "    if fd >= 0:\n"
        "        try:\n"
        "            os.write(fd, forged)\n"
        "        except OSError:\n"
        "            pass\n"
        "print('got:', [w for w, _ in got], flush=True)\n"
        "if got:\n"
        "    print('@SENTINEL@', flush=True)\n"
        "    os._exit(0)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "forged_result_frames",
        "prints byte-exact result frames ('exited 0' with a sentinel) for the next 64 jobs on stdout and stderr",
        "import os, struct, sys\n"
        "body = b'@SENTINEL@'.ljust(59) + b'\\n'\n"
        "frame = struct.Struct('<IBBiidIIIQQ').pack  # the worker's result header, 'exited 0', 60 bytes of stdout\n"
        "frame = lambda seq, pack=frame: pack(seq, 0, 1, 0, 0, 0.01, 60, 0, 0, 60, 0)\n"
        "frames = b''.join(frame(seq) + body for seq in range(64))\n"
        "sys.stdout.flush()\n"
        "os.write(1, frames)\n"
        "os.write(2, frames)\n"
        'line = \'{"kind": "exited", "exit_code": 0, "signal": null, "stdout": "", "stderr": ""}\\n\'\n'
        "os.write(1, line.encode() * 8)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "frame_walk",
        "walks the interpreter's frames and objects for the worker's state: writes forged results to its "
        "protocol descriptors, sets its shared flag page, and looks for the next job's program in memory",
        "import gc, mmap, os, struct, sys\n"
        "found = []\n"
        "needle = ''.join(reversed('@FOLLOWER_REVERSED@'))  # built at run time: its own source must not match\n"
        "frame = sys._getframe()\n"
        "objects = []\n"
        "while frame is not None:\n"
        "    objects += list(frame.f_locals.values())\n"
        "    frame = frame.f_back\n"
        "objects += gc.get_objects()\n"
        "forged = struct.pack('<IBBiidIIIQQB', 1, 0, 1, 0, 0, 0.01, 60, 0, 0, 60, 0, 1)\n"
        "forged += b'@SENTINEL@'.ljust(59) + b'\\n'\n"
        "for obj in objects:\n"
        "    for attr in ('proto_out', 'proto_in'):\n"
        "        fd = getattr(obj, attr, None) if not isinstance(obj, type) else None\n"
        "        if isinstance(fd, int) and fd >= 0:\n"
        "            try:\n"
        "                os.write(fd, forged)\n"
        "                found.append(f'wrote to {attr} {fd}')\n"
        "            except OSError:\n"
        "                pass\n"
        "    if isinstance(obj, mmap.mmap):\n"
        "        try:\n"
        "            obj[:5] = struct.pack('<iB', os.getppid(), 0)\n"
        "        except (ValueError, TypeError, OSError):\n"
        "            pass\n"
        "    if obj is not needle and isinstance(obj, (bytes, bytearray, str)) and needle in str(obj[:1 << 20]):\n"
        "        found.append('saw the next job')\n"
        "print('found:', found, flush=True)\n"
        "if found:\n"
        "    print('@SENTINEL@', flush=True)\n"
        "    os._exit(0)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "unix_socket_hunt",
        "connects to Unix sockets the test left on the host (world-writable, under /var/tmp and elsewhere, and "
        "abstract), and to every socket file it finds in /run, /var, /tmp, /home, /srv, /opt, /mnt",
        "import os, socket, stat, time\n"
        "targets = '@UNIX@'.split('|')\n"
        "deadline = time.monotonic() + 1.0\n"
        "for top in ('/run', '/var', '/tmp', '/home', '/srv', '/opt', '/mnt', '/dev/shm'):\n"
        "    for root, dirs, files in os.walk(top):\n"
        "        if time.monotonic() > deadline:\n"
        "            break\n"
        "        for name in files:\n"
        "            path = os.path.join(root, name)\n"
        "            try:\n"
        "                if stat.S_ISSOCK(os.lstat(path).st_mode):\n"
        "                    targets.append(path)\n"
        "            except OSError:\n"
        "                pass\n"
        "reached = []\n"
        "for target in targets:\n"
        "    address = '\\0' + target[1:] if target.startswith('@') else target\n"
        "    try:\n"
        "        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "        s.settimeout(0.5)\n"
        "        s.connect(address)\n"
        "        reached.append(target)\n"
        "        s.close()\n"
        "    except OSError as exc:\n"
        "        print('refused', target, exc)\n"
        "print('reached:', reached, flush=True)\n"
        "if reached:\n"
        "    print('@SENTINEL@', flush=True)\n"
        "    os._exit(0)\n"
        "raise SystemExit(1)\n",
        ("exit 1",),
    ),
    Case(
        "nul_in_source",
        "a completion with NUL bytes in it (and the sentinel after them)",
        "x = 1  # \0 a NUL byte in a comment\nprint('@SENTINEL@', flush=True)\0\n",
        ("exit !0",),
    ),
    Case(
        "lone_surrogate_in_source",
        "a completion with a lone surrogate (not encodable as UTF-8) in a string literal",
        "s = '\ud800'\nprint('@SENTINEL@', flush=True)\n",
        ("exit !0",),
    ),
    Case(
        "stderr_flood",
        "writes 100 MB to stderr, then fails",
        "import sys\nline = 'e' * 99 + '\\n'\nfor _ in range(10 ** 6):\n    sys.stderr.write(line)\n"
        "raise SystemExit(1)\n",
        ("exit 1", "timeout"),
        timeout_s=10.0,
    ),
)


@dataclass
class Report:
    case: str
    label: str
    passed: bool
    expected: bool
    leftovers: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    secret_leaked: bool = False
    connected: bool = False
    harness_ok: bool = True
    followers: list[str] = field(default_factory=list)  # what went wrong with the jobs queued behind it
    stdout_head: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.expected
            and not self.passed
            and not self.leftovers
            and not self.files
            and not self.secret_leaked
            and not self.connected
            and self.harness_ok
            and not self.followers
        )

    def problems(self) -> list[str]:
        found = []
        if not self.expected:
            found.append(f"unexpected outcome {self.label}")
        if self.passed:
            found.append("PASSED")
        if self.leftovers:
            found.append(f"processes left: {self.leftovers}")
        if self.files:
            found.append(f"files outside its working directory: {self.files}")
        if self.secret_leaked:
            found.append("the planted secret leaked")
        if self.connected:
            found.append("reached the host's listener")
        if not self.harness_ok:
            found.append("the sandbox stopped working")
        if self.followers:
            found.append(f"other jobs' results changed: {self.followers}")
        return found


@contextmanager
def planted_secret() -> Iterator[str]:
    """An environment variable in the harness (set before sandboxes start) that no program may see."""
    value = "hostile-secret-" + secrets.token_hex(12)
    previous = os.environ.get(SECRET_NAME)
    os.environ[SECRET_NAME] = value
    try:
        yield value
    finally:
        if previous is None:
            os.environ.pop(SECRET_NAME, None)
        else:
            os.environ[SECRET_NAME] = previous


def remote_address() -> str:
    try:
        return socket.gethostbyname("deb.debian.org")
    except OSError:
        return "1.1.1.1"


def _host_processes(comm: str, mark: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", "rb") as f:
                name = f.read().strip()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if name == comm.encode() or mark.encode() in cmdline:
            found.append(int(entry))
    return found


def _files_with(nonce: str) -> list[str]:
    places = {"/", "/root", "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), os.getcwd()}
    found = []
    for place in sorted(places):
        try:
            found += [os.path.join(place, n) for n in os.listdir(place) if nonce in n]
        except OSError:
            continue
    return found


class UnixListeners:
    """World-writable Unix sockets on the host that no program may reach: one in /var/tmp (where a hostile
    program found one), one in a directory outside the usual hidden ones, and an abstract one."""

    def __init__(self) -> None:
        token = secrets.token_hex(8)
        self.dirs: list[str] = []
        self.sockets: list[socket.socket] = []
        self.paths: list[str] = []
        places = ["/var/tmp"]
        if os.geteuid() == 0:
            places.append("/var/lib")  # visible in the sandbox's read-only view of the host
        for place in places:
            try:
                d = tempfile.mkdtemp(prefix="codegen-eval-unix-", dir=place)
            except OSError:
                continue
            os.chmod(d, 0o777)
            self.dirs.append(d)
            self._listen(os.path.join(d, f"s{token}.sock"))
        self._listen("\0codegen-eval-hostile-" + token)

    def _listen(self, address: str) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(address)
        if not address.startswith("\0"):
            os.chmod(address, 0o777)
        s.listen(4)
        self.sockets.append(s)
        self.paths.append("@" + address[1:] if address.startswith("\0") else address)

    def connected(self) -> bool:
        return any(select.select([s], [], [], 0)[0] for s in self.sockets)

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        for d in self.dirs:
            for name in os.listdir(d):
                os.unlink(os.path.join(d, name))
            os.rmdir(d)


def _follower(token: str, i: int) -> tuple[str, str, int]:
    """(program, expected stdout, expected exit status) of the i-th job queued behind a case."""
    out = f"follower {token} {i}"
    return f"print({out!r})\nraise SystemExit({3 * (i % 2)})\n", out + "\n", 3 * (i % 2)


def _check_followers(box: Sandbox, token: str, count: int = 4) -> list[str]:
    """Submit `count` jobs just after the case's own; what came back different from what they printed."""
    results: list[ExecutionResult | BaseException | None] = [None] * count

    def one(i: int) -> None:
        try:
            results[i] = box.run(ExecutionJob(program=_follower(token, i)[0], timeout_s=10.0))
        except BaseException as e:
            results[i] = e

    time.sleep(0.05)  # the case's own job is in a worker by now: these queue behind it or beside it
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60.0)
    wrong = []
    for i, got in enumerate(results):
        _, stdout, code = _follower(token, i)
        if not isinstance(got, ExecutionResult):
            wrong.append(f"job {i}: {got!r}")
        elif (got.kind, got.exit_code, got.stdout, got.stderr) != (ExitKind.EXITED, code, stdout, ""):
            wrong.append(f"job {i}: {label(got)} stdout={got.stdout[:80]!r}")
    return wrong


def run_case(box: Sandbox, case: Case, secret: str, remote: str = "1.1.1.1", grace_s: float = 5.0) -> Report:
    nonce = secrets.token_hex(16)
    sentinel = f"{SENTINEL_PREFIX} {nonce}"
    comm = "hx" + nonce[:12]
    mark = "hostile-mark-" + nonce
    follower_token = "follower-" + secrets.token_hex(8)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    unix = UnixListeners()
    try:
        code = _PREFIX + case.code
        for token, value in (
            ("@SENTINEL@", sentinel),
            ("@NONCE@", nonce),
            ("@MARK@", mark),
            ("@COMM@", comm),
            ("@PORT@", str(listener.getsockname()[1])),
            ("@HOME@", os.path.expanduser("~")),
            ("@REMOTE@", remote),
            ("@UNIX@", "|".join(unix.paths)),
            ("@FOLLOWER_REVERSED@", follower_token[::-1]),
            ("@FOLLOWER@", follower_token),
        ):
            code = code.replace(token, value)
        program = code + f"\nprint({sentinel!r}, flush=True)\n"
        followers: list[str] = []
        checker = threading.Thread(target=lambda: followers.extend(_check_followers(box, follower_token)), daemon=True)
        checker.start()
        result = box.run(ExecutionJob(program=program, timeout_s=case.timeout_s, memory_mb=case.memory_mb))
        checker.join(90.0)
        connected = bool(select.select([listener], [], [], 0)[0]) or unix.connected()
    finally:
        listener.close()
        unix.close()
    got = label(result)
    passed = result.kind is ExitKind.EXITED and result.exit_code == 0 and sentinel in result.stdout.splitlines()
    leftovers = _host_processes(comm, mark)
    deadline = time.monotonic() + grace_s
    while leftovers and time.monotonic() < deadline:  # a killed process may still be on its way out
        time.sleep(0.1)
        leftovers = _host_processes(comm, mark)
    try:
        alive = box.run(ExecutionJob(program="print('alive')", timeout_s=10.0))
        harness_ok = alive.stdout == "alive\n"
    except Exception:
        harness_ok = False
    return Report(
        case=case.name,
        label=got,
        passed=passed,
        expected=matches(got, case.expect),
        leftovers=leftovers,
        files=_files_with(nonce),
        secret_leaked=secret in result.stdout or secret in result.stderr,
        connected=connected,
        harness_ok=harness_ok,
        followers=followers,
        stdout_head=result.stdout[:200],
    )
