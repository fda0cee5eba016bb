"""The syscall filter (codegen_eval/sandbox/seccomp.py): its BPF program, and its effect in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from codegen_eval.sandbox import seccomp

_RET_K = 0x06


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_denied_call_has_a_number_and_every_jump_lands_on_a_return(arch: str) -> None:
    _, table = seccomp.TABLES[arch]
    assert set(seccomp.DENIED) | {"clone3", "socket", "clone"} == set(table)
    assert len(set(table.values())) == len(table)  # no two names share a number
    program = seccomp.program(arch)
    assert len(program) < 100
    for i, (code, jt, jf, _) in enumerate(program):
        if code & 0x07 == 0x05:  # a jump: both targets inside the program
            assert i + 1 + max(jt, jf) < len(program)
    assert program[-1][0] == _RET_K


def test_a_filter_for_an_unknown_architecture_is_refused() -> None:
    with pytest.raises(KeyError):
        seccomp.program("mips")


def test_describe_never_claims_a_filter_that_is_off() -> None:
    assert seccomp.describe("no syscall table for mips") == "OFF (no syscall table for mips)"
    assert seccomp.describe("").startswith("on (")


PROBE = textwrap.dedent(
    """
    import ctypes, json, multiprocessing, os, socket, subprocess, sys, threading
    sys.path.insert(0, sys.argv[1])
    from codegen_eval.sandbox import seccomp
    report = {"install": seccomp.install()}
    libc = ctypes.CDLL(None, use_errno=True)
    def errno_of(result):
        return 0 if result >= 0 else ctypes.get_errno()
    report["ptrace_parent"] = errno_of(libc.ptrace(16, os.getppid(), 0, 0))
    report["unshare_user"] = errno_of(libc.unshare(0x10000000))
    try:
        socket.socket(socket.AF_UNIX)
        report["af_unix"] = 0
    except OSError as e:
        report["af_unix"] = e.errno
    a, b = socket.socketpair()
    a.sendall(b"x")
    report["socketpair"] = b.recv(1).decode()
    socket.socket(socket.AF_INET).close()
    out = []
    t = threading.Thread(target=out.append, args=("thread",))
    t.start()
    t.join()
    report["thread"] = out
    report["subprocess"] = subprocess.run([sys.executable, "-c", "print('sub')"], capture_output=True, text=True).stdout
    with multiprocessing.get_context("fork").Pool(2) as pool:
        report["pool"] = pool.map(abs, [-1, -2])
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    report["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(seccomp.machine() not in seccomp.TABLES, reason="no syscall table for this machine")
def test_the_filter_refuses_what_it_says_and_ordinary_programs_still_work() -> None:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", PROBE, repo], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["install"] == ""
    assert report["ptrace_parent"] == 1  # EPERM
    assert report["unshare_user"] == 1
    assert report["af_unix"] == 13  # EACCES
    assert report["socketpair"] == "x"
    assert report["thread"] == ["thread"]
    assert report["subprocess"] == "sub\n"
    assert report["pool"] == [1, 2]
    assert report["fork"] == 7
