"""Renderings of summaries and comparisons: terminal tables, markdown, JSON, JUnit XML, and the static HTML report."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import platform
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codegen_eval import __version__
from codegen_eval.compare import (
    DELTA_RESAMPLES,
    MCNEMAR,
    SIGN_FLIP_RULE,
    TEST_DESCRIPTIONS,
    Comparison,
    CurvePoint,
    Flip,
    GateResult,
    LoadedRun,
    MetricDelta,
    RunInfo,
    compare_runs,
    pass_at_k_curve,
    turn_pairs,
)
from codegen_eval.metrics import PRIMARY


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def _p(p: float) -> str:
    return f"{p:.1e}" if p < 1e-4 else f"{p:.4f}"


def _ci(ci: Sequence[float] | None) -> str:
    if not ci or len(ci) != 2:
        return ""
    return f"[{_pct(ci[0])}, {_pct(ci[1])}]"


def _dci(ci: Sequence[float]) -> str:
    return f"[{_pp(ci[0])}, {_pp(ci[1])}]"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: Sequence[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    return [
        "| " + " | ".join(_md_cell(h) for h in header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows),
    ]


# --------------------------------------------------------------------------------------------------------
# One run


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


# --------------------------------------------------------------------------------------------------------
# Comparison of two runs


def _side(flip: Flip, which: str) -> str:
    n, c = flip.a if which == "a" else flip.b
    outcomes = flip.a_outcomes if which == "a" else flip.b_outcomes
    detail = flip.a_detail if which == "a" else flip.b_detail
    if not outcomes:
        return f"{c}/{n} passed"
    if n == 1:
        name = outcomes[0][0]
        return f"{name} ({detail})" if detail and name != "passed" else name
    rest = ", ".join(f"{o} {k}" for o, k in outcomes if o != "passed")
    return f"{c}/{n} passed" + (f" ({rest})" if rest else "")


def _metric_rows(c: Comparison) -> list[list[str]]:
    rows = []
    for s in c.scorers:
        for m in s.metrics:
            rows.append(
                [
                    s.scorer,
                    m.metric,
                    f"{_pct(m.a)} {_ci(m.a_ci95)}",
                    f"{_pct(m.b)} {_ci(m.b_ci95)}",
                    _pp(m.delta),
                    _dci(m.delta_ci95),
                    _p(m.test.p_value),
                    str(m.test.a_better),
                    str(m.test.b_better),
                ]
            )
    return rows


_METRIC_HEADER = ["scorer", "metric", "A (95% CI)", "B (95% CI)", "Δ pp", "Δ 95% CI", "p", "A better", "B better"]


def _category_rows(c: Comparison, scorer: str) -> list[list[str]]:
    s = c.scorer(scorer)
    if s is None:
        return []
    return [
        [
            cd.category,
            str(cd.delta.groups),
            _pct(cd.delta.a),
            _pct(cd.delta.b),
            _pp(cd.delta.delta),
            _dci(cd.delta.delta_ci95),
            _p(cd.delta.test.p_value),
        ]
        for cd in s.by_category
    ]


_CATEGORY_HEADER = ["category", "problems", "A", "B", "Δ pp", "Δ 95% CI", "p"]


def _describe(info: RunInfo) -> str:
    turns = f" · turns {info.turns}" if info.turns else ""
    return f"{info.label}  ({info.bench} · {info.model} · n={info.n}{turns} · {info.items} items)"


def compare_text(c: Comparison, max_flips: int = 20) -> str:
    lines = [f"A: {_describe(c.a)}", f"B: {_describe(c.b)}"]
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
    lines += _text_table(_METRIC_HEADER, _metric_rows(c), right=(4, 6, 7, 8))
    for s in c.scorers:
        if s.by_category:
            lines.append("")
            lines.append(f"by category: pass rate (%), scorer {s.scorer}")
            lines += _text_table(_CATEGORY_HEADER, _category_rows(c, s.scorer), right=(1, 2, 3, 4, 6))
    lines.append("")
    regressed = sum(1 for f in c.flips if f.direction == "regressed")
    lines.append(f"flipped: {len(c.flips)} item(s) ({regressed} regressed, {len(c.flips) - regressed} improved)")
    rows = [[f.item, f.direction, _side(f, "a"), "->", _side(f, "b")] for f in c.flips[:max_flips]]
    if rows:
        lines += ["  " + line for line in _text_table(["item", "", "A", "", "B"], rows)[2:]]
    if len(c.flips) > max_flips:
        lines.append(f"  … {len(c.flips) - max_flips} more (--format json lists all)")
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


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
    lines.append("")
    lines += _md_table(_METRIC_HEADER, _metric_rows(c), right=(2, 3, 4, 6, 7, 8))
    for s in c.scorers:
        if s.by_category:
            lines += ["", f"**By category** (pass rate %, scorer `{s.scorer}`)", ""]
            lines += _md_table(_CATEGORY_HEADER, _category_rows(c, s.scorer), right=(1, 2, 3, 4, 6))
    if c.flips:
        regressed = sum(1 for f in c.flips if f.direction == "regressed")
        lines += [
            "",
            f"<details><summary>Flipped: {len(c.flips)} item(s), {regressed} regressed, "
            f"{len(c.flips) - regressed} improved</summary>",
            "",
        ]
        rows = [[f"`{f.item}`", f.direction, _side(f, "a"), _side(f, "b")] for f in c.flips[:max_flips]]
        lines += _md_table(["item", "change", "A", "B"], rows)
        if len(c.flips) > max_flips:
            lines.append(f"\n… and {len(c.flips) - max_flips} more.")
        lines += ["", "</details>"]
    for note in c.notes:
        lines.append(f"\n> note: {note}")
    return "\n".join(lines) + "\n"


def compare_json(c: Comparison) -> str:
    return json.dumps(c.to_json(), indent=2) + "\n"


# --------------------------------------------------------------------------------------------------------
# JUnit XML for the CI gate


def junit_xml(run: LoadedRun, result: GateResult, baseline: LoadedRun | None = None) -> str:
    """JUnit XML: a `gate` suite with the regression check, and one test case per problem item of the run.

    An item is a failure when none of its samples passed under the gate's scorer (with n = 1: it did not pass).
    The outcome names the failure type; `failed` is a <failure>, any other outcome (error, timeout, …) an <error>,
    so CI systems count wrong answers and crashes separately. The baseline's status of the item goes to system-out.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    host = platform.node() or "localhost"
    root = ET.Element("testsuites", name="codegen-eval")

    gate_suite = ET.SubElement(
        root,
        "testsuite",
        name="codegen-eval.gate",
        tests="1",
        failures=str(int(result.failed)),
        errors="0",
        skipped="0",
        time="0",
        timestamp=stamp,
        hostname=host,
    )
    case = ET.SubElement(
        gate_suite,
        "testcase",
        classname="codegen-eval.gate",
        name=f"{result.metric} ({result.scorer}) vs baseline, max drop {100 * result.max_drop:.2f} pp",
        time="0",
    )
    if result.failed:
        failure = ET.SubElement(case, "failure", message=result.explanation[:200], type="regression")
        failure.text = result.explanation
    ET.SubElement(case, "system-out").text = result.explanation

    counts = run.counts[result.scorer]
    suite = ET.SubElement(root, "testsuite", name=run.bench, timestamp=stamp, hostname=host)
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("model", run.model),
        ("n", str(run.n)),
        ("scorer", result.scorer),
        ("config_hash", str(run.summary.get("config_hash", ""))),
        ("run", str(run.path)),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    failures = errors = 0
    total_time = 0.0
    base_counts = baseline.counts.get(result.scorer) if baseline is not None else None
    for item, (n, c) in counts.items():
        group = run.groups[item][0]
        records = run.executions.get(item, ()) if run.executions is not None else ()
        seconds = sum(r.duration_s for r in records)
        total_time += seconds
        classname = run.bench if group == item else group
        tc = ET.SubElement(suite, "testcase", classname=classname, name=item, time=f"{seconds:.3f}")
        outcomes = Counter(r.outcome.value for r in records)
        if c == 0:
            # The most common outcome among the samples; without executions.jsonl all we know is "failed".
            outcome = outcomes.most_common(1)[0][0] if outcomes else "failed"
            detail = next((r.detail for r in records if r.outcome.value == outcome and r.detail), "")
            tail = next((r.stderr_tail for r in records if r.outcome.value == outcome and r.stderr_tail), "")
            message = f"{outcome}: {detail}" if detail else outcome
            if n > 1:
                message += f" (0/{n} samples passed)"
            tag = "failure" if outcome == "failed" else "error"
            failures += tag == "failure"
            errors += tag == "error"
            el = ET.SubElement(tc, tag, message=message, type=outcome)
            el.text = tail or message
        out = []
        if n > 1 or c < n:
            out.append(
                f"{c}/{n} samples passed"
                + (": " + ", ".join(f"{o} {k}" for o, k in outcomes.items()) if outcomes else "")
            )
        if base_counts is not None:
            if item in base_counts:
                bn, bc = base_counts[item]
                status = "passed" if bc == bn else "failed" if bc == 0 else f"{bc}/{bn} passed"
                change = ""
                if bc > 0 and c == 0:
                    change = " (regression)"
                elif bc == 0 and c > 0:
                    change = " (fixed)"
                out.append(f"baseline: {status}{change}")
            else:
                out.append("baseline: not present")
        if out:
            ET.SubElement(tc, "system-out").text = "\n".join(out)
    suite.set("tests", str(len(counts)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", f"{total_time:.3f}")
    root.set("tests", str(len(counts) + 1))
    root.set("failures", str(failures + int(result.failed)))
    root.set("errors", str(errors))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------------------------------------
# The multi-run report (HTML, markdown, JSON)


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


def _score_columns(model: ReportModel) -> list[str]:
    ks = sorted({k for r in model.runs for k in r.ks})
    return [f"pass@{k}" for k in ks]


def _score_rows(model: ReportModel) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(run label, scorer or scorer+subset, score block) rows."""
    rows = []
    for label, run in zip(model.labels, model.runs, strict=True):
        for scorer, block in dict(run.summary.get("scorers", {})).items():
            rows.append((label, scorer, block))
            for sub, sblock in dict(block.get("subsets", {})).items():
                rows.append((label, f"{scorer} · {sub} ({sblock.get('groups', 0)} problems)", sblock))
    return rows


def _all_outcomes(model: ReportModel) -> list[str]:
    from codegen_eval.plots import OUTCOME_ORDER

    seen = {o for r in model.runs for o in r.outcomes()}
    return [o for o in OUTCOME_ORDER if o in seen] + sorted(seen - set(OUTCOME_ORDER))


def _category_block(run: LoadedRun, category: str) -> Mapping[str, Any] | None:
    block: Mapping[str, Any] | None = (
        dict(dict(run.summary["scorers"]).get(PRIMARY, {})).get("by_category", {}).get(category)
    )
    return block


def _runs_with_categories(model: ReportModel) -> list[int]:
    return [i for i, r in enumerate(model.runs) if dict(dict(r.summary["scorers"]).get(PRIMARY, {})).get("by_category")]


def _categories(model: ReportModel) -> list[str]:
    return sorted(
        {c for r in model.runs for c in dict(dict(r.summary["scorers"]).get(PRIMARY, {})).get("by_category", {})}
    )


def report_json(model: ReportModel) -> str:
    runs = []
    for label, run, curve in zip(model.labels, model.runs, model.curves, strict=True):
        scorers = {
            name: {k: v for k, v in dict(block).items() if k != "per_problem"}
            for name, block in dict(run.summary.get("scorers", {})).items()
        }
        runs.append(
            {
                "label": label,
                "path": str(run.path),
                "bench": run.bench,
                "model": run.model,
                "turns": run.turns,
                "n": run.n,
                "k": list(run.ks),
                "status": run.meta.get("status", ""),
                "config_hash": run.summary.get("config_hash", ""),
                "problems": run.summary.get("problems"),
                "items": len(run.counts[PRIMARY]),
                "outcomes": dict(run.outcomes()),
                "scorers": scorers,
                "pass_at_k_curve": [{"k": p.k, "value": p.value, "ci95": list(p.ci95)} for p in curve],
            }
        )
    data = {
        "generated_at": model.generated_at,
        "codegen_eval_version": __version__,
        "runs": runs,
        "comparisons": [c.to_json() for c in model.comparisons],
        "turn_pairs": [
            {"single": model.labels[p.single], "multi": model.labels[p.multi], "comparison": p.comparison.to_json()}
            for p in model.turn_pairs
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def _run_rows(model: ReportModel) -> list[list[str]]:
    return [
        [
            label,
            r.bench,
            r.model,
            r.turns or "-",
            str(r.n),
            str(r.summary.get("problems", "")),
            str(len(r.counts[PRIMARY])),
            str(r.meta.get("status", "-")) or "-",
            str(r.summary.get("config_hash", ""))[:8],
        ]
        for label, r in zip(model.labels, model.runs, strict=True)
    ]


_RUN_HEADER = ["run", "benchmark", "model", "turns", "n", "problems", "items", "status", "config"]


def report_markdown(model: ReportModel) -> str:
    cols = _score_columns(model)
    lines = [f"## codegen-eval report ({len(model.runs)} run{'s' if len(model.runs) != 1 else ''})", ""]
    lines += _md_table(_RUN_HEADER, _run_rows(model), right=(4, 5, 6))
    lines += ["", "### Scores (%, 95% bootstrap CI)", ""]
    rows = []
    for label, scorer, block in _score_rows(model):
        pak, pak_ci = dict(block.get("pass_at_k", {})), dict(block.get("pass_at_k_ci95", {}))
        rows.append(
            [
                label,
                scorer,
                *[f"{_pct(pak[c])} {_ci(pak_ci.get(c))}" if c in pak else "-" for c in cols],
                f"{_pct(block.get('pass_rate'))} {_ci(block.get('pass_rate_ci95'))}",
            ]
        )
    lines += _md_table(["run", "scorer", *cols, "pass rate"], rows, right=tuple(range(2, len(cols) + 3)))
    cats = _categories(model)
    if cats:
        lines += ["", "### By category (pass rate %, scorer `pass`)", ""]
        crow = []
        with_cats = _runs_with_categories(model)
        for cat in cats:
            row = [cat]
            for i in with_cats:
                cb = _category_block(model.runs[i], cat)
                row.append(f"{_pct(cb['pass_rate'])} {_ci(cb.get('pass_rate_ci95'))}" if cb else "-")
            crow.append(row)
        labels = [model.labels[i] for i in with_cats]
        lines += _md_table(["category", *labels], crow, right=tuple(range(1, len(labels) + 1)))
    outcomes = _all_outcomes(model)
    if outcomes:
        lines += ["", "### Outcomes (judged samples)", ""]
        orow = [
            [label, *[str(r.outcomes().get(o, 0)) for o in outcomes]]
            for label, r in zip(model.labels, model.runs, strict=True)
        ]
        lines += _md_table(["run", *outcomes], orow, right=tuple(range(1, len(outcomes) + 1)))
    for c in model.comparisons:
        lines += ["", compare_markdown(c).rstrip()]
    for p in model.turn_pairs:
        if p.comparison not in model.comparisons:
            lines += ["", "Single- vs multi-turn (A = single, B = multi):", "", compare_markdown(p.comparison).rstrip()]
    return "\n".join(lines) + "\n"


# ----- HTML


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
    return f'{_pct(x)}<span class="ci">{_e(_ci(ci))}</span>'


def _delta_html(m: MetricDelta, alpha: float = 0.05) -> str:
    cls = "up" if m.delta > 0 else "down" if m.delta < 0 else ""
    sig = '<span class="sig">p&lt;0.05</span>' if m.test.p_value < alpha and m.delta != 0 else ""
    return f'<span class="{cls}">{_pp(m.delta)}</span><span class="ci">{_e(_dci(m.delta_ci95))}</span>{sig}'


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
                    _p(m.test.p_value),
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
            [f'<span class="mono">{_e(f.item)}</span>', _e(f.direction), _e(_side(f, "a")), _e(_side(f, "b"))]
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
        + _html_table(_RUN_HEADER, [[_e(c) for c in row] for row in _run_rows(model)], numeric=(4, 5, 6))
        + "</section>"
    )

    cols = _score_columns(model)
    rows = []
    for label, scorer, block in _score_rows(model):
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

    cats = _categories(model)
    if cats:
        crow = []
        with_cats = _runs_with_categories(model)
        for cat in cats:
            row = [_e(cat)]
            for i in with_cats:
                cb = _category_block(model.runs[i], cat)
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

    outcomes = _all_outcomes(model)
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
