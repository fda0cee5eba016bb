"""`run --temperature 0.2,0.6,0.8` (codegen_eval/sweep.py): one run per temperature under one directory, the
best-of-temperatures pass@k checked against each run's own summary.json, and resume per temperature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codegen_eval.errors import UsageError
from codegen_eval.sweep import parse_temperatures
from tests.conftest import run_cli

ARGS = ("--problems", "1-2", "-n", "4", "-k", "1,2", "--max-new-tokens", "12", "--no-progress")


def _check_sweep(base: Path, temps: list[float]) -> dict[str, object]:
    sweep = json.loads((base / "sweep.json").read_text())
    assert sweep["temperatures"] == temps
    by_t = {}
    for row in sweep["runs"]:
        run = base / row["run"]
        assert row["run"] == f"t{row['temperature']:g}"
        assert json.loads((run / "run.json").read_text())["config"]["temperature"] == row["temperature"]
        block = json.loads((run / "summary.json").read_text())["scorers"]["pass"]
        assert row["pass_at_k"] == pytest.approx(block["pass_at_k"])
        by_t[row["temperature"]] = block["pass_at_k"]
    for k in ("pass@1", "pass@2"):
        value = max(v[k] for v in by_t.values())
        lowest = min(t for t, v in by_t.items() if v[k] == value)
        assert sweep["best"][k] == {"temperature": lowest, "value": pytest.approx(value)}
    md = (base / "sweep.md").read_text()
    assert "(best)" in md and "best of temperatures" in md
    return sweep


def test_sweep_with_the_tiny_model(tiny_codegen: Path, tmp_path: Path) -> None:
    base = tmp_path / "sweep"
    r = run_cli("run", "--model", f"hf:{tiny_codegen}", "--temperature", "0.2,0.8", *ARGS, "--output-dir", str(base))
    assert r.returncode == 0, r.stderr
    _check_sweep(base, [0.2, 0.8])
    assert "| 0.2 |" in r.stdout and "| 0.8 |" in r.stdout
    # The two temperatures really sampled differently.
    texts = [(base / t / "samples.jsonl").read_text() for t in ("t0.2", "t0.8")]
    assert texts[0] != texts[1]


def test_resume_per_temperature(tmp_path: Path) -> None:
    base = tmp_path / "sweep"
    r = run_cli("generate", "--temperature", "0.2,0.6,0.8", *ARGS, "--output-dir", str(base))
    assert r.returncode == 0, r.stderr
    assert not (base / "sweep.md").exists()
    assert all(not (base / t / "summary.json").exists() for t in ("t0.2", "t0.6", "t0.8"))
    # A temperature whose run never began is started on resume.
    import shutil

    shutil.rmtree(base / "t0.6")
    r = run_cli("run", "--resume", str(base), "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["runs"]) == 3 and out["sweep"]["temperatures"] == [0.2, 0.6, 0.8]
    sweep = _check_sweep(base, [0.2, 0.6, 0.8])
    assert sweep["best"]["pass@1"]["value"] == 1.0  # the reference backend's solutions pass


def test_sweep_errors(tmp_path: Path) -> None:
    assert parse_temperatures("0.2") == (0.2,)
    for bad in ("0.2,x", "0.2,0.2", "-1,0.2"):
        with pytest.raises(UsageError):
            parse_temperatures(bad)
    r = run_cli("run", "--bench", "mtpb", "--turns", "both", "--temperature", "0.2,0.8", "--output-dir", str(tmp_path))
    assert r.returncode == 2 and "--turns both" in r.stderr
    r = run_cli("run", "--temperature", "0.2,0.2", "--output-dir", str(tmp_path / "x"))
    assert r.returncode == 2 and "repeated" in r.stderr
