"""Interpreter resolution and layer probing of the process sandbox."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from codegen_eval.sandbox import probe
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.sandbox.process import probe_layers


def test_configured_interpreter_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(probe.PYTHON_ENV_VAR, "/from/env/python")
    assert probe.resolve_interpreter("/configured/python", 60000) == "/configured/python"
    assert probe.resolve_interpreter("", 60000) == "/from/env/python"


def test_default_interpreter_is_runnable_by_the_worker_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(probe.PYTHON_ENV_VAR, raising=False)
    uid = 60000 if os.geteuid() == 0 else None
    chosen = probe.resolve_interpreter("", uid)
    if os.path.exists(probe.SANDBOX_VENV_PYTHON):
        assert chosen == probe.SANDBOX_VENV_PYTHON
    else:
        assert chosen in (sys.executable, probe.FALLBACK_PYTHON)
    assert probe.runnable_by(chosen, uid)


def test_python_under_a_private_home_is_not_runnable_by_another_uid() -> None:
    top = Path(tempfile.mkdtemp(prefix="codegen-eval-probe-"))  # pytest's tmp_path is itself private
    try:
        top.chmod(0o755)
        private = top / "private"
        (private / "bin").mkdir(parents=True)
        exe = private / "bin" / "python"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
        private.chmod(0o700)
        assert not probe.runnable_by(str(exe), 60000)
        private.chmod(0o755)
        assert probe.runnable_by(str(exe), 60000)
    finally:
        shutil.rmtree(top)


def test_debian_python_is_runnable_by_an_unprivileged_uid() -> None:
    if not os.path.exists(probe.FALLBACK_PYTHON):
        pytest.skip("no /usr/bin/python3")
    assert probe.runnable_by(probe.FALLBACK_PYTHON, 60000)


def test_minimal_env_carries_nothing_of_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    env = probe.minimal_env("/opt/venv/bin/python", "/tmp")
    assert env["PATH"].startswith("/opt/venv/bin:") and env["HOME"] == "/tmp"
    assert "AWS_SECRET_ACCESS_KEY" not in env


def test_bwrap_arguments_isolate_everything() -> None:
    args = probe.bwrap_args("bwrap", SandboxSettings())
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--disable-userns"):
        assert flag in args
    assert args[args.index("--ro-bind") + 1 : args.index("--ro-bind") + 3] == ["/", "/"]
    assert "/tmp" in args and "/run" in args


def test_probe_layers_names_every_layer() -> None:
    layers = probe_layers()
    assert {"bubblewrap", "network", "pid_namespace", "readonly_root", "private_tmp", "uid", "rlimits"} <= set(layers)
    if shutil.which("bwrap"):
        assert layers["bubblewrap"].startswith("on")
        assert layers["network"] == "isolated"
    else:
        assert layers["bubblewrap"].startswith("off")
