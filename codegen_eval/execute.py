"""Feeds programs to a sandbox in parallel, runs identical programs once, and judges every sample."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from codegen_eval.benchmarks.base import Benchmark
from codegen_eval.records import ExecutionJob, ExecutionResult, Outcome, Problem, Sample
from codegen_eval.rundir import ExecutionRecord
from codegen_eval.sandbox.base import Sandbox

STDERR_TAIL = 2000


def execute(
    benchmark: Benchmark,
    sandbox: Sandbox,
    problems: Mapping[str, Problem],
    samples: Sequence[Sample],
    nonce: str,
    on_record: Callable[[ExecutionRecord], None],
    on_program: Callable[[str, str], None] | None = None,
) -> int:
    """Judge `samples`; returns how many distinct programs actually ran (after dedup). `on_program(sha256, text)`
    is called once per distinct program before it runs (--record-programs stores it)."""
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

    def finish(key: str, result: ExecutionResult) -> None:
        program_sha = shas[key]
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
                    program_sha256=program_sha,
                )
            )

    # Keep a bounded number of jobs in flight so an interrupt loses little and memory stays flat.
    keys = iter(jobs)
    in_flight: dict[Future[ExecutionResult], str] = {}
    limit = max(1, sandbox.concurrency) * 4
    with ThreadPoolExecutor(max_workers=max(1, sandbox.concurrency), thread_name_prefix="exec") as pool:
        try:
            while True:
                while len(in_flight) < limit:
                    next_key = next(keys, None)
                    if next_key is None:
                        break
                    if on_program is not None:
                        on_program(shas[next_key], jobs[next_key].program)
                    in_flight[pool.submit(sandbox.run, jobs[next_key])] = next_key
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in done:
                    finish(in_flight.pop(fut), fut.result())
        except BaseException:
            for fut in in_flight:
                fut.cancel()
            raise
    return len(jobs)


def program_sha256(program: str) -> str:
    """The content address of a program's exact text (what `--record-programs` and `rerun` use)."""
    return hashlib.sha256(program.encode("utf-8", "surrogatepass")).hexdigest()
