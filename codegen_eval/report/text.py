"""Terminal renderings: one run's summary table, and the comparison of two runs."""

from __future__ import annotations

from codegen_eval.report.tables import (
    CATEGORY_HEADER,
    METRIC_HEADER,
    category_rows,
    describe_run,
    flip_side,
    metric_rows,
    pct,
    text_table,
)
from codegen_eval.summaries import PRIMARY, Comparison, RunSummary, ScoreBlock


def summary_table(summary: RunSummary) -> str:
    """A compact plain-text table: one row per scorer, columns pass@k and pass rate (in %) with the pass rate's
    95% CI; then outcomes, MTPB categories, and the run's time and throughput."""
    ks = [f"pass@{k}" for k in summary.k or ()]
    lines = [
        f"{summary.bench} · {summary.model} · n={summary.n} · "
        f"{summary.problems} problems · {summary.samples_judged} samples judged",
    ]

    def row(label: str, block: ScoreBlock) -> list[str]:
        pak = block.pass_at_k or {}
        lo, hi = block.pass_rate_ci95 or (None, None)
        return [label, *[_pc(pak.get(k)) for k in ks], _pc(block.pass_rate), f"[{_pc(lo)}, {_pc(hi)}]"]

    rows = []
    for name, block in summary.scorers.items():
        rows.append(row(name, block))
        rows += [row(f"  {name} ({sub}, {b.groups or 0} problems)", b) for sub, b in (block.subsets or {}).items()]
    lines += text_table(["scorer", *ks, "pass rate", "pass rate 95% CI"], rows, right=range(1, len(ks) + 2))
    if summary.outcomes:
        lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in summary.outcomes.items()))
    cats = (summary.scorers.get(PRIMARY) or ScoreBlock()).by_category
    if cats:
        lines.append("by category (pass rate): " + ", ".join(f"{c} {_pc(b.pass_rate)}" for c, b in cats.items()))
    timing = time_line(summary)
    if timing:
        lines.append(timing)
    return "\n".join(lines)


def _pc(x: float | None) -> str:
    return "-" if x is None else f"{pct(x)}%"


def time_line(summary: RunSummary) -> str:
    """`time: 12.3 s (generate 10.1 s, execute 2.2 s) · 13.3 samples/s · 5,120 tokens, 507 tokens/s`; empty
    when the summary has no timing (an older one)."""
    if summary.wall_s is None:
        return ""
    stages = [
        f"{name} {duration(s)}" for name, s in (("generate", summary.generate_s), ("execute", summary.execute_s)) if s
    ]
    parts = [f"time: {duration(summary.wall_s)}" + (f" ({', '.join(stages)})" if len(stages) > 1 else "")]
    if summary.samples_per_s is not None:
        parts.append(f"{summary.samples_per_s:,.1f} samples/s")
    if summary.completion_tokens:
        rate = f", {summary.tokens_per_s:,.0f} tokens/s" if summary.tokens_per_s else ""
        parts.append(f"{summary.completion_tokens:,} tokens{rate}")
    return " · ".join(parts)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def compare_text(c: Comparison, max_flips: int = 20) -> str:
    lines = [f"A: {describe_run(c.a)}", f"B: {describe_run(c.b)}"]
    if c.config_diff:
        lines += ["config differences (A -> B):", *(f"  {d.key}: {d.a!r} -> {d.b!r}" for d in c.config_diff)]
    else:
        lines.append("config differences: none")
    lines.append(
        f"paired: {c.paired_groups} problems ({c.paired_items} items) present in both; "
        f"{c.only_a} item(s) only in A, {c.only_b} only in B"
    )
    lines += [f"test: {c.test_rule}; Δ = B − A, CI: paired bootstrap over problems (95%)", ""]
    lines += text_table(METRIC_HEADER, metric_rows(c), right=(4, 6, 7, 8))
    for s in c.scorers:
        if s.by_category:
            lines += ["", f"by category: pass rate (%), scorer {s.scorer}"]
            lines += text_table(CATEGORY_HEADER, category_rows(s), right=(1, 2, 3, 4, 6))
    regressed = sum(1 for f in c.flips if f.direction == "regressed")
    lines += ["", f"flipped: {len(c.flips)} item(s) ({regressed} regressed, {len(c.flips) - regressed} improved)"]
    rows = [[f.item, f.direction, flip_side(f.a), "->", flip_side(f.b)] for f in c.flips[:max_flips]]
    if rows:
        lines += ["  " + line for line in text_table(["item", "", "A", "", "B"], rows)[2:]]
    if len(c.flips) > max_flips:
        lines.append(f"  … {len(c.flips) - max_flips} more (--format json lists all)")
    lines += [f"note: {note}" for note in c.notes]
    return "\n".join(lines)
