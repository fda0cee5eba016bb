"""PNG plots of the analyses (the report's helpers: matplotlib on an explicit Agg canvas, imported when drawing)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from codegen_eval.analyses.difficulty import DifficultySplit
from codegen_eval.analyses.perplexity import PerplexityResult
from codegen_eval.analyses.scaling import ScalingResult
from codegen_eval.plots import (
    GRID,
    INK,
    MULTI_COLOR,
    MUTED,
    RUN_COLORS,
    Point,
    _new_figure,
    _png,
    _style,
    single_multi_bars,
)
from codegen_eval.sweep import SweepSummary


def difficulty_plot(split: DifficultySplit) -> bytes:
    """One panel per (single, multi) pair: grouped bars per bucket with 95% CIs, the multi-turn gain on top."""
    panels = len(split.pairs)
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    fig = _new_figure(max(4.2, 3.6 * columns), 3.4 * rows)
    for index, pair in enumerate(split.pairs):
        ax = fig.add_subplot(rows, columns, index + 1)
        _style(ax)
        single_multi_bars(
            ax,
            [f"{b.bucket}\n({b.groups})" for b in pair.buckets],
            [Point(b.single, *b.single_ci95) for b in pair.buckets],
            [Point(b.multi, *b.multi_ci95) for b in pair.buckets],
        )
        if index % columns == 0:
            ax.set_ylabel("pass rate (%)")
        ax.set_title(pair.title, fontsize=10, color=INK, loc="left")
        if index == 0:
            handles, labels = ax.get_legend_handles_labels()
            fig.legend(handles, labels, frameon=False, fontsize=8, ncols=2, loc="outside upper right")
    fig.suptitle(
        f"{split.bench}: pass rate by difficulty (95% bootstrap CIs)", fontsize=11, color=INK, x=0.01, ha="left"
    )
    return _png(fig)


def perplexity_plot(result: PerplexityResult) -> bytes:
    """Per problem group: single-turn against multi-turn prompt perplexity (log axes); below the diagonal the
    multi-turn history made the instructions more predictable."""
    rows = result.group_means()
    fig = _new_figure(4.8, 4.4)
    ax = fig.add_subplot()
    _style(ax)
    multi = [m for _, m, _ in rows]
    single = [s for _, _, s in rows]
    ax.scatter(single, multi, s=14, color=MULTI_COLOR, alpha=0.8, lw=0)
    lo, hi = min(multi + single), max(multi + single)
    pad = (hi / lo) ** 0.05 if lo > 0 else 1.0
    ax.plot([lo / pad, hi * pad], [lo / pad, hi * pad], color=MUTED, lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("single-turn prompt perplexity")
    ax.set_ylabel("multi-turn prompt perplexity")
    ax.grid(color=GRID)
    m, s = result.summary("multi").mean, result.summary("single").mean
    ax.set_title(f"{result.model}: mean {m:.2f} multi vs {s:.2f} single", fontsize=10, color=INK, loc="left")
    return _png(fig)


def scaling_plot(result: ScalingResult) -> bytes:
    """One panel per benchmark: pass rate (%) against parameters on a log axis, one line per metric, 95% CIs;
    runs of unknown size are left out (the table lists them)."""
    series = result.series()
    benches = sorted({b for b, _ in series}) or ["(no run of known size)"]
    fig = _new_figure(max(4.4, 4.0 * len(benches)), 3.6)
    for index, bench in enumerate(benches):
        ax = fig.add_subplot(1, len(benches), index + 1)
        _style(ax)
        metrics = [m for b, m in series if b == bench]
        for color, metric in zip(itertools.cycle(RUN_COLORS), metrics):
            pts = series[(bench, metric)]
            _line(ax, color, metric, [(float(p.parameters or 0), p.value, p.ci95) for p in pts])
        ax.set_xscale("log")
        ax.set_ylim(-2, 102)
        ax.set_xlabel("parameters")
        if index == 0:
            ax.set_ylabel("pass rate (%)")
        ax.grid(color=GRID)
        ax.set_title(bench, fontsize=10, color=INK, loc="left")
        if metrics:
            ax.legend(frameon=False, fontsize=8)
    fig.suptitle("pass rate against model size (95% bootstrap CIs)", fontsize=11, color=INK, x=0.01, ha="left")
    return _png(fig)


def _line(ax: Any, color: str, label: str, points: Sequence[tuple[float, float, Sequence[float] | None]]) -> None:
    """(x, fraction, its 95% CI or None) as percentages, with the CIs as error bars."""
    xs = [x for x, _, _ in points]
    ys = [100 * v for _, v, _ in points]
    lo = [100 * (v - ci[0]) if ci else 0.0 for _, v, ci in points]
    hi = [100 * (ci[1] - v) if ci else 0.0 for _, v, ci in points]
    ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker="o", ms=4, lw=1.2, capsize=2, label=label)


def temperature_plot(summary: SweepSummary, title: str = "pass@k by sampling temperature") -> bytes:
    """pass@k (%) against temperature, one line per k with 95% CIs; each k's best temperature ringed (the
    best-of-temperatures value the paper reports)."""
    fig = _new_figure(5.2, 3.6)
    ax = fig.add_subplot()
    _style(ax)
    for color, (metric, (best_t, best_v)) in zip(itertools.cycle(RUN_COLORS), summary.best.items()):
        rows = [r for r in summary.rows if metric in r.pass_at_k]
        _line(ax, color, metric, [(r.temperature, r.pass_at_k[metric], r.ci95.get(metric)) for r in rows])
        ax.scatter([best_t], [100 * best_v], s=90, facecolors="none", edgecolors=color, lw=1.4, zorder=5)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("temperature")
    ax.set_ylabel("pass@k (%)")
    ax.grid(color=GRID)
    if summary.best:
        ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"{title} (ringed: best per k)", fontsize=10, color=INK, loc="left")
    return _png(fig)
