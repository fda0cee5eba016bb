"""The static, self-contained HTML report: tables, PNG plots and per-problem grids in one file."""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Sequence

from codegen_eval import __version__
from codegen_eval.compare import Comparison, LoadedRun, MetricDelta
from codegen_eval.metrics import DELTA_RESAMPLES, MCNEMAR, PRIMARY, SIGN_FLIP_RULE, TEST_DESCRIPTIONS
from codegen_eval.report.markdown import RUN_HEADER, run_rows
from codegen_eval.report.model import (
    ReportModel,
    all_outcomes,
    categories,
    category_block,
    runs_with_categories,
    score_columns,
    score_rows,
)
from codegen_eval.report.tables import ci_text, delta_ci_text, flip_side, p_text, pct, pp

_CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f6f7f9; --card:#ffffff; --accent:#2f5fb3;
        --good:#1f8a4c; --bad:#c0392b; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Helvetica, Arial, sans-serif; }
header { background:#1f2a44; color:#fff; padding:22px 32px; }
header h1 { margin:0; font-size:22px; font-weight:600; letter-spacing:.2px; }
header p { margin:4px 0 0; color:#c7d2fe; font-size:13px; }
main { max-width:1180px; margin:0 auto; padding:20px 32px 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 22px;
          margin:18px 0; box-shadow:0 1px 2px rgba(0,0,0,.03); }
h2 { font-size:17px; margin:0 0 12px; }
h3 { font-size:14px; margin:18px 0 8px; color:#374151; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; margin:6px 0 4px; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); font-weight:600;
     background:#fafbfc; }
td.num, th.num { text-align:right; white-space:nowrap; }
tbody tr:nth-child(even) { background:#fbfcfd; }
.ci { color:var(--muted); font-size:12px; margin-left:4px; }
.mono { font-family:"DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12.5px; }
.up { color:var(--good); font-weight:600; } .down { color:var(--bad); font-weight:600; }
.sig { display:inline-block; font-size:10.5px; padding:0 5px; border-radius:8px; margin-left:4px;
       background:#eef2ff; color:#3730a3; }
figure { margin:14px 0 6px; } figure img { max-width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:12.5px; margin-top:4px; }
.note { color:var(--muted); font-size:12.5px; }
details { margin-top:8px; } summary { cursor:pointer; color:var(--accent); }
.chip { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
footer { color:var(--muted); font-size:12px; max-width:1180px; margin:0 auto; padding:0 32px 30px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """Cells are HTML already (escape text with _e); `numeric` columns are right-aligned."""
    th = "".join(f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _value(x: float | None, ci: Sequence[float] | None) -> str:
    if x is None:
        return "–"
    return f'{pct(x)}<span class="ci">{_e(ci_text(ci))}</span>'


def _delta_html(m: MetricDelta, alpha: float = 0.05) -> str:
    cls = "up" if m.delta > 0 else "down" if m.delta < 0 else ""
    sig = '<span class="sig">p&lt;0.05</span>' if m.test.p_value < alpha and m.delta != 0 else ""
    return f'<span class="{cls}">{pp(m.delta)}</span><span class="ci">{_e(delta_ci_text(m.delta_ci95))}</span>{sig}'


def _comparison_html(c: Comparison, a_label: str, b_label: str, max_flips: int = 200) -> str:
    parts = [
        f'<p>B <span class="mono">{_e(b_label)}</span> against A <span class="mono">{_e(a_label)}</span> on '
        f"{c.paired_groups} paired problems ({c.paired_items} items; {c.only_a} only in A, {c.only_b} only in B). "
        f"Test: {_e(c.test_rule)}.</p>"
    ]
    if c.config_diff:
        diffs = "; ".join(
            f'<span class="mono">{_e(d.key)}</span>: {_e(repr(d.a))} → {_e(repr(d.b))}' for d in c.config_diff
        )
        parts.append(f'<p class="note">Config differences: {diffs}</p>')
    rows = []
    for s in c.scorers:
        for m in s.metrics:
            rows.append(
                [
                    _e(s.scorer),
                    _e(m.metric),
                    _value(m.a, m.a_ci95),
                    _value(m.b, m.b_ci95),
                    _delta_html(m),
                    p_text(m.test.p_value),
                    f"{m.test.a_better} / {m.test.b_better}",
                ]
            )
    parts.append(
        _html_table(
            ["scorer", "metric", "A (%)", "B (%)", "Δ B−A (pp)", "p", "A better / B better"],
            rows,
            numeric=(2, 3, 4, 5, 6),
        )
    )
    if c.flips:
        regressed = sum(1 for f in c.flips if f.direction == "regressed")
        frows = [
            [f'<span class="mono">{_e(f.item)}</span>', _e(f.direction), _e(flip_side(f, "a")), _e(flip_side(f, "b"))]
            for f in c.flips[:max_flips]
        ]
        more = f'<p class="note">… and {len(c.flips) - max_flips} more.</p>' if len(c.flips) > max_flips else ""
        parts.append(
            f"<details><summary>{len(c.flips)} flipped item(s): {regressed} regressed, "
            f"{len(c.flips) - regressed} improved</summary>"
            + _html_table(["item", "change", "A", "B"], frows)
            + more
            + "</details>"
        )
    else:
        parts.append('<p class="note">No item changed.</p>')
    for note in c.notes:
        parts.append(f'<p class="note">Note: {_e(note)}</p>')
    return "".join(parts)


def _grid_cells(run: LoadedRun) -> list[tuple[str, str, str]]:
    """(item, group, outcome) per item: its outcome when every sample agrees on passing or not; "partial" when
    some samples passed; the most common failure outcome when none did (pass counts only without executions)."""
    cells = []
    for item, (n, c) in run.counts[PRIMARY].items():
        outcomes = run.outcome_counts(item)
        if c == n:
            outcome = "passed"
        elif c > 0:
            outcome = "partial"
        elif outcomes:
            failing = Counter({o: k for o, k in outcomes.items() if o != "passed"})
            outcome = failing.most_common(1)[0][0] if failing else "failed"
        else:
            outcome = "failed"
        cells.append((item, run.groups[item][0], outcome))
    return cells


def report_html(model: ReportModel) -> str:
    """One self-contained page: inline CSS, plots as PNG data URIs, no scripts, no network (enforced by a CSP)."""
    from codegen_eval.plots import (
        OUTCOME_COLORS,
        Point,
        category_plot,
        outcome_breakdown_plot,
        outcome_grid_plot,
        pass_at_k_plot,
    )

    sections: list[str] = []
    sections.append(
        "<section><h2>Runs</h2>"
        + _html_table(RUN_HEADER, [[_e(c) for c in row] for row in run_rows(model)], numeric=(4, 5, 6))
        + "</section>"
    )

    cols = score_columns(model)
    rows = []
    for label, scorer, block in score_rows(model):
        pak, pak_ci = dict(block.get("pass_at_k", {})), dict(block.get("pass_at_k_ci95", {}))
        rows.append(
            [
                _e(label),
                _e(scorer),
                *[_value(pak[c], pak_ci.get(c)) if c in pak else "–" for c in cols],
                _value(block.get("pass_rate"), block.get("pass_rate_ci95")),
            ]
        )
    series = [
        (label, [(p.k, Point(p.value, p.ci95[0], p.ci95[1])) for p in curve])
        for label, curve in zip(model.labels, model.curves, strict=True)
    ]
    only_k1 = all(len(curve) == 1 for curve in model.curves)
    title = "pass@1 by run" if only_k1 else "pass@k versus k"
    caption = (
        "pass@1 with 95% bootstrap CIs over problems (n = 1 sample per problem, so pass@k for k > 1 is undefined)."
        if only_k1
        else "Unbiased pass@k for k = 1 … n (log-spaced beyond 12), scorer pass; bands are 95% bootstrap CIs."
    )
    sections.append(
        "<section><h2>Scores</h2>"
        + _html_table(
            ["run", "scorer", *[f"{c} (%)" for c in cols], "pass rate (%)"],
            rows,
            numeric=tuple(range(2, len(cols) + 3)),
        )
        + '<p class="note">Values in %, 95% bootstrap CIs over problems in grey.</p>'
        + _img(pass_at_k_plot(series, title), title, caption)
        + "</section>"
    )

    cats = categories(model)
    if cats:
        crow = []
        with_cats = runs_with_categories(model)
        for cat in cats:
            row = [_e(cat)]
            for i in with_cats:
                cb = category_block(model.runs[i], cat)
                row.append(_value(cb["pass_rate"], cb.get("pass_rate_ci95")) if cb else "–")
            crow.append(row)
        sections.append(
            "<section><h2>By category</h2>"
            + _html_table(
                ["category", *[f"{_e(model.labels[i])} (%)" for i in with_cats]],
                crow,
                numeric=tuple(range(1, len(with_cats) + 1)),
            )
            + '<p class="note">Pass rate (scorer pass): per problem the share of passing test cases, then the mean '
            "over problems.</p></section>"
        )

    for p in model.turn_pairs:
        c = p.comparison
        s = c.scorer(PRIMARY)
        if s is None:
            continue
        overall = s.metrics[0]
        names = [(cd.category, cd.delta.groups) for cd in s.by_category] + [("all", overall.groups)]
        single = [Point(cd.delta.a, *cd.delta.a_ci95) for cd in s.by_category] + [Point(overall.a, *overall.a_ci95)]
        multi = [Point(cd.delta.b, *cd.delta.b_ci95) for cd in s.by_category] + [Point(overall.b, *overall.b_ci95)]
        title = "Single- vs multi-turn pass rate by category"
        sections.append(
            f"<section><h2>Single- vs multi-turn: {_e(model.labels[p.single])} vs {_e(model.labels[p.multi])}</h2>"
            + _img(
                category_plot(names, single, multi, title),
                title,
                "Pass rate (scorer pass) on the paired problems with 95% bootstrap CIs; the number above each pair is "
                "multi − single in points; problem counts under the categories.",
            )
            + _comparison_html(c, model.labels[p.single], model.labels[p.multi])
            + "</section>"
        )

    index = {id(r): i for i, r in enumerate(model.runs)}
    pair_comparisons = {id(p.comparison) for p in model.turn_pairs}
    for c in model.comparisons:
        if id(c) in pair_comparisons:
            continue
        a_label = next(model.labels[index[id(r)]] for r in model.runs if str(r.path) == c.a.path)
        b_label = next(model.labels[index[id(r)]] for r in model.runs if str(r.path) == c.b.path)
        sections.append(
            f"<section><h2>Comparison: {_e(b_label)} vs {_e(a_label)}</h2>"
            + _comparison_html(c, a_label, b_label)
            + "</section>"
        )

    outcomes = all_outcomes(model)
    if outcomes:
        header = ["run"] + [
            f'<span class="chip" style="background:{OUTCOME_COLORS.get(o, "#999")}"></span>{_e(o)}' for o in outcomes
        ]
        orows = [
            [_e(label), *[str(r.outcomes().get(o, 0)) for o in outcomes]]
            for label, r in zip(model.labels, model.runs, strict=True)
        ]
        breakdown = outcome_breakdown_plot(
            [(label, r.outcomes()) for label, r in zip(model.labels, model.runs, strict=True)], "Outcome breakdown"
        )
        sections.append(
            "<section><h2>Outcomes</h2>"
            + _img(breakdown, "Outcome breakdown", "Share of judged samples per outcome; counts inside the bars.")
            + _html_table(header, orows, numeric=tuple(range(1, len(outcomes) + 1)))
            + "</section>"
        )

    grids = []
    for label, r in zip(model.labels, model.runs, strict=True):
        cells = _grid_cells(r)
        png = outcome_grid_plot(cells)
        where = "executions.jsonl" if r.executions is not None else "pass counts in summary.json"
        multi_item = len({group for _, group, _ in cells}) < len(cells)
        layout = "a column per problem, a row per test case" if multi_item else "a cell per problem"
        partial = "partial = some of the samples passed, other colours the most common failure; " if r.n > 1 else ""
        grids.append(
            f"<h3>{_e(label)}</h3>"
            + _img(
                png,
                f"{label} outcome grid",
                f"{layout.capitalize()}, in benchmark order (numbers are problem ids); {partial}from {where}.",
            )
        )
    sections.append("<section><h2>Per-problem outcomes</h2>" + "".join(grids) + "</section>")

    footer = (
        "pass@k: the unbiased estimator of Chen et al. (2021), averaged over the items of a problem and then over "
        "problems. CIs: percentile bootstrap over problems (1,000 resamples for a run's scores, "
        f"{DELTA_RESAMPLES:,} for a paired difference). Tests: {TEST_DESCRIPTIONS[MCNEMAR]} when every problem has "
        f"one item and one sample in both runs; otherwise a two-sided {SIGN_FLIP_RULE}."
    )
    title = "codegen-eval report"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{len(model.runs)} run{'s' if len(model.runs) != 1 else ''} · "
        f"{_e(', '.join(sorted({r.bench for r in model.runs})))} · generated {_e(model.generated_at)} · "
        f"codegen-eval {_e(__version__)}</p></header><main>"
        + "".join(sections)
        + f"</main><footer>{_e(footer)}</footer></body></html>\n"
    )
