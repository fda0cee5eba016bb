"""A benchmark that implements only the core six members (no base class) runs end to end through the runner."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from codegen_eval.benchmarks import BENCHMARKS, build
from codegen_eval.benchmarks.base import BenchmarkSettings, StopHints
from codegen_eval.config import RunConfig
from codegen_eval.records import (
    ExecutionJob,
    ExecutionResult,
    ExitKind,
    Outcome,
    Problem,
    Sample,
    SamplingParams,
    Turn,
    TurnOutput,
    Verdict,
)
from codegen_eval.rundir import RunDir
from codegen_eval.runner import Run, execute_run


class Tiny:
    """Two problems of two turns; the program (the turns' code) passes when it leaves x == 2."""

    version = "tiny-1"

    def __init__(self, settings: BenchmarkSettings) -> None:
        pass

    def load(self) -> list[Problem]:
        return [Problem(f"tiny/{i}", f"tiny/{i}", (Turn("set x to 1", 16), Turn("add one to x", 16))) for i in range(2)]

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        return "".join(f"{h.text}\n" for h in history) + f"# {problem.turns[turn].instruction}\n"

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str:
        return raw.split("\n#")[0]

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob:
        code = "".join(f"{t.text}\n" for t in sample.turns)
        return ExecutionJob(program=f"{code}assert x == 2\nprint({nonce!r})\n", timeout_s=10.0)

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict:
        if sample.error is not None:
            return Verdict(Outcome.GENERATION_ERROR, sample.error)
        ok = result.kind is ExitKind.EXITED and result.exit_code == 0 and nonce in result.stdout_lines()
        return Verdict(Outcome.PASSED if ok else Outcome.FAILED)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(BENCHMARKS._entries, "tiny", f"{__name__}:Tiny")
    return "tiny"


def test_the_optional_capabilities_have_defaults(tiny: str) -> None:
    bench = build(tiny, BenchmarkSettings())
    problem = bench.load()[0]
    assert bench.preload == () and bench.subsets() == {} and bench.reference(problem) is None
    assert bench.stop_hints(problem, 0) == StopHints()
    assert bench.instruction(problem, 1) == "add one to x"
    assert bench.default_sampling(1) == SamplingParams(temperature=0.0, top_p=1.0)
    assert bench.provenance() == {"benchmark_version": "tiny-1"}


def test_a_core_only_benchmark_runs_end_to_end(tiny: str, tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    texts = {"tiny/0": ["x = 1\n# more", "x += 1"], "tiny/1": ["x = 1", "x += 5"]}
    samples.write_text(
        "".join(
            json.dumps({"problem_id": pid, "index": 0, "turns": [{"raw": t, "text": t} for t in turns]}) + "\n"
            for pid, turns in texts.items()
        )
    )
    config = RunConfig(bench=tiny, model=f"replay:{samples}", output_dir=str(tmp_path / "run"))
    path = execute_run(Run.create(config, progress=False)).path
    rundir = RunDir(path)
    recorded = {s.problem_id: s for s in rundir.samples()}
    assert [t.text for t in recorded["tiny/0"].turns] == ["x = 1", "x += 1"]  # postprocessed
    outcomes = {r.problem_id: r.outcome for r in rundir.executions()}
    assert outcomes == {"tiny/0": Outcome.PASSED, "tiny/1": Outcome.FAILED}
    meta = json.loads((path / "run.json").read_text())
    assert meta["benchmark"] == {"benchmark_version": "tiny-1"} and meta["config"]["temperature"] == 0.0


def test_without_references_the_reference_backend_records_generation_errors(tiny: str, tmp_path: Path) -> None:
    config = RunConfig(bench=tiny, model="reference", output_dir=str(tmp_path / "run"))
    path = execute_run(Run.create(config, progress=False)).path
    outcomes = {r.problem_id: r.outcome for r in RunDir(path).executions()}
    assert outcomes == {"tiny/0": Outcome.GENERATION_ERROR, "tiny/1": Outcome.GENERATION_ERROR}
