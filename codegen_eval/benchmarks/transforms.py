"""Benchmark transforms: a benchmark wrapped into a variant of itself (`--turns single`: every turn at once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from codegen_eval.benchmarks.base import FullBenchmark, StopHints
from codegen_eval.errors import UsageError
from codegen_eval.records import (
    ExecutionJob,
    ExecutionResult,
    Problem,
    Sample,
    SamplingParams,
    Turn,
    TurnOutput,
    Verdict,
)

TURNS = ("multi", "single")


class SingleTurnForm(Protocol):
    """What only a multi-turn benchmark knows about giving all its turns at once; SingleTurn does the rest."""

    label: str  # the benchmark's name in messages ("single-turn MTPB ...")

    def render(self, problem: Problem) -> str:
        """The one prompt; the program scored is this prompt followed by the model's text."""

    def instruction(self, problem: Problem) -> str:
        """The one user message in chat mode."""

    def postprocess(self, problem: Problem, raw: str) -> str: ...

    def stop_hints(self, problem: Problem) -> StopHints: ...

    def provenance(self) -> Mapping[str, str]:
        """Entries that replace or extend the benchmark's own provenance."""


@runtime_checkable
class HasSingleTurnForm(Protocol):
    def single_turn_form(self) -> SingleTurnForm: ...


def with_turns(benchmark: FullBenchmark, turns: str) -> FullBenchmark:
    """The benchmark as `--turns` asks: as it is (multi), or collapsed into one turn (single). A benchmark without
    a single-turn form has one turn per problem already and is its own single-turn variant."""
    if turns not in TURNS:
        raise UsageError(f"turns must be 'multi' or 'single', not {turns!r}")
    if turns == "single" and isinstance(benchmark, HasSingleTurnForm):
        return SingleTurn(benchmark, benchmark.single_turn_form())
    return benchmark


def collapse(problem: Problem) -> Problem:
    """Every instruction in one turn, joined by newlines; the budget is what the turns would have had together."""
    turn = Turn("\n".join(t.instruction for t in problem.turns), sum(t.max_new_tokens for t in problem.turns))
    return replace(problem, turns=(turn,))


class SingleTurn:
    """A multi-turn benchmark with every turn given at once: one prompt, one text, one program (prompt + text).

    Loading, sampling, subsets, references and the checks stay the wrapped benchmark's: it receives the assembled
    program as a whole-program ("solution") sample.
    """

    def __init__(self, inner: FullBenchmark, form: SingleTurnForm) -> None:
        self.inner = inner
        self.form = form
        self.version = inner.version
        self.preload = inner.preload

    def load(self) -> list[Problem]:
        return [collapse(p) for p in self.inner.load()]

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        if turn != 0 or history:
            raise ValueError(f"{problem.id}: single-turn {self.form.label} has one turn")
        return self.form.render(problem)

    def instruction(self, problem: Problem, turn: int) -> str:
        return self.form.instruction(problem)

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str:
        return self.form.postprocess(problem, raw)

    def stop_hints(self, problem: Problem, turn: int) -> StopHints:
        return self.form.stop_hints(problem)

    def default_sampling(self, n: int) -> SamplingParams:
        return self.inner.default_sampling(n)

    def subsets(self) -> Mapping[str, frozenset[str]]:
        return self.inner.subsets()

    def data_warnings(self, problems: Sequence[Problem]) -> list[str]:
        return self.inner.data_warnings(problems)  # collapsing keeps ids and groups

    def reference(self, problem: Problem) -> tuple[str, ...] | None:
        """The turns' reference code, trailing newlines stripped, joined by "\\n" (so it holds no blank-line run
        that postprocess would cut)."""
        code = self.inner.reference(problem)
        return None if code is None else ("\n".join(c.rstrip("\n") for c in code),)

    def program(self, problem: Problem, sample: Sample) -> str:
        """The code under test: the prompt followed by the text (a whole-program sample as it is)."""
        return self._whole(problem, sample).turns[0].text

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob:
        return self.inner.build_job(problem, self._whole(problem, sample), nonce)

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict:
        return self.inner.judge(problem, self._whole(problem, sample), result, nonce)

    def provenance(self) -> Mapping[str, str]:
        return {**self.inner.provenance(), **self.form.provenance()}

    def _whole(self, problem: Problem, sample: Sample) -> Sample:
        if sample.mode == "solution":
            return sample  # already a whole program; the wrapped benchmark checks its shape
        # Completion: the postprocessed continuation; chat: the code extracted from the reply.
        texts = [t.text for t in sample.turns]
        if len(texts) != 1:
            if sample.error is None:
                raise UsageError(
                    f"{problem.id}: sample {sample.index} has {len(texts)} turns, single-turn {self.form.label} "
                    "expects 1 (were the samples generated with another --turns?)"
                )
            texts = texts[:1] or [""]
        program = self.form.render(problem) + texts[0]
        return replace(sample, mode="solution", turns=(TurnOutput(raw=program, text=program),))
