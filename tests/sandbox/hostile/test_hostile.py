"""The hostile suite: every hostile program against every sandbox; none may pass, escape, linger or leak."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_cases import CASES, Case, planted_secret, remote_address, run_case

from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionJob, ExecutionResult, ExitKind
from codegen_eval.sandbox import SANDBOXES
from codegen_eval.sandbox.base import Sandbox, SandboxSettings

SANDBOX_NAMES = [
    pytest.param("process", id="process"),
    pytest.param("docker", id="docker", marks=pytest.mark.container),
]


@pytest.fixture(scope="module")
def secret() -> Iterator[str]:
    # Planted before any sandbox starts, so workers and containers are created from an environment that has it.
    with planted_secret() as value:
        yield value


@pytest.fixture(scope="module")
def remote() -> str:
    return remote_address()


@pytest.fixture(scope="module", params=SANDBOX_NAMES)
def box(request: pytest.FixtureRequest, secret: str) -> Iterator[Sandbox]:
    name = request.param
    required = name == "process" or os.environ.get("CODEGEN_EVAL_REQUIRE_CONTAINER") == "1"
    try:
        factory = SANDBOXES.load(name)
        sandbox = factory(SandboxSettings(workers=2))
        sandbox.__enter__()
    except (ImportError, SandboxError) as exc:
        if required:
            pytest.fail(f"{name} sandbox unusable: {exc}")
        pytest.skip(f"{name} sandbox unusable here ({exc}); for docker run scripts/setup-container-engine.sh")
    try:
        yield sandbox
    finally:
        sandbox.__exit__(None, None, None)


def test_the_suite_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_program(box: Sandbox, case: Case, secret: str, remote: str, request: pytest.FixtureRequest) -> None:
    known = case.known_reason(box.name)
    if known:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"known weakness: {known}"))
    report = run_case(box, case, secret, remote)
    assert report.ok, f"{case.name} ({case.what}): " + "; ".join(report.problems())


class NaiveRunner:
    """What a sandbox replaces: the program in a temporary file, run as the harness's own user with its
    environment, a wait with a timeout that kills only the direct child. Real, not a mock: the suite's checks
    must catch what it lets through, or they prove nothing."""

    name = "naive"

    def run(self, job: ExecutionJob) -> ExecutionResult:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "program.py").write_text(job.program)
            with open(work / "out", "w+b") as out, open(work / "err", "w+b") as err:
                started = time.monotonic()
                proc = subprocess.Popen(
                    [sys.executable, "program.py"], cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=err
                )
                kind = ExitKind.EXITED
                try:
                    status = proc.wait(job.timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    status = proc.wait()
                    kind = ExitKind.TIMEOUT
                out.seek(0)
                err.seek(0)
                if status < 0 and kind is ExitKind.EXITED:
                    kind = ExitKind.SIGNALED
                return ExecutionResult(
                    kind=kind,
                    exit_code=status if status >= 0 else None,
                    signal=-status if status < 0 else None,
                    stdout=out.read().decode("utf-8", "replace"),
                    stderr=err.read().decode("utf-8", "replace"),
                    duration_s=time.monotonic() - started,
                )


# What each check must report when the naive runner runs these cases.
CAUGHT = {
    "setsid_daemon": "leftovers",
    "exec_orphan": "leftovers",
    "write_shared_tmp": "files",
    "env_secret": "secret_leaked",
    "tcp_localhost": "connected",
    "proc_self_nonce": "passed",
    "unix_socket_hunt": "connected",
}


def test_the_checks_catch_an_unsandboxed_runner(secret: str, remote: str) -> None:
    by_name = {c.name: c for c in CASES}
    for name, check in CAUGHT.items():
        report = run_case(NaiveRunner(), by_name[name], secret, remote, grace_s=0.5)  # type: ignore[arg-type]
        try:
            assert getattr(report, check), f"{name}: the {check} check did not fire: {report}"
            assert not report.ok
        finally:
            for pid in report.leftovers:  # started by this test through the naive runner
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for path in report.files:
                with contextlib.suppress(OSError):
                    os.unlink(path)
