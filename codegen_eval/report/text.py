"""Terminal renderings: one run's summary table, and the comparison of two runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codegen_eval.compare import (
    Comparison,
)
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


def summary_table(summary: Mapping[str, Any]) -> str:
    """A compact plain-text table: one row per scorer, columns pass@k and pass rate with 95% CIs."""
    scorers: Mapping[str, Any] = summary.get("scorers", {})
    ks = [f"pass@{k}" for k in summary.get("k", [])]
    lines = [
        f"{summary.get('bench')} · {summary.get('model')} · n={summary.get('n')} · "
        f"{summary.get('problems')} problems · {summary.get('samples_judged')} samples judged",
    ]
    header = ["scorer", *ks, "pass rate", "95% CI"]
    rows = [header]
    for name, block in scorers.items():
        pak = block.get("pass_at_k", {})
        lo, hi = block.get("pass_rate_ci95", [None, None])
        rows.append(
            [
                name,
                *[pct(pak.get(k)) for k in ks],
                pct(block.get("pass_rate")),
                f"[{pct(lo)}, {pct(hi)}]",
            ]
        )
        for sub, sblock in block.get("subsets", {}).items():
            spak = sblock.get("pass_at_k", {})
            slo, shi = sblock.get("pass_rate_ci95", [None, None])
            rows.append(
                [
                    f"  {name} ({sub}, {sblock.get('groups', 0)} problems)",
                    *[pct(spak.get(k)) for k in ks],
                    pct(sblock.get("pass_rate")),
                    f"[{pct(slo)}, {pct(shi)}]",
                ]
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, r in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    outcomes = summary.get("outcomes", {})
    if outcomes:
        lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    primary = scorers.get("pass", {})
    cats = primary.get("by_category")
    if cats:
        lines.append(
            "by category (pass rate %): " + ", ".join(f"{c} {pct(b.get('pass_rate'))}" for c, b in cats.items())
        )
    return "\n".join(lines)


def compare_text(c: Comparison, max_flips: int = 20) -> str:
    lines = [f"A: {describe_run(c.a)}", f"B: {describe_run(c.b)}"]
    if c.config_diff:
        lines.append("config differences (A -> B):")
        lines += [f"  {d.key}: {d.a!r} -> {d.b!r}" for d in c.config_diff]
    else:
        lines.append("config differences: none")
    lines.append(
        f"paired: {c.paired_groups} problems ({c.paired_items} items) present in both; "
        f"{c.only_a} item(s) only in A, {c.only_b} only in B"
    )
    lines.append(f"test: {c.test_rule}; Δ = B − A, CI: paired bootstrap over problems (95%)")
    lines.append("")
    lines += text_table(METRIC_HEADER, metric_rows(c), right=(4, 6, 7, 8))
    for s in c.scorers:
        if s.by_category:
            lines.append("")
            lines.append(f"by category: pass rate (%), scorer {s.scorer}")
            lines += text_table(CATEGORY_HEADER, category_rows(c, s.scorer), right=(1, 2, 3, 4, 6))
    lines.append("")
    regressed = sum(1 for f in c.flips if f.direction == "regressed")
    lines.append(f"flipped: {len(c.flips)} item(s) ({regressed} regressed, {len(c.flips) - regressed} improved)")
    rows = [[f.item, f.direction, flip_side(f, "a"), "->", flip_side(f, "b")] for f in c.flips[:max_flips]]
    if rows:
        lines += ["  " + line for line in text_table(["item", "", "A", "", "B"], rows)[2:]]
    if len(c.flips) > max_flips:
        lines.append(f"  … {len(c.flips) - max_flips} more (--format json lists all)")
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
