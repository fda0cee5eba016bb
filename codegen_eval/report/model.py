"""The multi-run report's model: runs, their per-turn pairs and paired comparisons, shared by every format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codegen_eval.compare import (
    Comparison,
    CurvePoint,
    LoadedRun,
    compare_runs,
    pass_at_k_curve,
    turn_pairs,
)
from codegen_eval.metrics import PRIMARY


@dataclass(frozen=True, slots=True)
class TurnPair:
    single: int  # index into ReportModel.runs
    multi: int
    comparison: Comparison  # A = single-turn, B = multi-turn


@dataclass(frozen=True, slots=True)
class ReportModel:
    runs: tuple[LoadedRun, ...]
    labels: tuple[str, ...]  # unique display names
    curves: tuple[tuple[CurvePoint, ...], ...]
    comparisons: tuple[Comparison, ...]  # every later run of a benchmark against its first
    turn_pairs: tuple[TurnPair, ...]
    generated_at: str


def build_report(runs: Sequence[LoadedRun]) -> ReportModel:
    labels: list[str] = []
    for r in runs:
        label = r.label
        i = 2
        while label in labels:
            label = f"{r.label} ({i})"
            i += 1
        labels.append(label)
    comparisons: list[Comparison] = []
    done: dict[tuple[int, int], Comparison] = {}
    first: dict[str, int] = {}
    for i, r in enumerate(runs):
        if r.bench not in first:
            first[r.bench] = i
            continue
        j = first[r.bench]
        c = compare_runs(runs[j], r)
        done[(j, i)] = c
        comparisons.append(c)
    pairs = []
    index = {id(r): i for i, r in enumerate(runs)}
    for single, multi in turn_pairs(runs):
        si, mi = index[id(single)], index[id(multi)]
        c = done.get((si, mi)) or compare_runs(single, multi)
        pairs.append(TurnPair(si, mi, c))
    return ReportModel(
        runs=tuple(runs),
        labels=tuple(labels),
        curves=tuple(tuple(pass_at_k_curve(r)) for r in runs),
        comparisons=tuple(comparisons),
        turn_pairs=tuple(pairs),
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def score_columns(model: ReportModel) -> list[str]:
    ks = sorted({k for r in model.runs for k in r.ks})
    return [f"pass@{k}" for k in ks]


def score_rows(model: ReportModel) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(run label, scorer or scorer+subset, score block) rows."""
    rows = []
    for label, run in zip(model.labels, model.runs, strict=True):
        for scorer, block in dict(run.summary.get("scorers", {})).items():
            rows.append((label, scorer, block))
            for sub, sblock in dict(block.get("subsets", {})).items():
                rows.append((label, f"{scorer} · {sub} ({sblock.get('groups', 0)} problems)", sblock))
    return rows


def all_outcomes(model: ReportModel) -> list[str]:
    from codegen_eval.plots import OUTCOME_ORDER

    seen = {o for r in model.runs for o in r.outcomes()}
    return [o for o in OUTCOME_ORDER if o in seen] + sorted(seen - set(OUTCOME_ORDER))


def category_block(run: LoadedRun, category: str) -> Mapping[str, Any] | None:
    block: Mapping[str, Any] | None = (
        dict(dict(run.summary["scorers"]).get(PRIMARY, {})).get("by_category", {}).get(category)
    )
    return block


def runs_with_categories(model: ReportModel) -> list[int]:
    return [i for i, r in enumerate(model.runs) if dict(dict(r.summary["scorers"]).get(PRIMARY, {})).get("by_category")]


def categories(model: ReportModel) -> list[str]:
    return sorted(
        {c for r in model.runs for c in dict(dict(r.summary["scorers"]).get(PRIMARY, {})).get("by_category", {})}
    )
