"""Shared fixtures: the real MTPB data (the copy shipped in the package), and a CLI runner for this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Fixtures for the openai backend's tests: a real OpenAI-compatible server and a fault-injecting proxy.
pytest_plugins = ("tests.openai_server",)


def packaged_data_dir() -> Path:
    """A data dir laid out as DIR/mtpb/mtpb.jsonl: the benchmark assets folder, which ships the authors' file.
    Nothing outside this checkout is needed (no ../shared, no network)."""
    return REPO / "benchmarks"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = packaged_data_dir()
    if not (path / "mtpb" / "mtpb.jsonl").exists():
        pytest.fail(f"MTPB data missing from the checkout: {path / 'mtpb' / 'mtpb.jsonl'}")
    return path


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `python -m codegen_eval ARGS` in a subprocess (the way users run it)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "codegen_eval", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- hygiene: a test run leaves nothing behind in the working tree ------------------------------------------


def _untracked() -> set[str] | None:
    """Untracked files outside ignored paths (git status), or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=all", "-z"],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {entry[3:].decode(errors="replace") for entry in out.split(b"\0") if entry.startswith(b"?? ")}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_UNTRACKED_AT_START] = _untracked()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if it created untracked files in the checkout (as a stray `oom` once was committed)."""
    before = session.config.stash.get(_UNTRACKED_AT_START, None)
    after = _untracked()
    if before is None or after is None:
        return
    new = sorted(after - before)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test run left untracked files in the working tree: " + ", ".join(new[:20])
        if reporter is not None:
            reporter.write_line(f"FAILED hygiene: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_UNTRACKED_AT_START = pytest.StashKey[set[str] | None]()
