"""Drives trajectories turn by turn, batching every unfinished (problem, sample) of a chunk per turn."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from codegen_eval.backends.base import ModelBackend
from codegen_eval.benchmarks.base import FullBenchmark
from codegen_eval.chat import SYSTEM_INSTRUCTION, extract_code
from codegen_eval.records import ChatMessage, Completion, GenerationRequest, Problem, Sample, SamplingParams, TurnOutput


@dataclass(slots=True)
class _Trajectory:
    problem: Problem
    index: int
    outputs: list[TurnOutput] = field(default_factory=list)
    error: str | None = None


def request_seed(seed: int, problem_id: str, first_sample: int, turn: int) -> int:
    """A per-request seed that does not depend on how requests are batched."""
    digest = hashlib.sha256(f"{seed}|{problem_id}|{first_sample}|{turn}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    sampling: SamplingParams
    seed: int
    max_new_tokens: int | None  # overrides the benchmark's per-turn budget
    postprocess: bool
    chunk: int


def generate(
    benchmark: FullBenchmark,
    backend: ModelBackend,
    todo: Sequence[tuple[Problem, Sequence[int]]],
    plan: GenerationPlan,
    on_sample: Callable[[Sample], None],
) -> None:
    """Generate the listed sample indices of each problem; `on_sample` receives each finished sample."""
    chunk: list[_Trajectory] = []
    for problem, indices in todo:
        chunk.extend(_Trajectory(problem, i) for i in indices)
        if len(chunk) >= plan.chunk:
            _run_chunk(benchmark, backend, chunk, plan, on_sample)
            chunk = []
    if chunk:
        _run_chunk(benchmark, backend, chunk, plan, on_sample)


def _run_chunk(
    benchmark: FullBenchmark,
    backend: ModelBackend,
    chunk: list[_Trajectory],
    plan: GenerationPlan,
    on_sample: Callable[[Sample], None],
) -> None:
    mode = backend.mode
    turns = max(len(t.problem.turns) for t in chunk)
    for turn in range(turns):
        active = [t for t in chunk if t.error is None and turn < len(t.problem.turns)]
        if not active:
            break
        groups = _group(active, turn, mode)
        kept = backend.keeps_stop_strings
        requests = [_request(benchmark, g, turn, plan, mode, kept) for g in groups]
        completions = backend.generate(requests)
        if len(completions) != len(requests):
            raise RuntimeError(
                f"backend {backend.name} returned {len(completions)} completions for {len(requests)} requests"
            )
        for group, completion in zip(groups, completions, strict=True):
            _apply(benchmark, group, completion, turn, plan, mode)
    for t in chunk:
        on_sample(Sample(t.problem.id, t.index, tuple(t.outputs), mode=mode, error=t.error))


def _group(active: list[_Trajectory], turn: int, mode: str) -> list[list[_Trajectory]]:
    """At the first turn every sample of a problem shares its prompt: one request with n = the run of
    consecutive indices. Later turns depend on each sample's own history: one request each."""
    if turn > 0:
        return [[t] for t in active]
    groups: list[list[_Trajectory]] = []
    for t in active:
        last = groups[-1][-1] if groups else None
        if last is not None and last.problem.id == t.problem.id and last.index + 1 == t.index:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def _request(
    benchmark: FullBenchmark, group: list[_Trajectory], turn: int, plan: GenerationPlan, mode: str, kept: bool
) -> GenerationRequest:
    head = group[0]
    problem = head.problem
    budget = plan.max_new_tokens or problem.turns[turn].max_new_tokens
    sampling = plan.sampling
    if sampling.temperature > 0:
        sampling = replace(sampling, seed=request_seed(plan.seed, problem.id, head.index, turn))
    messages: tuple[ChatMessage, ...] = ()
    prompt = ""
    if mode == "chat":
        history: list[ChatMessage] = [ChatMessage("system", SYSTEM_INSTRUCTION)]
        for i, out in enumerate(head.outputs):
            history.append(ChatMessage("user", benchmark.instruction(problem, i)))
            history.append(ChatMessage("assistant", out.raw))
        history.append(ChatMessage("user", benchmark.instruction(problem, turn)))
        messages = tuple(history)
    else:
        prompt = benchmark.render(problem, turn, head.outputs)
    return GenerationRequest(
        key=f"{problem.id}#{head.index}@{turn}",
        prompt=prompt,
        max_new_tokens=budget,
        n=len(group),
        sampling=sampling,
        # A backend that strips the stop string that ended a text gets only the hints safe to strip.
        stop=benchmark.stop_hints(problem, turn).for_backend(kept) if mode == "completion" else (),
        messages=messages,
        problem_id=problem.id,
        turn=turn,
        first_sample=head.index,
    )


def _apply(
    benchmark: FullBenchmark,
    group: list[_Trajectory],
    completion: Completion,
    turn: int,
    plan: GenerationPlan,
    mode: str,
) -> None:
    error = completion.error
    if error is None and len(completion.texts) != len(group):  # the request asked for n = len(group)
        error = f"backend returned {len(completion.texts)} texts for n={len(group)}"
    for i, t in enumerate(group):
        if error is not None:
            t.error = f"turn {turn + 1}: {error}"
            continue
        raw = completion.texts[i]
        if mode == "chat":
            text = extract_code(raw)
        elif plan.postprocess and mode == "completion":
            text = benchmark.postprocess(t.problem, turn, raw)
        else:
            text = raw
        t.outputs.append(TurnOutput(raw=raw, text=text))


def pending(problems: Sequence[Problem], n: int, done: Mapping[str, set[int]]) -> list[tuple[Problem, list[int]]]:
    """Sample indices still to generate, per problem, in order."""
    out = []
    for p in problems:
        have = done.get(p.id, set())
        missing = [i for i in range(n) if i not in have]
        if missing:
            out.append((p, missing))
    return out
