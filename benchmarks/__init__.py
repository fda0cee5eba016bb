"""Benchmark assets, shipped in the wheel as codegen_eval.benchmark_assets (data only, no code)."""
