"""Markdown renderings: the comparison of two runs (a PR comment) and the multi-run report."""

from __future__ import annotations

from codegen_eval.report.model import ReportModel, all_outcomes, category_grid, score_rows
from codegen_eval.report.tables import (
    CATEGORY_HEADER,
    METRIC_HEADER,
    category_rows,
    ci_text,
    flip_side,
    md_table,
    metric_rows,
    pct,
)
from codegen_eval.summaries import PRIMARY, Comparison


def compare_markdown(c: Comparison, max_flips: int = 50) -> str:
    lines = [
        f"### codegen-eval compare · {c.bench}",
        "",
        f"- **A**: `{c.a.label}` ({c.a.model}, n={c.a.n}{', turns ' + c.a.turns if c.a.turns else ''})",
        f"- **B**: `{c.b.label}` ({c.b.model}, n={c.b.n}{', turns ' + c.b.turns if c.b.turns else ''})",
        f"- paired: {c.paired_groups} problems ({c.paired_items} items); {c.only_a} only in A, {c.only_b} only in B",
        f"- test: {c.test_rule}; Δ = B − A in percentage points with a paired bootstrap 95% CI",
    ]
    if c.config_diff:
        lines.append("- config differences: " + "; ".join(f"`{d.key}`: `{d.a}` → `{d.b}`" for d in c.config_diff))
    lines += ["", *md_table(METRIC_HEADER, metric_rows(c), right=(2, 3, 4, 6, 7, 8))]
    for s in c.scorers:
        if s.by_category:
            lines += ["", f"**By category** (pass rate %, scorer `{s.scorer}`)", ""]
            lines += md_table(CATEGORY_HEADER, category_rows(s), right=(1, 2, 3, 4, 6))
    if c.flips:
        regressed = sum(1 for f in c.flips if f.direction == "regressed")
        lines += [
            "",
            f"<details><summary>Flipped: {len(c.flips)} item(s), {regressed} regressed, "
            f"{len(c.flips) - regressed} improved</summary>",
            "",
        ]
        rows = [[f"`{f.item}`", f.direction, flip_side(f.a), flip_side(f.b)] for f in c.flips[:max_flips]]
        lines += md_table(["item", "change", "A", "B"], rows)
        if len(c.flips) > max_flips:
            lines.append(f"\n… and {len(c.flips) - max_flips} more.")
        lines += ["", "</details>"]
    lines += [f"\n> note: {note}" for note in c.notes]
    return "\n".join(lines) + "\n"


def run_rows(model: ReportModel) -> list[list[str]]:
    return [
        [
            label,
            r.bench,
            r.model,
            turns,
            str(r.n),
            "" if r.summary.problems is None else str(r.summary.problems),
            str(len(r.counts[PRIMARY])),
            r.meta.status or "-",
            (r.summary.config_hash or "")[:8],
        ]
        for label, r, turns in zip(model.labels, model.runs, model.turns, strict=True)
    ]


RUN_HEADER = ["run", "benchmark", "model", "turns", "n", "problems", "items", "status", "config"]


def report_markdown(model: ReportModel) -> str:
    cols = [f"pass@{k}" for k in sorted({k for r in model.runs for k in r.ks})]
    lines = [f"## codegen-eval report ({len(model.runs)} run{'s' if len(model.runs) != 1 else ''})", ""]
    lines += md_table(RUN_HEADER, run_rows(model), right=(4, 5, 6))
    lines += ["", "### Scores (%, 95% bootstrap CI)", ""]
    rows = []
    for i, scorer, block in score_rows(model, range(len(model.runs))):
        pak, pak_ci = block.pass_at_k or {}, block.pass_at_k_ci95 or {}
        rows.append(
            [
                model.labels[i],
                scorer,
                *[f"{pct(pak[c])} {ci_text(pak_ci.get(c))}" if c in pak else "-" for c in cols],
                f"{pct(block.pass_rate)} {ci_text(block.pass_rate_ci95)}",
            ]
        )
    lines += md_table(["run", "scorer", *cols, "pass rate"], rows, right=tuple(range(2, len(cols) + 3)))
    with_cats, grid = category_grid(model, range(len(model.runs)))
    if grid:
        lines += ["", "### By category (pass rate %, scorer `pass`)", ""]
        crow = [
            [cat, *[f"{pct(b.pass_rate)} {ci_text(b.pass_rate_ci95)}" if b is not None else "-" for b in blocks]]
            for cat, blocks in grid
        ]
        labels = [model.labels[i] for i in with_cats]
        lines += md_table(["category", *labels], crow, right=tuple(range(1, len(labels) + 1)))
    outcomes = all_outcomes(model)
    if outcomes:
        lines += ["", "### Outcomes (judged samples)", ""]
        orow = [
            [label, *[str(r.outcomes().get(o, 0)) for o in outcomes]]
            for label, r in zip(model.labels, model.runs, strict=True)
        ]
        lines += md_table(["run", *outcomes], orow, right=tuple(range(1, len(outcomes) + 1)))
    for c in model.comparisons:
        lines += ["", compare_markdown(c).rstrip()]
    for p in model.turn_pairs:
        if p.comparison not in model.comparisons:
            lines += ["", "Single- vs multi-turn (A = single, B = multi):", "", compare_markdown(p.comparison).rstrip()]
    lines += [f"\n> not compared: {model.labels[b]} with {model.labels[a]}: {why}" for a, b, why in model.not_compared]
    lines += analyses_markdown(model)
    return "\n".join(lines) + "\n"


def analyses_markdown(model: ReportModel) -> list[str]:
    """The paper's analyses the runs allow, each as its own `analyze` command prints it."""
    from codegen_eval.analyses.difficulty import difficulty_markdown
    from codegen_eval.analyses.scaling import scaling_markdown
    from codegen_eval.sweep import sweep_markdown

    a = model.analyses
    if not a:
        return []
    lines = ["", "### Analyses (the CodeGen paper's, docs/analyses.md)"]
    for s in a.sweeps:
        lines += ["", f"#### Best of temperatures: {s.sweep}", "", sweep_markdown(s.summary).rstrip()]
        lines += [f"- {n}" for n in s.notes]
    for d in a.difficulty:
        text = difficulty_markdown(d).rstrip().replace("## Difficulty split", "#### Difficulty split", 1)
        lines += ["", text.replace("\n### ", "\n##### ")]
    if a.scaling is not None:
        lines += ["", "#### Scaling: pass rate against model size", "", scaling_markdown(a.scaling).rstrip()]
    lines += [f"\n> {n}" for n in a.notes]
    return lines
