"""Resume asks again for samples whose generation failed, and re-judges them; everything else is kept."""

from __future__ import annotations

from pathlib import Path

from codegen_eval.config import RunConfig
from codegen_eval.records import Outcome, Sample, TurnOutput
from codegen_eval.rundir import ExecutionRecord
from codegen_eval.runner import Run


def _run(tmp_path: Path) -> Run:
    config = RunConfig(bench="humaneval", model="reference", limit=3, output_dir=str(tmp_path / "run"))
    return Run.create(config, progress=False)


def test_failed_generations_are_pending_again_and_their_stale_verdicts_rejudged(tmp_path: Path) -> None:
    run = _run(tmp_path)
    ok = Sample("HumanEval/0", 0, (TurnOutput("    return 1\n", "    return 1\n"),))
    failed = Sample("HumanEval/1", 0, (), error="turn 1: connection refused (after 7 attempts)")
    run.rundir.append_sample(ok)
    run.rundir.append_sample(failed)
    run.rundir.append_execution(ExecutionRecord("HumanEval/0", 0, Outcome.FAILED))
    run.rundir.append_execution(ExecutionRecord("HumanEval/1", 0, Outcome.GENERATION_ERROR, failed.error or ""))

    todo = run.generation_todo()
    assert [(p.id, idx) for p, idx in todo] == [("HumanEval/1", [0]), ("HumanEval/2", [0])]
    # Its GENERATION_ERROR verdict matches the failed sample: nothing to execute for it yet.
    assert [s.problem_id for s in run.execution_todo()] == []

    run.generate()  # the reference backend answers both
    latest = run.latest_samples()
    assert latest[("HumanEval/0", 0)] == ok  # untouched
    assert latest[("HumanEval/1", 0)].error is None and latest[("HumanEval/1", 0)].turns
    assert len(run.rundir.samples()) == 4  # the failed record stays in the log, superseded
    assert run.generation_todo() == []
    # The retried sample's old verdict is stale; the new one (HumanEval/2) has none.
    assert sorted(s.problem_id for s in run.execution_todo()) == ["HumanEval/1", "HumanEval/2"]


def test_a_sample_that_fails_again_keeps_its_verdict(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run.rundir.append_sample(Sample("HumanEval/0", 0, (), error="first failure"))
    run.rundir.append_execution(ExecutionRecord("HumanEval/0", 0, Outcome.GENERATION_ERROR, "first failure"))
    run.rundir.append_sample(Sample("HumanEval/0", 0, (), error="second failure"))
    assert [s.problem_id for s in run.execution_todo()] == []
    assert [p.id for p, _ in run.generation_todo()] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
