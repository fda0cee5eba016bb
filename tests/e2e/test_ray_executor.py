"""`--executor ray` on a two-node Ray cluster on loopback: verdicts as local; nothing lost when a node dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.ray_cluster import Cluster, cluster

pytestmark = pytest.mark.slow

try:
    import ray  # noqa: F401
except ImportError:
    if os.environ.get("CODEGEN_EVAL_REQUIRE_RAY"):
        raise
    pytest.skip("Ray is not installed (pip install 'codegen-eval[ray]'; `make setup` does)", allow_module_level=True)

__all__ = ["cluster"]  # the fixture, imported to be used here


def _ray_flags(cluster: Cluster) -> list[str]:
    return ["--executor", "ray", "-X", f"address={cluster.address}"]


def _verdicts(run_dir: Path) -> dict[tuple[str, int], tuple[object, ...]]:
    """(problem, index) -> what a verdict is (a program's sha256 holds the run's nonce: not compared); asserts
    each key was recorded exactly once."""
    records = [json.loads(line) for line in (run_dir / "executions.jsonl").read_text().splitlines() if line.strip()]
    counts = Counter((r["problem_id"], r["index"]) for r in records)
    assert max(counts.values()) == 1, [k for k, c in counts.items() if c > 1]
    return {
        (r["problem_id"], r["index"]): (r["outcome"], r["exit"], r["exit_code"], r["detail"], r["stdout_bytes"])
        for r in records
    }


def _canonical(tmp_path: Path, problems: str) -> dict[str, str]:
    out = tmp_path / "canonical"
    r = run_cli("run", "--problems", problems, "--no-progress", "--output-dir", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {s["problem_id"]: s["turns"][0]["text"] for s in samples}


def _write_samples(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    return path


SLEEP = "\nimport time as _t\n_t.sleep({s})\n"  # a module-level statement after the function: a slow pass


def test_humaneval_reference_run_matches_local(tmp_path: Path, cluster: Cluster) -> None:
    args = ["run", "--problems", "1-40", "--no-progress"]
    local = run_cli(*args, "--output-dir", str(tmp_path / "local"), cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    distributed = run_cli(*args, *_ray_flags(cluster), "--output-dir", str(tmp_path / "ray"), cwd=tmp_path)
    assert distributed.returncode == 0, distributed.stderr
    assert _verdicts(tmp_path / "ray") == _verdicts(tmp_path / "local")
    assert {v[0] for v in _verdicts(tmp_path / "ray").values()} == {"passed"}

    meta = json.loads((tmp_path / "ray" / "run.json").read_text())
    local_meta = json.loads((tmp_path / "local" / "run.json").read_text())
    assert meta["config_hash"] == local_meta["config_hash"]  # where programs ran changes no number
    assert "executor" not in local_meta and "executor" not in local_meta["config"]
    assert meta["config"]["executor"] == {"kind": "ray", "address": cluster.address}
    nodes = meta["executor"]["nodes"]
    assert len(nodes) == 2 and len({n["node_id"] for n in nodes}) == 2
    assert all(n["layers"] and n["ip"] and n["hostname"] for n in nodes)
    assert meta["executor"]["lost_actors"] == 0 and meta["sandbox"]["name"] == "process"


def test_mixed_replay_matches_local(tmp_path: Path, cluster: Cluster) -> None:
    canonical = _canonical(tmp_path, "0-19")
    rows: list[tuple[str, str]] = []
    for i, (task, text) in enumerate(sorted(canonical.items())):
        rows += [(task, text), (task, text)]  # a duplicate: deduplicated, judged twice
        rows.append((task, ["    return None\n", "    raise ValueError('x')\n", "    return (\n"][i % 3]))
        if i % 5 == 0:
            rows.append((task, "    while True:\n        pass\n"))
    samples = _write_samples(tmp_path / "mixed.jsonl", rows)
    args = ["evaluate", str(samples), "--ignore-incomplete", "-k", "1", "--timeout", "1", "--no-progress"]
    local = run_cli(*args, "--output-dir", str(tmp_path / "local"), cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    distributed = run_cli(*args, *_ray_flags(cluster), "--output-dir", str(tmp_path / "ray"), cwd=tmp_path)
    assert distributed.returncode == 0, distributed.stderr
    got, want = _verdicts(tmp_path / "ray"), _verdicts(tmp_path / "local")
    assert got == want
    assert {v[0] for v in got.values()} >= {"passed", "failed", "error", "timeout"}
    meta = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert meta["deduplicated_samples"] == 20


def _slow_samples(tmp_path: Path, sleep_s: float) -> tuple[Path, int]:
    canonical = _canonical(tmp_path, "0-11")
    rows = [(t, c + SLEEP.format(s=sleep_s)) for t, c in sorted(canonical.items()) for _ in range(1)]
    rows += [(t, c + SLEEP.format(s=sleep_s) + f"# copy {i}\n") for i in range(2) for t, c in sorted(canonical.items())]
    return _write_samples(tmp_path / "slow.jsonl", rows), len(rows)


def _wait_for_records(path: Path, count: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} records")


def _start(args: list[str], cluster: Cluster, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "codegen_eval", *args],
        cwd=cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_resume_after_the_driver_is_killed(tmp_path: Path, cluster: Cluster) -> None:
    samples, total = _slow_samples(tmp_path, 0.5)
    out = tmp_path / "run"
    args = ["run", "--model", f"replay:{samples}", "--no-postprocess", "--problems", "0-11", "-n", "3"]
    args += ["--no-progress", "--output-dir", str(out), *_ray_flags(cluster)]
    proc = _start(args, cluster, tmp_path)
    _wait_for_records(out / "executions.jsonl", 6, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = len(_verdicts(out))
    assert 6 <= done < total
    r = run_cli("run", "--resume", str(out), "--no-progress", *_ray_flags(cluster), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    verdicts = _verdicts(out)
    assert len(verdicts) == total and {v[0] for v in verdicts.values()} == {"passed"}
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "completed" and meta["executor"]["kind"] == "ray"


def test_a_node_killed_mid_run_loses_nothing(tmp_path: Path, cluster: Cluster) -> None:
    """Last in this file: it takes the second node down for good."""
    samples, total = _slow_samples(tmp_path, 0.5)
    out = tmp_path / "run"
    args = [
        "evaluate",
        str(samples),
        "--ignore-incomplete",
        "-k",
        "1",
        "--no-progress",
        "--output-dir",
        str(out),
        *_ray_flags(cluster),
    ]
    proc = _start(args, cluster, tmp_path)
    _wait_for_records(out / "executions.jsonl", 4, proc)
    os.kill(cluster.worker_raylet(), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "died" in stderr  # the warning that its jobs went elsewhere
    verdicts = _verdicts(out)
    assert len(verdicts) == total and {v[0] for v in verdicts.values()} == {"passed"}
    executor = json.loads((out / "run.json").read_text())["executor"]
    assert executor["lost_actors"] == 1 and executor["retried_jobs"] >= 1
