"""The single-turn transform: MTPB collapsed equals the golden single-turn prompts; the wrapper's generic parts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codegen_eval.benchmarks.base import BenchmarkBase, BenchmarkSettings, StopHints
from codegen_eval.benchmarks.mtpb import MTPB
from codegen_eval.benchmarks.transforms import SingleTurn, collapse, with_turns
from codegen_eval.errors import UsageError
from codegen_eval.records import (
    ExecutionJob,
    ExecutionResult,
    Outcome,
    Problem,
    Sample,
    Turn,
    TurnOutput,
    Verdict,
)

GOLDEN = Path(__file__).resolve().parents[2] / "benchmarks" / "mtpb" / "golden"


def test_collapsed_mtpb_renders_the_golden_single_turn_prompts(data_dir: Path) -> None:
    mtpb = MTPB(BenchmarkSettings(data_dir=data_dir))
    single = SingleTurn(mtpb, mtpb.single_turn_form())
    problems = {p.id: p for p in mtpb.load()}
    manifest = json.loads((GOLDEN / "manifest.json").read_text(encoding="utf-8"))
    items = [key.removeprefix("single:") for key in manifest if key.startswith("single:")]
    assert len(items) == 8
    for item_id in items:
        collapsed = collapse(problems[item_id])
        folder = item_id.removeprefix("mtpb/").replace("/", "-")
        assert single.render(collapsed, 0, ()) == (GOLDEN / "single" / folder / "turn-0.txt").read_text()
        assert [[t.instruction, t.max_new_tokens] for t in collapsed.turns] == manifest[f"single:{item_id}"]["turns"]
        assert list(single.stop_hints(collapsed, 0).for_backend(True)) == manifest[f"single:{item_id}"]["stop"]


def test_with_turns() -> None:
    bench = Steps()
    assert with_turns(bench, "multi") is bench
    assert isinstance(with_turns(bench, "single"), SingleTurn)
    plain = BenchmarkBase()
    assert with_turns(plain, "single") is plain  # type: ignore[arg-type]  # no single-turn form: itself
    with pytest.raises(UsageError, match="turns must be 'multi' or 'single', not 'both'"):
        with_turns(bench, "both")


# -- the generic parts, on a small multi-turn benchmark with a single-turn form ------------------------------


class StepsForm:
    label = "Steps"

    def render(self, problem: Problem) -> str:
        return "".join(f"# {t}\n" for t in problem.turns[0].instruction.split("\n"))

    def instruction(self, problem: Problem) -> str:
        return "do all: " + problem.turns[0].instruction

    def postprocess(self, problem: Problem, raw: str) -> str:
        return raw.strip()

    def stop_hints(self, problem: Problem) -> StopHints:
        return StopHints(("\n\n",))

    def provenance(self) -> Mapping[str, str]:
        return {"turns": "single", "form": "steps"}


@dataclass
class Steps(BenchmarkBase):
    version: str = "steps-1"
    jobs: list[Sample] = field(default_factory=list)

    def load(self) -> list[Problem]:
        return [Problem("s/0", "s/0", (Turn("a", 4), Turn("b", 6)))]

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        raise AssertionError("the transform renders through the form")

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str:
        raise AssertionError("the transform postprocesses through the form")

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob:
        self.jobs.append(sample)
        return ExecutionJob(program=sample.turns[0].text, timeout_s=1.0)

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict:
        return Verdict(Outcome.PASSED, sample.turns[0].text)

    def reference(self, problem: Problem) -> tuple[str, ...] | None:
        return ("x = 1\n", "y = 2\n\n")

    def provenance(self) -> Mapping[str, str]:
        return {"benchmark_version": self.version, "turns": "multi"}

    def single_turn_form(self) -> StepsForm:
        return StepsForm()


def test_single_turn_wraps_every_turn_into_one() -> None:
    inner = Steps()
    bench = SingleTurn(inner, inner.single_turn_form())
    (problem,) = bench.load()
    assert problem.turns == (Turn("a\nb", 10),)
    assert bench.render(problem, 0, ()) == "# a\n# b\n"
    with pytest.raises(ValueError, match="single-turn Steps has one turn"):
        bench.render(problem, 1, (TurnOutput("x", "x"),))
    assert bench.instruction(problem, 0) == "do all: a\nb"
    assert bench.postprocess(problem, 0, "  x = 1 \n") == "x = 1"
    assert bench.stop_hints(problem, 0) == StopHints(("\n\n",))
    assert bench.reference(problem) == ("x = 1\ny = 2",)
    assert bench.provenance() == {"benchmark_version": "steps-1", "turns": "single", "form": "steps"}
    assert bench.version == "steps-1"


def test_the_program_is_the_prompt_plus_the_text_handed_on_as_a_whole_program() -> None:
    inner = Steps()
    bench = SingleTurn(inner, inner.single_turn_form())
    (problem,) = bench.load()
    sample = Sample("s/0", 3, (TurnOutput("raw", "z = 3"),))
    assert bench.program(problem, sample) == "# a\n# b\nz = 3"
    assert bench.build_job(problem, sample, "n").program == "# a\n# b\nz = 3"
    (handed,) = inner.jobs
    program = "# a\n# b\nz = 3"
    assert handed.mode == "solution" and handed.index == 3 and handed.turns == (TurnOutput(program, program),)
    solution = Sample("s/0", 0, (TurnOutput("whole", "whole"),), mode="solution")
    assert bench.build_job(problem, solution, "n").program == "whole"
    with pytest.raises(UsageError, match="sample 0 has 2 turns, single-turn Steps expects 1"):
        bench.program(problem, Sample("s/0", 0, (TurnOutput("a", "a"), TurnOutput("b", "b"))))
    failed = Sample("s/0", 0, (), error="boom")
    assert bench.program(problem, failed) == "# a\n# b\n"  # a failed generation still assembles
