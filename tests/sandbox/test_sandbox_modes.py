"""The process sandbox's degraded modes, each in a fresh interpreter: no bubblewrap, not root, neither."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="switches to other uids"),
]

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

# Runs inside the subprocess: start a sandbox, run a few programs, print what happened as JSON.
SCRIPT = r"""
import json, os, sys
from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionJob
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.sandbox.process import ProcessSandbox

marker = sys.argv[1]
allow = sys.argv[2] == "allow"
programs = {
    "uid": "import os; print(os.getuid())",
    "home": "import os; print(sorted(os.listdir(os.environ['HARNESS_HOME'])))",
    "root_write": "open('/codegen-eval-mode-probe', 'w')",
    "daemon": (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(300)', '{marker}'])\n"
        "print('parent done')\n"
    ),
}
out = {}
try:
    with ProcessSandbox(SandboxSettings(workers=1, allow_unsandboxed=allow)) as box:
        out["layers"] = dict(box.layers())
        for name, program in programs.items():
            program = program.replace("os.environ['HARNESS_HOME']", repr(os.path.expanduser("~")))
            r = box.run(ExecutionJob(program=program, timeout_s=10))
            out[name] = [r.kind.value, r.exit_code, r.stdout, r.stderr[-300:]]
except SandboxError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def marker_alive(marker: str) -> bool:
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        return True
            except OSError:
                continue
    return False


def run_script(*, user: int | None, path: str, home: str, allow: bool = False) -> tuple[dict[str, Any], str]:
    marker = f"codegen-eval-mode-{uuid.uuid4().hex}"
    python = sys.executable if user is None else "/usr/bin/python3"
    env = {"PATH": path, "HOME": home, "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
    done = subprocess.run(
        [python, "-c", SCRIPT, marker, "allow" if allow else "refuse"],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), marker


@pytest.fixture
def nobody_home() -> Iterator[str]:
    home = tempfile.mkdtemp(prefix="codegen-eval-home-")
    Path(home, "secret.txt").write_text("s3cr3t")
    os.chmod(home, 0o755)  # readable by every uid: only the sandbox may hide it
    os.chown(home, NOBODY, NOBODY)
    yield home
    shutil.rmtree(home)


def test_root_without_bubblewrap_still_drops_to_a_dedicated_uid() -> None:
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs /usr/bin/python3")
    out, marker = run_script(user=None, path="/nonexistent", home="/root")
    layers = out["layers"]
    assert layers["bubblewrap"].startswith("off (bwrap not found")
    assert layers["network"].startswith("shared") and layers["pid_namespace"] == "off"
    uid = int(out["uid"][2])
    assert uid >= 60000 and layers["uid"] == str(uid)
    assert out["root_write"][1] == 1 and "Permission denied" in out["root_write"][3]
    assert out["home"][1] == 1  # /root is private to root
    assert out["daemon"][:3] == ["exited", 0, "parent done\n"]
    assert not marker_alive(marker)  # killed by uid: the worker's uid is its alone


def test_unprivileged_user_with_bubblewrap_hides_home(nobody_home: str) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    out, marker = run_script(user=NOBODY, path="/usr/bin:/bin", home=nobody_home)
    layers = out["layers"]
    assert layers["bubblewrap"].startswith("on") and layers["network"] == "isolated"
    assert layers["uid"] == f"{NOBODY} (current user)" and layers["home_hidden"] == nobody_home
    assert out["uid"][2] == f"{NOBODY}\n"
    assert out["home"][:3] == ["exited", 0, "[]\n"]  # secret.txt is not visible
    assert "Read-only file system" in out["root_write"][3]
    assert out["daemon"][:3] == ["exited", 0, "parent done\n"]
    assert not marker_alive(marker)


def test_unprivileged_user_without_bubblewrap_is_refused_unless_allowed(nobody_home: str) -> None:
    out, _ = run_script(user=NOBODY, path="/nonexistent", home=nobody_home)
    assert "no isolation layer works" in out["error"]
    out, marker = run_script(user=NOBODY, path="/nonexistent", home=nobody_home, allow=True)
    layers = out["layers"]
    assert layers["bubblewrap"].startswith("off") and layers["network"].startswith("shared")
    assert "nproc=off" in layers["rlimits"]
    assert out["uid"][2] == f"{NOBODY}\n"
    assert out["daemon"][:3] == ["exited", 0, "parent done\n"]
    assert not marker_alive(marker)  # a descendant of the worker, found through /proc
