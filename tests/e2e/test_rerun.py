"""--record-programs keeps the exact programs; `rerun` executes one again and shows what it did."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import run_cli


def _executions(run: Path) -> dict[tuple[str, int], dict[str, object]]:
    records = [json.loads(line) for line in (run / "executions.jsonl").read_text().splitlines()]
    return {(str(r["problem_id"]), int(r["index"])): r for r in records}


def test_recorded_programs_are_content_addressed_and_rerun_reproduces_the_verdict(tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    lines = [
        {"task_id": "HumanEval/0", "completion": "    print('noise ' * 200_000)\n    return False\n"},
        {"task_id": "HumanEval/0", "completion": "    return None\n"},
    ]
    samples.write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = tmp_path / "run"
    r = run_cli("evaluate", str(samples), "--ignore-incomplete", "-k", "1", "--record-programs", "--no-progress",
                "--output-dir", str(run), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    records = _executions(run)
    for record in records.values():
        stored = run / "programs" / f"{record['program_sha256']}.py"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == record["program_sha256"]
    noisy = records[("HumanEval/0", 0)]
    assert noisy["stdout_truncated"] is True and int(noisy["stdout_bytes"]) > 1_200_000  # type: ignore[call-overload]

    r = run_cli("rerun", str(run), "HumanEval/0", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"sha256 {noisy['program_sha256']} (stored:" in r.stdout
    assert "recorded: failed" in r.stdout and "now:      failed" in r.stdout
    assert "bytes not kept" in r.stdout and "AssertionError" in r.stdout

    r = run_cli("rerun", str(run), "HumanEval/0", "1", "--show-program", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "----- program -----" in r.stdout and "return None" in r.stdout


def test_rerun_rebuilds_a_program_that_was_not_kept(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = run_cli("run", "--bench", "humaneval", "--model", "reference", "--limit", "2", "--no-progress",
                "--output-dir", str(run), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not (run / "programs").exists()
    record = _executions(run)[("HumanEval/1", 0)]
    r = run_cli("rerun", str(run), "HumanEval/1", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"sha256 {record['program_sha256']} (rebuilt from the sample" in r.stdout
    assert "recorded: passed" in r.stdout and "now:      passed" in r.stdout
    assert "warning" not in r.stderr


def test_rerun_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = run_cli("run", "--limit", "1", "--no-progress", "--output-dir", str(run), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for args, message in (
        ((str(tmp_path / "nope"), "HumanEval/0", "0"), "is not a run directory"),
        ((str(run), "HumanEval/999", "0"), "no problem 'HumanEval/999'"),
        ((str(run), "HumanEval/0", "7"), "no sample 7 of HumanEval/0 (samples: [0])"),
    ):
        r = run_cli("rerun", *args, cwd=tmp_path)
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
