"""PNG plots for the HTML report: matplotlib's Agg canvas, imported only when a plot is drawn."""

# Figures are built on matplotlib.figure.Figure with an explicit Agg canvas, never through pyplot: no global
# state, no GUI backend is ever selected, and drawing works in threads and on headless machines.

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codegen_eval.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
OUTCOME_COLORS = {  # in the order outcomes are listed
    "passed": "#2e9e5b",
    "partial": "#a8dbb9",  # n > 1: some samples passed
    "failed": "#d9534f",
    "error": "#f0a030",
    "timeout": "#7e57c2",
    "memory_limit": "#8d6e63",
    "output_limit": "#26a69a",
    "process_limit": "#546e7a",
    "killed": "#37474f",
    "generation_error": "#b0b0b0",
}
OUTCOME_ORDER = tuple(OUTCOME_COLORS)
RUN_COLORS = ("#3366cc", "#dc7633", "#2e9e5b", "#a23b72", "#7f8c8d", "#c0a020", "#17a2b8", "#8e44ad")
INK = "#2b2f36"
MUTED = "#6b7280"
GRID = "#e5e7eb"
SINGLE_COLOR, MULTI_COLOR = "#9db7e0", "#2f5fb3"  # single- and multi-turn bars


def _new_figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("plots need matplotlib: pip install 'codegen-eval[report]'") from None
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9ca3af")
    ax.tick_params(colors=INK, labelsize=9)
    ax.yaxis.label.set_color(INK)
    ax.xaxis.label.set_color(INK)
    ax.set_axisbelow(True)


@dataclass(frozen=True, slots=True)
class Point:
    """A value with its 95% CI, all as fractions."""

    value: float
    lo: float
    hi: float


def pass_at_k_plot(series: Sequence[tuple[str, Sequence[tuple[int, Point]]]], title: str) -> bytes:
    """pass@k against k, one line per run with its bootstrap CI as a band; bars when every run has only k = 1."""
    only_k1 = all(len(points) == 1 for _, points in series)
    fig = _new_figure(7.2, 3.6 if not only_k1 else max(1.6, 0.55 * len(series) + 1.0))
    ax = fig.add_subplot()
    _style(ax)
    if only_k1:
        values = [100 * pts[0][1].value for _, pts in series]
        lo = [100 * (pts[0][1].value - pts[0][1].lo) for _, pts in series]
        hi = [100 * (pts[0][1].hi - pts[0][1].value) for _, pts in series]
        y = list(range(len(series)))[::-1]
        colors = [RUN_COLORS[i % len(RUN_COLORS)] for i in range(len(series))]
        ax.barh(y, values, xerr=[lo, hi], color=colors, height=0.55, error_kw={"ecolor": INK, "capsize": 3, "lw": 1})
        ax.set_yticks(y, [label for label, _ in series])
        ax.set_xlim(0, 100)
        ax.set_xlabel("pass@1 (%), 95% bootstrap CI")
        ax.grid(axis="x", color=GRID)
        for yi, v, up in zip(y, values, hi, strict=True):
            if v + up > 88:  # no room right of the error bar: write inside the bar
                ax.text(v - up - 1.5, yi, f"{v:.1f}", va="center", ha="right", fontsize=9, color="white")
            else:
                ax.text(v + up + 1.5, yi, f"{v:.1f}", va="center", fontsize=9, color=INK)
    else:
        for i, (label, points) in enumerate(series):
            color = RUN_COLORS[i % len(RUN_COLORS)]
            ks = [k for k, _ in points]
            ax.plot(ks, [100 * p.value for _, p in points], marker="o", ms=4, lw=1.8, color=color, label=label)
            ax.fill_between(
                ks, [100 * p.lo for _, p in points], [100 * p.hi for _, p in points], color=color, alpha=0.15, lw=0
            )
        all_ks = sorted({k for _, points in series for k, _ in points})
        if all_ks[-1] >= 10:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(all_ks, [str(k) for k in all_ks])
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (%)")
        ax.set_ylim(0, 100)
        ax.grid(color=GRID)
        ax.legend(frameon=False, fontsize=9, loc="lower right")
    ax.set_title(title, fontsize=11, color=INK, loc="left")
    return _png(fig)


def single_multi_bars(ax: Any, labels: Sequence[str], single: Sequence[Point], multi: Sequence[Point]) -> None:
    """Grouped bars on `ax`, single- vs multi-turn pass rate per label with 95% CIs, multi − single on top."""
    x = list(range(len(labels)))
    width = 0.38
    error_kw = {"ecolor": "#4b5563", "capsize": 2, "lw": 0.8}
    for offset, points, color, label in (
        (-width / 2, single, SINGLE_COLOR, "single-turn"),
        (width / 2, multi, MULTI_COLOR, "multi-turn"),
    ):
        values = [100 * p.value for p in points]
        err = [[100 * (p.value - p.lo) for p in points], [100 * (p.hi - p.value) for p in points]]
        ax.bar([xi + offset for xi in x], values, width, yerr=err, color=color, label=label, error_kw=error_kw)
    for xi, sp, mp in zip(x, single, multi, strict=True):
        top = 100 * max(sp.hi, mp.hi)
        ax.text(xi, min(top + 3, 103), f"{100 * (mp.value - sp.value):+.1f}", ha="center", fontsize=8, color=MUTED)
    ax.set_xticks(x, labels, fontsize=9)
    ax.set_ylim(0, 110)
    ax.set_yticks([0, 20, 40, 60, 80, 100])
    ax.grid(axis="y", color=GRID)


def category_plot(
    categories: Sequence[tuple[str, int]],
    single: Sequence[Point],
    multi: Sequence[Point],
    title: str,
) -> bytes:
    """Grouped bars per MTPB category: single-turn vs multi-turn pass rate with CIs, the difference on top."""
    fig = _new_figure(7.6, 3.8)
    ax = fig.add_subplot()
    _style(ax)
    single_multi_bars(ax, [f"{name}\n({count})" for name, count in categories], single, multi)
    ax.set_ylabel("pass rate (%)")
    # Above the axes, under the title: inside them it covered the bars of the first categories.
    ax.legend(frameon=False, fontsize=9, ncols=2, loc="lower left", bbox_to_anchor=(0, 1.0))
    ax.set_title(title, fontsize=11, color=INK, loc="left", pad=22)
    return _png(fig)


def outcome_breakdown_plot(rows: Sequence[tuple[str, Mapping[str, int]]], title: str) -> bytes:
    """One 100% stacked bar per run: the share of judged samples with each outcome."""
    present = [o for o in OUTCOME_ORDER if any(counts.get(o, 0) for _, counts in rows)]
    present += sorted({o for _, counts in rows for o in counts} - set(present))
    fig = _new_figure(7.2, max(1.5, 0.5 * len(rows) + 1.1))
    ax = fig.add_subplot()
    _style(ax)
    y = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    totals = [max(1, sum(counts.values())) for _, counts in rows]
    count_style: dict[str, Any] = {"ha": "center", "va": "center", "fontsize": 8, "color": "white"}
    for outcome in present:
        shares = [100 * counts.get(outcome, 0) / t for (_, counts), t in zip(rows, totals, strict=True)]
        ax.barh(y, shares, left=left, height=0.6, color=OUTCOME_COLORS.get(outcome, "#999999"), label=outcome)
        for yi, share, start, (_, counts) in zip(y, shares, left, rows, strict=True):
            if share >= 7:
                ax.text(start + share / 2, yi, str(counts.get(outcome, 0)), **count_style)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_yticks(y, [label for label, _ in rows])
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of judged samples (%)")
    ax.legend(frameon=False, fontsize=8, ncols=min(len(present), 5), loc="lower left", bbox_to_anchor=(0, 1.0))
    ax.set_title(title, fontsize=11, color=INK, loc="left", pad=22)
    return _png(fig)
