"""The generation driver, with a scripted backend that implements the ModelBackend interface."""

from collections.abc import Mapping, Sequence

from codegen_eval.benchmarks.base import BenchmarkSettings, StopHints
from codegen_eval.benchmarks.humaneval import HumanEval
from codegen_eval.generate import GenerationPlan, generate, pending, request_seed
from codegen_eval.records import (
    Completion,
    GenerationRequest,
    Problem,
    Sample,
    SampleMode,
    SamplingParams,
    Turn,
    TurnOutput,
)


class Scripted:
    """Answers each request with text derived from its key; records every call."""

    name = "scripted"

    def __init__(self, mode: SampleMode = "completion", fail: str = "", keeps_stop_strings: bool = True) -> None:
        self.mode = mode
        self.keeps_stop_strings = keeps_stop_strings
        self.progress = None
        self.calls: list[list[GenerationRequest]] = []
        self.fail = fail

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        self.calls.append(list(requests))
        out = []
        for r in requests:
            if self.fail and self.fail in r.key:
                out.append(Completion(texts=(), error="server said no"))
            else:
                out.append(Completion(texts=tuple(f"T{r.turn}S{r.first_sample + i}\n#cut" for i in range(r.n))))
        return out

    def provenance(self) -> Mapping[str, str]:
        return {}

    def close(self) -> None:
        pass


class TwoTurn(HumanEval):
    """HumanEval's postprocess with problems of two turns."""

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        return "".join(h.text for h in history) + problem.turns[turn].instruction


def _plan(temperature: float = 0.0, chunk: int = 64) -> GenerationPlan:
    return GenerationPlan(SamplingParams(temperature, 0.95), seed=7, max_new_tokens=None, postprocess=True, chunk=chunk)


def test_first_turn_groups_samples_and_later_turns_split() -> None:
    bench = TwoTurn(BenchmarkSettings())
    problems = [Problem(f"p{i}", f"p{i}", (Turn("A", 8), Turn("B", 16))) for i in range(2)]
    backend = Scripted()
    got: list[Sample] = []
    generate(bench, backend, pending(problems, 3, {}), _plan(0.5), got.append)
    first, second = backend.calls
    assert [(r.problem_id, r.n, r.first_sample) for r in first] == [("p0", 3, 0), ("p1", 3, 0)]
    assert len(second) == 6 and all(r.n == 1 for r in second)
    assert second[0].prompt == "T0S0B"  # history is the postprocessed text
    assert {r.max_new_tokens for r in second} == {16}
    assert len(got) == 6
    assert got[0].turns == (TurnOutput("T0S0\n#cut", "T0S0"), TurnOutput("T1S0\n#cut", "T1S0"))


def test_resume_gaps_become_separate_runs_of_indices() -> None:
    bench = TwoTurn(BenchmarkSettings())
    p = Problem("p", "p", (Turn("x", 8),))
    backend = Scripted()
    generate(bench, backend, pending([p], 5, {"p": {1, 2}}), _plan(0.5), lambda s: None)
    assert [(r.first_sample, r.n) for r in backend.calls[0]] == [(0, 1), (3, 2)]


def test_seeds_do_not_depend_on_chunking() -> None:
    bench = TwoTurn(BenchmarkSettings())
    problems = [Problem(f"p{i}", f"p{i}", (Turn("x", 8),)) for i in range(5)]
    seeds = []
    for chunk in (1, 64):
        backend = Scripted()
        generate(bench, backend, pending(problems, 2, {}), _plan(0.8, chunk), lambda s: None)
        seeds.append(sorted((r.problem_id, r.sampling.seed) for call in backend.calls for r in call))
    assert seeds[0] == seeds[1]
    assert seeds[0][0][1] == request_seed(7, "p0", 0, 0)
    backend = Scripted()
    generate(bench, backend, pending(problems, 1, {}), _plan(0.0), lambda s: None)
    assert all(r.sampling.seed is None for r in backend.calls[0])  # greedy needs no seed


def test_errors_become_sample_errors_and_stop_the_trajectory() -> None:
    bench = TwoTurn(BenchmarkSettings())
    problems = [Problem(f"p{i}", f"p{i}", (Turn("A", 8), Turn("B", 8))) for i in range(2)]
    backend = Scripted(fail="p1#0@0")
    got: list[Sample] = []
    generate(bench, backend, pending(problems, 1, {}), _plan(), got.append)
    assert got[1].error == "turn 1: server said no"
    assert len(backend.calls[1]) == 1  # the failed trajectory is not continued


def test_chat_mode_builds_conversation_and_extracts_code() -> None:
    bench = TwoTurn(BenchmarkSettings())
    p = Problem("HumanEval/0", "g", (Turn("A", 8), Turn("B", 8)), payload=bench.load()[0].payload)
    backend = Scripted(mode="chat")
    got: list[Sample] = []
    generate(bench, backend, pending([p], 1, {}), _plan(), got.append)
    second = backend.calls[1][0]
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[2].content == "T0S0\n#cut"
    assert second.prompt == "" and second.stop == ()
    assert got[0].mode == "chat"


def test_a_backend_that_strips_stop_strings_gets_only_the_strip_safe_hints() -> None:
    class Hinted(TwoTurn):
        def stop_hints(self, problem: Problem, turn: int) -> StopHints:
            return StopHints(strippable=("\n\n\n",), kept_only=("\n#",))

    bench = Hinted(BenchmarkSettings())
    p = Problem("p", "p", (Turn("x", 8),))
    for keeps, expected in ((True, ("\n\n\n", "\n#")), (False, ("\n\n\n",))):
        backend = Scripted(keeps_stop_strings=keeps)
        generate(bench, backend, pending([p], 1, {}), _plan(), lambda s: None)
        assert backend.calls[0][0].stop == expected
