"""Number formats and table layouts shared by every report format; rows of a two-run comparison."""

from __future__ import annotations

from collections.abc import Sequence

from codegen_eval.summaries import Comparison, FlipSide, RunInfo, ScorerComparison


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def p_text(p: float) -> str:
    return f"{p:.1e}" if p < 1e-4 else f"{p:.4f}"


def ci_text(ci: Sequence[float] | None) -> str:
    if not ci or len(ci) != 2:
        return ""
    return f"[{pct(ci[0])}, {pct(ci[1])}]"


def delta_ci_text(ci: Sequence[float]) -> str:
    return f"[{pp(ci[0])}, {pp(ci[1])}]"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: Sequence[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    return [
        "| " + " | ".join(md_cell(h) for h in header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows),
    ]


def flip_side(side: FlipSide) -> str:
    if not side.outcomes:
        return f"{side.c}/{side.n} passed"
    if side.n == 1:
        name = next(iter(side.outcomes))
        return f"{name} ({side.detail})" if side.detail and name != "passed" else name
    rest = ", ".join(f"{o} {k}" for o, k in side.outcomes.items() if o != "passed")
    return f"{side.c}/{side.n} passed" + (f" ({rest})" if rest else "")


def metric_rows(c: Comparison) -> list[list[str]]:
    return [
        [
            s.scorer,
            m.metric,
            f"{pct(m.a)} {ci_text(m.a_ci95)}",
            f"{pct(m.b)} {ci_text(m.b_ci95)}",
            pp(m.delta),
            delta_ci_text(m.delta_ci95),
            p_text(m.test.p_value),
            str(m.test.a_better),
            str(m.test.b_better),
        ]
        for s in c.scorers
        for m in s.metrics
    ]


METRIC_HEADER = ["scorer", "metric", "A (95% CI)", "B (95% CI)", "Δ pp", "Δ 95% CI", "p", "A better", "B better"]


def category_rows(s: ScorerComparison) -> list[list[str]]:
    return [
        [
            cd.category,
            str(cd.delta.groups),
            pct(cd.delta.a),
            pct(cd.delta.b),
            pp(cd.delta.delta),
            delta_ci_text(cd.delta.delta_ci95),
            p_text(cd.delta.test.p_value),
        ]
        for cd in s.by_category
    ]


CATEGORY_HEADER = ["category", "problems", "A", "B", "Δ pp", "Δ 95% CI", "p"]


def describe_run(info: RunInfo) -> str:
    turns = f" · turns {info.turns}" if info.turns else ""
    return f"{info.label}  ({info.bench} · {info.model} · n={info.n}{turns} · {info.items} items)"
