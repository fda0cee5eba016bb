"""Human-readable renderings of a summary: the terminal table (markdown, JSON, JUnit, HTML come later)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


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
                *[_pct(pak.get(k)) for k in ks],
                _pct(block.get("pass_rate")),
                f"[{_pct(lo)}, {_pct(hi)}]",
            ]
        )
        for sub, sblock in block.get("subsets", {}).items():
            spak = sblock.get("pass_at_k", {})
            slo, shi = sblock.get("pass_rate_ci95", [None, None])
            rows.append(
                [
                    f"  {name} ({sub}, {sblock.get('groups', 0)} problems)",
                    *[_pct(spak.get(k)) for k in ks],
                    _pct(sblock.get("pass_rate")),
                    f"[{_pct(slo)}, {_pct(shi)}]",
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
            "by category (pass rate %): " + ", ".join(f"{c} {_pct(b.get('pass_rate'))}" for c, b in cats.items())
        )
    return "\n".join(lines)
