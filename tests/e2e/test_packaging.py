"""The wheel carries the benchmark data: an installed copy runs MTPB with no data dir, no cache and no network."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from codegen_eval.benchmarks.mtpb import MTPB_DATA

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_an_installed_wheel_runs_mtpb_offline_from_its_own_copy(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    # The packaging configuration relies on nothing deprecated: no setuptools warning at all.
    log = build.stdout + build.stderr
    for warning in ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "Package would be ignored", "is deprecated"):
        assert warning not in log, log[log.find(warning) - 500 : log.find(warning) + 1500]
    (wheel,) = wheels.glob("codegen_eval-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        data = z.read("codegen_eval/benchmark_assets/mtpb/mtpb.jsonl")
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert hashlib.sha256(data).hexdigest() == MTPB_DATA.sha256
    for asset in ("mtpb/LICENSE", "mtpb/PROVENANCE.md", "mtpb/reference_solutions.json", "humaneval/PROVENANCE.md"):
        assert f"codegen_eval/benchmark_assets/{asset}" in names
    # Every file of benchmarks/ ships (a new asset folder must be declared in pyproject.toml), dotfiles aside.
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "benchmarks"], capture_output=True, text=True, check=True
    ).stdout.split()
    assets = {p.removeprefix("benchmarks/") for p in tracked if not Path(p).name.startswith(".")}
    assert assets and {f"codegen_eval/benchmark_assets/{a}" for a in assets} <= names
    assert "License-Expression: BSD-3-Clause" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert 'Requires-Dist: torch<3,>=2.4; extra == "hf"' in metadata  # a range: an installed CUDA torch stays

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("CODEGEN_EVAL_DATA_DIR", "PYTHONPATH")}
    env |= {
        "PYTHONPATH": str(site),  # the installed copy, not this checkout; dependencies from this interpreter
        "XDG_CACHE_HOME": str(tmp_path / "empty-cache"),
        MTPB_DATA.url_env: "http://127.0.0.1:9/unreachable",  # any download attempt fails
    }
    out = tmp_path / "run"
    r = subprocess.run(
        [
            *(sys.executable, "-m", "codegen_eval", "run", "--bench", "mtpb", "--model", "reference"),
            *("--problems", "1-2", "--no-progress", "--output-dir", str(out)),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "run.json").read_text())
    assert meta["benchmark"]["data_path"].startswith(str(site))
    assert meta["benchmark"]["data_sha256"] == MTPB_DATA.sha256
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 10  # problems 1 and 2, five cases each
    assert summary["outcomes"] == {"passed": 10}  # the reference solutions pass every scorable case
    assert not (tmp_path / "empty-cache" / "codegen-eval").exists()
