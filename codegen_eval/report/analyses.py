"""The paper's analyses inside the report: which ones the given runs allow, computed by `codegen_eval.analyses`.

- difficulty split: a benchmark's single/multi-turn pairs of one model over the same problem groups
  (as `analyze difficulty` pairs them, keeping the pairs of one model);
- scaling: runs of at least two different model sizes (the parameter count in run.json's provenance);
- best of temperatures: two or more temperature runs of one `run --temperature` sweep (a sweep directory given to
  `report` stands for its runs, see `expand_sweeps`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen_eval.analyses.difficulty import DifficultySplit, difficulty_split, pair_turns
from codegen_eval.analyses.scaling import FEW_GROUPS, ScalingResult, run_parameters, scaling
from codegen_eval.compare import LoadedRun
from codegen_eval.errors import UsageError
from codegen_eval.summaries import PRIMARY
from codegen_eval.sweep import SWEEP_JSON, SweepSummary, is_sweep, summarize_scores, variant_name


@dataclass(frozen=True, slots=True)
class SweepAnalysis:
    """Best of temperatures over the report's runs of one sweep directory."""

    sweep: str  # the sweep directory
    runs: tuple[str, ...]  # report labels of its runs, in temperature order
    summary: SweepSummary
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "report_runs": list(self.runs),
            **self.summary.to_json(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class ReportAnalyses:
    difficulty: tuple[DifficultySplit, ...] = ()  # one per benchmark with a usable single/multi pair
    scaling: ScalingResult | None = None
    sweeps: tuple[SweepAnalysis, ...] = ()
    notes: tuple[str, ...] = ()  # why an analysis the runs seemed to allow is not shown

    def __bool__(self) -> bool:
        return bool(self.difficulty or self.scaling or self.sweeps or self.notes)

    def to_json(self) -> dict[str, Any]:
        return {
            "difficulty_split": [d.to_json() for d in self.difficulty],
            "scaling": None if self.scaling is None else self.scaling.to_json(),
            "best_of_temperatures": [s.to_json() for s in self.sweeps],
            "notes": list(self.notes),
        }


def expand_sweeps(paths: Sequence[Path]) -> list[Path]:
    """`report`'s RUNS: a sweep directory (sweep.json, no run.json) stands for its temperature runs, in the
    sweep's order; anything else is kept as given."""
    out: list[Path] = []
    for p in paths:
        if not (p.is_dir() and is_sweep(p)):
            out.append(p)
            continue
        try:
            temperatures = [float(t) for t in json.loads((p / SWEEP_JSON).read_text())["temperatures"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UsageError(f"{p / SWEEP_JSON}: not a sweep record ({e})") from None
        out += [p / variant_name(t) for t in temperatures]
    return out


def _one_model(single: LoadedRun, multi: LoadedRun) -> bool:
    """The same model named, or the `run --turns both` layout (DIR/single, DIR/multi: one model by construction;
    a replayed pair names two sample files)."""
    if single.model == multi.model:
        return True
    s, m = single.path.resolve(), multi.path.resolve()
    return s.parent == m.parent and (s.name, m.name) == ("single", "multi")


def _difficulty(runs: Sequence[LoadedRun]) -> tuple[list[DifficultySplit], list[str]]:
    splits, notes = [], []
    for bench in dict.fromkeys(r.bench for r in runs):
        pairs = [
            (s, m)
            for s, m in pair_turns([r for r in runs if r.bench == bench])
            if _one_model(s, m) and {g for g, _ in s.groups.values()} == {g for g, _ in m.groups.values()}
        ]
        if not pairs:
            continue
        try:
            splits.append(difficulty_split([r for pair in pairs for r in pair]))
        except UsageError as e:
            notes.append(f"difficulty split of {bench}: not shown ({e})")
    return splits, notes


def _sweeps(runs: Sequence[LoadedRun], labels: Sequence[str]) -> list[SweepAnalysis]:
    groups: dict[Path, list[int]] = {}
    for i, r in enumerate(runs):
        parent = r.path.resolve().parent
        if r.path.is_dir() and is_sweep(parent) and "temperature" in r.config:
            groups.setdefault(parent, []).append(i)
    out = []
    for parent, idx in groups.items():
        idx = [i for i in idx if PRIMARY in runs[i].summary.scorers]
        if len({float(runs[i].config["temperature"]) for i in idx}) < 2:
            continue
        idx.sort(key=lambda i: float(runs[i].config["temperature"]))
        summary = summarize_scores(
            [(float(runs[i].config["temperature"]), runs[i].path.name, runs[i].summary.scorers[PRIMARY]) for i in idx]
        )
        notes = []
        try:
            recorded = [float(t) for t in json.loads((parent / SWEEP_JSON).read_text())["temperatures"]]
        except (OSError, ValueError, KeyError, TypeError):
            recorded = []
        missing = [t for t in recorded if t not in summary.temperatures]
        if missing:
            notes.append(
                "the sweep's runs at temperature " + ", ".join(f"{t:g}" for t in missing) + " are not in this report"
            )
        few = sorted({g for i in idx if (g := runs[i].summary.scorers[PRIMARY].groups) is not None and g < FEW_GROUPS})
        if few:
            notes.append(
                f"caveat: {'/'.join(map(str, few))} problem(s) per temperature (fewer than {FEW_GROUPS}); the CIs "
                "are wide and the best temperature may be chance"
            )
        out.append(SweepAnalysis(str(parent), tuple(labels[i] for i in idx), summary, tuple(notes)))
    return out


def build_analyses(runs: Sequence[LoadedRun], labels: Sequence[str]) -> ReportAnalyses:
    """Every analysis the runs allow (see the module docstring); none is an error."""
    splits, notes = _difficulty(runs)
    sizes = {p for r in runs if (p := run_parameters(r)) is not None}
    result = None
    if len(sizes) >= 2:
        try:
            result = scaling(runs)
        except UsageError as e:
            notes.append(f"scaling: not shown ({e})")
    return ReportAnalyses(tuple(splits), result, tuple(_sweeps(runs, labels)), tuple(notes))
