"""The self-contained HTML report: per-benchmark tables, PNG plots, clickable outcome grids and the sample viewer."""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Sequence

from codegen_eval import __version__
from codegen_eval.compare import LoadedRun
from codegen_eval.metrics import DELTA_RESAMPLES, MCNEMAR, SIGN_FLIP_RULE, TEST_DESCRIPTIONS
from codegen_eval.plots import OUTCOME_COLORS, Point, category_plot, outcome_breakdown_plot, pass_at_k_plot
from codegen_eval.report.markdown import RUN_HEADER, run_rows
from codegen_eval.report.model import ReportModel, all_outcomes, category_grid, score_rows
from codegen_eval.report.tables import ci_text, delta_ci_text, flip_side, p_text, pct, pp
from codegen_eval.summaries import PRIMARY, Comparison, MetricDelta

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
.scroll { overflow-x:auto; max-width:100%; }
.warn { background:#fff7ed; border:1px solid #fed7aa; color:#9a3412; border-radius:6px; padding:6px 10px;
        font-size:12.5px; }
h2.bench { font-size:19px; margin:30px 0 -4px; padding:0 2px; color:#1f2a44; }
td .sub { display:block; color:var(--muted); font-size:11.5px; }
td.num .sub { white-space:normal; overflow-wrap:anywhere; max-width:30ch; margin-left:auto; }
.model { display:inline-block; min-width:18ch; }
td.wrap, .mono.wrap { overflow-wrap:anywhere; }
.chip { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
footer { color:var(--muted); font-size:12px; max-width:1180px; margin:0 auto; padding:0 32px 30px; }
"""


_GRID_CSS = "".join(f".o-{name} {{ background:{color}; }}\n" for name, color in OUTCOME_COLORS.items())


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _q(item: str) -> str:
    """An item id inside a #fragment (ids hold slashes: HumanEval/3, mtpb/3/0)."""
    return urllib.parse.quote(item, safe="")


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
    # Wide tables scroll inside their card instead of overflowing it.
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _value(x: float | None, ci: Sequence[float] | None) -> str:
    if x is None:
        return "–"
    return f'{pct(x)}<span class="ci">{_e(ci_text(ci))}</span>'


def _signed(x: float, ci: Sequence[float]) -> str:
    """A difference in points, green when up and red when down, with its CI."""
    cls = "up" if x > 0 else "down" if x < 0 else ""
    return f'<span class="{cls}">{pp(x)}</span><span class="ci">{_e(delta_ci_text(ci))}</span>'


def _delta_html(m: MetricDelta) -> str:
    sig = '<span class="sig">p&lt;0.05</span>' if m.test.p_value < 0.05 and m.delta != 0 else ""
    return _signed(m.delta, m.delta_ci95) + sig


def _comparison_html(
    model: ReportModel, c: Comparison, a: int, b: int, linked: Sequence[bool], max_flips: int = 200
) -> str:
    """Run `b` against run `a` (indices into the model); when both are `linked`, each flipped item links to both
    runs' samples in the viewer."""
    a_label, b_label = model.labels[a], model.labels[b]
    parts = [
        f'<p>B <span class="mono">{_e(b_label)}</span> against A <span class="mono">{_e(a_label)}</span> on '
        f"{c.paired_groups} paired problems ({c.paired_items} items; {c.only_a} only in A, {c.only_b} only in B). "
        f"Test: {_e(c.test_rule)}.</p>"
    ]
    if c.only_a or c.only_b:
        parts.append(
            f'<p class="warn">The two runs cover different problems: every number in this comparison is restricted '
            f"to the {c.paired_items} item(s) of the {c.paired_groups} problem(s) both have ({c.only_a} item(s) "
            f"only in A and {c.only_b} only in B are left out), so A and B here need not equal their scores "
            "above.</p>"
        )
    if c.config_diff:
        diffs = "; ".join(
            f'<span class="mono">{_e(d.key)}</span>: {_e(repr(d.a))} → {_e(repr(d.b))}' for d in c.config_diff
        )
        parts.append(f'<p class="note">Config differences: {diffs}</p>')
    rows = [
        [
            _e(s.scorer),
            _e(m.metric),
            _value(m.a, m.a_ci95),
            _value(m.b, m.b_ci95),
            _delta_html(m),
            p_text(m.test.p_value),
            f"{m.test.a_better} / {m.test.b_better}",
        ]
        for s in c.scorers
        for m in s.metrics
    ]
    header = ["scorer", "metric", "A (%)", "B (%)", "Δ B−A (pp)", "p", "A better / B better"]
    parts.append(_html_table(header, rows, numeric=(2, 3, 4, 5, 6)))
    if c.flips:
        regressed = sum(1 for f in c.flips if f.direction == "regressed")
        frows = [
            [
                f'<a class="mono" href="#pair={a}/{b}/{_q(f.item)}">{_e(f.item)}</a>'
                if linked[a] and linked[b]
                else f'<span class="mono">{_e(f.item)}</span>',
                _e(f.direction),
                _e(flip_side(f.a)),
                _e(flip_side(f.b)),
            ]
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
    parts += [f'<p class="note">Note: {_e(note)}</p>' for note in c.notes]
    return "".join(parts)


def _grid_cells(run: LoadedRun) -> list[tuple[str, str, str, str]]:
    """(item, group, outcome, hover text) per item: its outcome when every sample agrees on passing or not;
    "partial" when some samples passed; the most common failure outcome when none did (pass counts only without
    executions)."""
    cells = []
    for item, (n, c) in run.counts[PRIMARY].items():
        outcomes = Counter(r.outcome.value for r in (run.executions or {}).get(item, ()))
        if c == n:
            outcome = "passed"
        elif c > 0:
            outcome = "partial"
        else:
            failing = Counter({o: k for o, k in outcomes.items() if o != "passed"})
            outcome = failing.most_common(1)[0][0] if failing else "failed"
        hover = f"{item}: {outcome}" if n == 1 else f"{item}: {c}/{n} passed"
        if outcomes and n > 1 and c < n:
            hover += " (" + ", ".join(f"{o} {k}" for o, k in outcomes.most_common() if o != "passed") + ")"
        cells.append((item, run.groups[item][0], outcome, hover))
    return cells


def _short(group: str) -> str:
    m = re.search(r"(\d+)$", group)
    return m.group(1) if m else group


def _grid_html(run_index: int, cells: Sequence[tuple[str, str, str, str]], linked: bool) -> str:
    """A column per problem, a cell per item (MTPB: test case) in benchmark order (`_grid_cells`); each cell opens
    its samples."""
    columns: dict[str, list[tuple[str, str, str]]] = {}
    for item, group, outcome, hover in cells:
        columns.setdefault(group, []).append((item, outcome, hover))
    step = 10 if len(columns) > 40 else 5 if len(columns) > 10 else 1
    out = []
    for col, (group, column) in enumerate(columns.items()):
        parts = []
        for item, outcome, hover in column:
            cls = f"gcell o-{re.sub(r'[^a-z_]', '', outcome)}"
            if linked:
                parts.append(f'<a class="{cls}" href="#problem={run_index}/{_q(item)}" title="{_e(hover)}"></a>')
            else:
                parts.append(f'<span class="{cls}" title="{_e(hover)}"></span>')
        label = _e(_short(group)) if col % step == 0 else ""
        out.append(f'<div class="gcol">{"".join(parts)}<span class="glbl">{label}</span></div>')
    return f'<div class="grid">{"".join(out)}</div>'


def _chip(outcome: str) -> str:
    return f'<span class="chip" style="background:{OUTCOME_COLORS.get(outcome, "#999")}"></span>{_e(outcome)}'


def _legend(outcomes: Sequence[str]) -> str:
    return '<p class="legend">' + "".join(f"<span>{_chip(o)}</span>" for o in outcomes) + "</p>"


def _score(run: LoadedRun) -> tuple[float | None, Sequence[float] | None]:
    """The run's headline number: pass@1 of the primary scorer (the pass rate when pass@1 is not recorded)."""
    block = run.summary.scorers.get(PRIMARY)
    if block is None:
        return None, None
    pak = block.pass_at_k or {}
    if "pass@1" in pak:
        return pak["pass@1"], (block.pass_at_k_ci95 or {}).get("pass@1")
    return block.pass_rate, block.pass_rate_ci95


def _column(model: ReportModel, i: int) -> str:
    """A leaderboard column: the benchmark, and for a run of a multi-turn benchmark its form."""
    turns = model.turns[i]
    return model.runs[i].bench + (f" ({turns}-turn)" if turns in ("single", "multi") else "")


def _leaderboard(model: ReportModel) -> str:
    """Model × benchmark: one row per model, one column per benchmark (and turn form), pass@1 with its CI."""
    columns = list(dict.fromkeys(_column(model, i) for i in range(len(model.runs))))
    rows: dict[str, dict[str, int]] = {}
    for i, run in enumerate(model.runs):
        col = _column(model, i)
        key = run.model or model.labels[i]
        if col in rows.get(key, {}):
            key = f"{key} ({model.labels[i]})"  # a second run of one model on one benchmark: its own row
        rows.setdefault(key, {})[col] = i
    items = {
        col: {len(model.runs[i].counts[PRIMARY]) for r in rows.values() for c, i in r.items() if c == col}
        for col in columns
    }
    body = []
    for key, cells in rows.items():
        row = [f'<span class="mono wrap model">{_e(key)}</span>']
        for col in columns:
            if col not in cells:
                row.append("–")
                continue
            i = cells[col]
            run = model.runs[i]
            groups = len({g for g, _ in run.groups.values()})
            sub = f"{_e(model.labels[i])} · {groups} problem{'s' if groups != 1 else ''} · n={run.n}"
            row.append(f'{_value(*_score(run))}<span class="sub">{sub}</span>')
        body.append(row)
    mixed = [col for col in columns if len(items[col]) > 1]
    warn = (
        f"Runs in {', '.join(mixed)} cover different numbers of problems: a column's scores are over different "
        "problems there; the paired comparisons in the benchmark's section use the shared problems only."
    )
    return (
        "<section><h2>Models × benchmarks</h2>"
        + _html_table(["model", *[f"{_e(c)} (%)" for c in columns]], body, numeric=tuple(range(1, len(columns) + 1)))
        + '<p class="note">pass@1 (scorer pass) with its 95% bootstrap CI; one column per benchmark, never a mean '
        "over benchmarks.</p>" + (f'<p class="warn">{_e(warn)}</p>' if mixed else "") + "</section>"
    )


def _problem_sets_note(model: ReportModel, idx: Sequence[int]) -> str:
    sets = {frozenset(model.runs[i].counts[PRIMARY]) for i in idx}
    if len(sets) <= 1:
        return ""
    sizes = ", ".join(f"{model.labels[i]}: {len(model.runs[i].counts[PRIMARY])}" for i in idx)
    return (
        f'<p class="warn">These runs cover different problems (items per run: {_e(sizes)}): their scores are each '
        "over the run's own problems; the paired comparisons below are restricted to the problems both runs "
        "have.</p>"
    )


def _bench_sections(model: ReportModel, bench: str, linked: Sequence[bool]) -> list[str]:
    idx = model.runs_of(bench)
    sections: list[str] = [f'<h2 class="bench" id="bench-{_e(bench)}">{_e(bench)}</h2>']
    cols = [f"pass@{k}" for k in sorted({k for i in idx for k in model.runs[i].ks})]
    rows = []
    for i, name, sb in score_rows(model, idx):
        pak, pak_ci = sb.pass_at_k or {}, sb.pass_at_k_ci95 or {}
        baseline = model.baselines.get(bench) == i and len(idx) > 1 and name == PRIMARY
        rows.append(
            [
                _e(model.labels[i]) + (' <span class="sig">baseline</span>' if baseline else ""),
                _e(name),
                *[_value(pak[c], pak_ci.get(c)) if c in pak else "–" for c in cols],
                _value(sb.pass_rate, sb.pass_rate_ci95),
            ]
        )
    series = [(model.labels[i], [(p.k, Point(p.value, p.ci95[0], p.ci95[1])) for p in model.curves[i]]) for i in idx]
    only_k1 = all(len(model.curves[i]) == 1 for i in idx)
    title = f"{bench}: pass@1 by run" if only_k1 else f"{bench}: pass@k versus k"
    caption = (
        "pass@1 with 95% bootstrap CIs over problems (n = 1 sample per problem, so pass@k for k > 1 is undefined)."
        if only_k1
        else "Unbiased pass@k for k = 1 … n (log-spaced beyond 12), scorer pass; bands are 95% bootstrap CIs."
    )
    header = ["run", "scorer", *[f"{c} (%)" for c in cols], "pass rate (%)"]
    sections.append(
        f"<section><h2>{_e(bench)} · Scores</h2>"
        + _html_table(header, rows, numeric=tuple(range(2, len(cols) + 3)))
        + '<p class="note">Values in %, 95% bootstrap CIs over problems in grey.</p>'
        + _problem_sets_note(model, idx)
        + _img(pass_at_k_plot(series, title), title, caption)
        + "</section>"
    )

    with_cats, grid = category_grid(model, idx)
    if grid:
        crow = [
            [_e(cat), *[_value(b.pass_rate, b.pass_rate_ci95) if b is not None else "–" for b in blocks]]
            for cat, blocks in grid
        ]
        header = ["category", *[f"{_e(model.labels[i])} (%)" for i in with_cats]]
        sections.append(
            f"<section><h2>{_e(bench)} · By category</h2>"
            + _html_table(header, crow, numeric=tuple(range(1, len(with_cats) + 1)))
            + '<p class="note">Pass rate (scorer pass): per problem the share of passing test cases, then the mean '
            "over problems.</p></section>"
        )

    for p in model.turn_pairs:
        if model.runs[p.single].bench != bench:
            continue
        c = p.comparison
        s = c.scorer(PRIMARY)
        if s is None:
            continue
        deltas = [(cd.category, cd.delta) for cd in s.by_category] + [("all", s.metrics[0])]
        single = [Point(d.a, *d.a_ci95) for _, d in deltas]
        multi = [Point(d.b, *d.b_ci95) for _, d in deltas]
        title = "Single- vs multi-turn pass rate by category"
        sections.append(
            f"<section><h2>{_e(bench)} · Single- vs multi-turn: {_e(model.labels[p.single])} vs "
            f"{_e(model.labels[p.multi])}</h2>"
            + _img(
                category_plot([(name, d.groups) for name, d in deltas], single, multi, title),
                title,
                "Pass rate (scorer pass) on the paired problems with 95% bootstrap CIs; the number above each pair is "
                "multi − single in points; problem counts under the categories.",
            )
            + _comparison_html(model, c, p.single, p.multi, linked)
            + "</section>"
        )

    # A comparison that is also a turn pair's (the same object) is shown once, in the pair's section above.
    in_pairs = {id(p.comparison) for p in model.turn_pairs}
    for c, (a, b) in zip(model.comparisons, model.compared, strict=True):
        if model.runs[a].bench != bench or id(c) in in_pairs:
            continue
        sections.append(
            f"<section><h2>{_e(bench)} · Comparison: {_e(model.labels[b])} vs {_e(model.labels[a])}</h2>"
            + _comparison_html(model, c, a, b, linked)
            + "</section>"
        )
    skipped = [(a, b, why) for a, b, why in model.not_compared if model.runs[a].bench == bench]
    if skipped:
        sections.append(
            f"<section><h2>{_e(bench)} · Not compared</h2>"
            + "".join(f"<p>{_e(model.labels[b])} with {_e(model.labels[a])}: {_e(why)}.</p>" for a, b, why in skipped)
            + "</section>"
        )

    outcomes = [o for o in all_outcomes(model) if any(model.runs[i].outcomes().get(o) for i in idx)]
    if outcomes:
        header = ["run", *[_chip(o) for o in outcomes]]
        orows = [[_e(model.labels[i]), *[str(model.runs[i].outcomes().get(o, 0)) for o in outcomes]] for i in idx]
        breakdown = outcome_breakdown_plot(
            [(model.labels[i], model.runs[i].outcomes()) for i in idx], f"{bench}: outcome breakdown"
        )
        sections.append(
            f"<section><h2>{_e(bench)} · Outcomes</h2>"
            + _img(
                breakdown, f"{bench} outcome breakdown", "Share of judged samples per outcome; counts inside the bars."
            )
            + _html_table(header, orows, numeric=tuple(range(1, len(outcomes) + 1)))
            + "</section>"
        )

    grids = []
    for i in idx:
        r = model.runs[i]
        cells = _grid_cells(r)
        where = "executions.jsonl" if r.executions is not None else "pass counts in summary.json"
        multi_item = len({group for _, group, _, _ in cells}) < len(cells)
        layout = "a column per problem, a row per test case" if multi_item else "a cell per problem"
        partial = "partial = some of the samples passed, other colours the most common failure; " if r.n > 1 else ""
        click = " Hover a cell for its problem" + ("; click it for its samples." if linked[i] else ".")
        present = list(dict.fromkeys(o for _, _, o, _ in cells))
        order = [o for o in all_outcomes(model) if o in present] + [o for o in present if o not in all_outcomes(model)]
        grids.append(
            f"<h3>{_e(model.labels[i])}</h3>"
            + _legend(order)
            + _grid_html(i, cells, linked[i])
            + f'<p class="note">{_e(layout.capitalize())}, in benchmark order (numbers are problem ids); {_e(partial)}'
            f"from {_e(where)}.{_e(click)}</p>"
        )
    sections.append(f"<section><h2>{_e(bench)} · Per-problem outcomes</h2>" + "".join(grids) + "</section>")
    return sections


def _notes_html(notes: Sequence[str]) -> str:
    """The analyses' notes; the statistical caveat stands out."""
    return "".join(
        f'<p class="warn">{_e(n)}</p>' if n.startswith("caveat:") else f'<p class="note">{_e(n)}</p>' for n in notes
    )


def _analyses_sections(model: ReportModel) -> list[str]:
    """The paper's analyses the runs allow (report/analyses.py), each a table and its analyses/plots.py PNG."""
    from codegen_eval.analyses.plots import difficulty_plot, scaling_plot, temperature_plot
    from codegen_eval.analyses.scaling import format_parameters

    a = model.analyses
    if not a:
        return []
    out = ['<h2 class="bench" id="analyses">Analyses</h2>']
    for sw in a.sweeps:
        ks = list(sw.summary.best)
        rows = []
        for r in sw.summary.rows:
            cells = []
            for k in ks:
                if k not in r.pass_at_k:
                    cells.append("–")
                    continue
                best = ' <span class="sig">best</span>' if sw.summary.best[k][0] == r.temperature else ""
                cells.append(_value(r.pass_at_k[k], r.ci95.get(k)) + best)
            rows.append([f"{r.temperature:g}", *cells, f'<span class="mono">{_e(r.run)}</span>'])
        best = ", ".join(f"{k} {pct(v)}% (T={t:g})" for k, (t, v) in sw.summary.best.items())
        header = ["temperature", *[f"{_e(k)} (%)" for k in ks], "run"]
        out.append(
            f'<section id="analysis-temperatures"><h2>Best of temperatures: <span class="mono">{_e(sw.sweep)}</span>'
            "</h2>"
            + _html_table(header, rows, numeric=tuple(range(len(ks) + 1)))
            + f"<p>Best of temperatures (the paper's protocol: for each k, the best temperature): {_e(best)}.</p>"
            + _notes_html(sw.notes)
            + _img(
                temperature_plot(sw.summary),
                "pass@k by temperature",
                "pass@k (scorer pass) per sampling temperature with 95% bootstrap CIs; the ringed point of each k is "
                "its best temperature (ties: the lowest).",
            )
            + "</section>"
        )
    pair_header = ["bucket", "groups", "single-turn (%)", "multi-turn (%)", "multi − single (pp)"]
    for d in a.difficulty:
        brows = [[_e(b.name), str(len(b.groups)), f"{pct(b.lo)}–{pct(b.hi)}"] for b in d.buckets]
        parts = [
            f'<section id="analysis-difficulty"><h2>{_e(d.bench)} · Difficulty split ({len(d.runs)} runs)</h2>',
            f'<p class="note">Buckets: {_e(d.rule)}.</p>',
            _html_table(["bucket", "groups", "mean pass rate of its groups (%)"], brows, numeric=(1, 2)),
        ]
        for pair in d.pairs:
            prows = [
                [
                    _e(b.bucket),
                    str(b.groups),
                    _value(b.single, b.single_ci95),
                    _value(b.multi, b.multi_ci95),
                    _signed(b.gain, b.gain_ci95),
                ]
                for b in pair.buckets
            ]
            parts += [f"<h3>{_e(pair.title)}</h3>", _html_table(pair_header, prows, numeric=(1, 2, 3, 4))]
        parts.append(_notes_html(d.notes))
        parts.append(
            _img(
                difficulty_plot(d),
                f"{d.bench} difficulty split",
                "Pass rate per difficulty bucket with 95% bootstrap CIs over problem groups; the number above each "
                "pair is multi − single in points. The paper's finding: the multi-turn gain concentrates on medium "
                "and hard problems.",
            )
        )
        out.append("".join(parts) + "</section>")
    if a.scaling is not None:
        srows = [
            [
                f'<span class="mono wrap">{_e(p.model)}</span>',
                _e(format_parameters(p.parameters)),
                _e(p.benchmark),
                _e(p.metric),
                _value(p.value, p.ci95),
                f'<span class="mono">{_e(p.run)}</span>',
            ]
            for p in a.scaling.points
        ]
        out.append(
            '<section id="analysis-scaling"><h2>Scaling: pass rate against model size</h2>'
            + _html_table(["model", "parameters", "benchmark", "metric", "value (%)", "run"], srows, numeric=(1, 4))
            + _notes_html(a.scaling.notes)
            + _img(
                scaling_plot(a.scaling),
                "pass rate against model size",
                "Pass rate (scorer pass) against the parameter count in each run's provenance, 95% bootstrap CIs; "
                "runs of unknown size are in the table only.",
            )
            + "</section>"
        )
    if a.notes:
        out.append("<section><h2>Analyses not shown</h2>" + _notes_html(a.notes) + "</section>")
    return out


def report_html(model: ReportModel, samples: bool = True) -> str:
    """One self-contained page: inline CSS, plots as PNG data URIs, the samples as inline JSON read by one inline
    script that the CSP allows by its hash; nothing else may load (no network)."""
    from codegen_eval.report import viewer

    linked = [samples and model.runs[i].path.is_dir() for i in range(len(model.runs))]

    sections = [
        "<section><h2>Runs</h2>"
        + _html_table(RUN_HEADER, [[_e(c) for c in row] for row in run_rows(model)], numeric=(4, 5, 6))
        + '<p class="note">turns: — for a benchmark whose problems have one turn each.</p>'
        + "</section>",
        _leaderboard(model),
    ]
    for bench in model.benches:
        sections += _bench_sections(model, bench, linked)
    sections += _analyses_sections(model)
    if samples:
        sections.append('<section id="samples"><h2>Samples</h2>' + viewer.MARKUP + "</section>")

    footer = (
        "pass@k: the unbiased estimator of Chen et al. (2021), averaged over the items of a problem and then over "
        "problems. CIs: percentile bootstrap over problems (1,000 resamples for a run's scores, "
        f"{DELTA_RESAMPLES:,} for a paired difference). Tests: {TEST_DESCRIPTIONS[MCNEMAR]} when every problem has "
        f"one item and one sample in both runs; otherwise a two-sided {SIGN_FLIP_RULE}."
    )
    title = "codegen-eval report"
    script_src = f" script-src '{viewer.script_hash()}';" if samples else ""
    scripts = ""
    if samples:
        from codegen_eval.report.samples import viewer_json

        colors = json.dumps(OUTCOME_COLORS).replace("<", "\\u003c")
        scripts = (
            f'<script type="application/json" id="viewer-colors">{colors}</script>'
            f'<script type="application/json" id="viewer-data">{viewer_json(model.runs, model.labels)}</script>'
            f"<script>{viewer.SCRIPT}</script>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        f"style-src 'unsafe-inline';{script_src}\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}{viewer.CSS}{_GRID_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{len(model.runs)} run{'s' if len(model.runs) != 1 else ''} · "
        f"{_e(', '.join(model.benches))} · generated {_e(model.generated_at)} · "
        f"codegen-eval {_e(__version__)}</p></header><main>"
        + "".join(sections)
        + f"</main><footer>{_e(footer)}</footer>{scripts}</body></html>\n"
    )
