"""Feeds programs to an executor (a sandbox here or on a cluster), runs identical programs once, judges every sample."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence

from codegen_eval.benchmarks.base import Benchmark
from codegen_eval.executors.base import Executor
from codegen_eval.records import ExecutionJob, Outcome, Problem, Sample
from codegen_eval.rundir import ExecutionRecord

STDERR_TAIL = 2000


def execute(
    benchmark: Benchmark,
    executor: Executor,
    problems: Mapping[str, Problem],
    samples: Sequence[Sample],
    nonce: str,
    on_record: Callable[[ExecutionRecord], None],
    on_program: Callable[[str, str], None] | None = None,
) -> int:
    """Judge `samples`; returns how many distinct programs actually ran (after dedup). `on_program(sha256, text)`
    is called once per distinct program before it runs (--record-programs stores it). `executor` is open
    (executors/: local, ray)."""
    by_key: dict[str, list[Sample]] = defaultdict(list)
    jobs: dict[str, ExecutionJob] = {}
    shas: dict[str, str] = {}  # key -> the content address of the program text (executions.jsonl, --record-programs)
    for s in samples:
        if s.error is not None:
            on_record(ExecutionRecord(s.problem_id, s.index, Outcome.GENERATION_ERROR, s.error))
            continue
        job = benchmark.build_job(problems[s.problem_id], s, nonce)
        identity = f"{s.problem_id}\0{job.timeout_s}\0{job.memory_mb}\0{job.program}"
        key = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()  # a completion may hold any text
        by_key[key].append(s)
        if key not in jobs:
            jobs[key] = job
            shas[key] = program_sha256(job.program)

    def feed() -> Iterator[tuple[str, ExecutionJob]]:
        for key, job in jobs.items():
            if on_program is not None:
                on_program(shas[key], job.program)
            yield key, job

    # The executor pulls jobs only as it has room, so an interrupt loses little and memory stays flat.
    for key, result in executor.stream(feed()):
        for s in by_key[key]:
            verdict = benchmark.judge(problems[s.problem_id], s, result, nonce)
            on_record(
                ExecutionRecord(
                    problem_id=s.problem_id,
                    index=s.index,
                    outcome=verdict.outcome,
                    detail=verdict.detail,
                    scores=verdict.scores,
                    exit=result.kind,
                    exit_code=result.exit_code,
                    duration_s=result.duration_s,
                    stderr_tail=result.stderr[-STDERR_TAIL:],
                    stdout_bytes=result.stdout_bytes,
                    stderr_bytes=result.stderr_bytes,
                    stdout_truncated=result.stdout_truncated,
                    stderr_truncated=result.stderr_truncated,
                    program_sha256=shas[key],
                )
            )
    return len(jobs)


def program_sha256(program: str) -> str:
    """The content address of a program's exact text (what `--record-programs` and `rerun` use)."""
    return hashlib.sha256(program.encode("utf-8", "surrogatepass")).hexdigest()
