"""Benchmarks: render turns, postprocess completions, build programs, judge results. One file each."""

from codegen_eval.benchmarks.base import Benchmark
from codegen_eval.registry import Registry

BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark",
    {
        "humaneval": "codegen_eval.benchmarks.humaneval:HumanEval",
        "mtpb": "codegen_eval.benchmarks.mtpb:MTPB",
    },
)

__all__ = ["BENCHMARKS", "Benchmark"]
