"""Scaling: pass rate against model size (the paper's "emerges with scale" figure), from finished runs.

Each run gives one row per metric of its primary scorer as summary.json records it (pass@k for every k it asked for,
with the bootstrap CI); HumanEval rows are benchmark `humaneval`, MTPB rows `mtpb multi` / `mtpb single` by the run's
turns. The model's size is the `parameters` entry of run.json's backend provenance (the hf backend records the sum of
`p.numel()` over `model.parameters()`, tied weights once); a run without it is listed as size unknown, not plotted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codegen_eval.analyses import record_from_json, record_json
from codegen_eval.compare import LoadedRun
from codegen_eval.errors import UsageError
from codegen_eval.summaries import PRIMARY

FEW_GROUPS = 20  # fewer problem groups than this in a run prints the caveat


@dataclass(frozen=True, slots=True)
class ScalingPoint:
    run: str  # the run's label
    model: str
    parameters: int | None  # None: the run's provenance does not record it
    benchmark: str  # humaneval | mtpb multi | mtpb single (other benchmarks: bench [turns])
    metric: str  # pass@1, pass@10, ...
    value: float
    ci95: tuple[float, float] | None
    groups: int | None

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class ScalingResult:
    points: tuple[ScalingPoint, ...]  # sorted by benchmark, metric, size (unknown last), run
    notes: tuple[str, ...]

    def series(self) -> dict[tuple[str, str], list[ScalingPoint]]:
        """(benchmark, metric) -> its points of known size, smallest model first (what the plot draws)."""
        out: dict[tuple[str, str], list[ScalingPoint]] = {}
        for p in self.points:
            if p.parameters is not None:
                out.setdefault((p.benchmark, p.metric), []).append(p)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"analysis": "scaling", **record_json(self)}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> ScalingResult:
        return record_from_json(ScalingResult, d)


def run_parameters(run: LoadedRun) -> int | None:
    """The model's parameter count from run.json's backend provenance, or None when it is not recorded."""
    value = (run.meta.backend or {}).get("parameters")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _benchmark(run: LoadedRun) -> str:
    return f"{run.bench} {run.turns}" if run.turns in ("multi", "single") and run.bench != "humaneval" else run.bench


def _metric_key(metric: str) -> tuple[int, str]:
    head, _, k = metric.partition("@")
    return (int(k), head) if k.isdecimal() else (0, metric)


def scaling(runs: Sequence[LoadedRun], scorer: str = PRIMARY) -> ScalingResult:
    if not runs:
        raise UsageError("analyze scaling needs at least one run")
    points: list[ScalingPoint] = []
    unknown: list[str] = []
    few: list[str] = []
    for run in runs:
        block = run.summary.scorers.get(scorer)
        if block is None:
            raise UsageError(f"{run.label}: no scorer {scorer!r} (it has: {', '.join(run.scorers)})")
        size = run_parameters(run)
        if size is None:
            unknown.append(run.label)
        if block.groups is not None and block.groups < FEW_GROUPS:
            few.append(f"{run.label} ({block.groups})")
        cis = block.pass_at_k_ci95 or {}
        for metric, value in (block.pass_at_k or {}).items():
            points.append(
                ScalingPoint(run.label, run.model, size, _benchmark(run), metric, value, cis.get(metric), block.groups)
            )
    points.sort(key=lambda p: (p.benchmark, _metric_key(p.metric), p.parameters is None, p.parameters or 0, p.run))
    notes = [f"scorer: {scorer}; parameters: run.json backend provenance (sum of p.numel(), hf backend)"]
    if unknown:
        notes.append(f"size unknown (not recorded in run.json; not plotted): {', '.join(unknown)}")
    sizes = {p.parameters for p in points if p.parameters is not None}
    if len(sizes) < 2:
        notes.append("only one model size is known: no trend can be read")
    if few:
        notes.append(f"caveat: runs of fewer than {FEW_GROUPS} problem groups, wide CIs: {', '.join(few)}")
    return ScalingResult(tuple(points), tuple(notes))


def format_parameters(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit} ({n:,})"
    return f"{n:,}"


def scaling_markdown(result: ScalingResult) -> str:
    lines = [
        "| model | parameters | benchmark | metric | value % [95% CI] | run |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for p in result.points:
        ci = "" if p.ci95 is None else f" [{100 * p.ci95[0]:.1f}, {100 * p.ci95[1]:.1f}]"
        lines.append(
            f"| {p.model} | {format_parameters(p.parameters)} | {p.benchmark} | {p.metric} | "
            f"{100 * p.value:.1f}{ci} | {p.run} |"
        )
    lines.append("")
    lines.extend(f"- {n}" for n in result.notes)
    return "\n".join(lines) + "\n"
