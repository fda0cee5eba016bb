"""Benchmarks: render turns, postprocess completions, build programs, judge results. One file each."""

from codegen_eval.benchmarks.base import Benchmark, BenchmarkSettings, FullBenchmark, with_defaults
from codegen_eval.registry import Registry

BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark",
    {"humaneval": "codegen_eval.benchmarks.humaneval:HumanEval", "mtpb": "codegen_eval.benchmarks.mtpb:MTPB"},
)


def build(name: str, settings: BenchmarkSettings, turns: str = "multi") -> FullBenchmark:
    """The benchmark `name` with every optional capability (defaults where it has none), in the form `turns`
    asks for (benchmarks.transforms.with_turns)."""
    from codegen_eval.benchmarks.transforms import with_turns

    return with_turns(with_defaults(BENCHMARKS.load(name)(settings)), turns)


__all__ = ["BENCHMARKS", "Benchmark", "FullBenchmark", "build"]
