"""Renderings of comparisons, the JUnit file and the multi-run report, on real run directories."""

from __future__ import annotations

import base64
import json
import re
import struct
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from codegen_eval.compare import compare_runs, gate, load_run
from codegen_eval.config import RunConfig
from codegen_eval.errors import UsageError
from codegen_eval.report import (
    build_report,
    compare_json,
    compare_markdown,
    compare_text,
    junit_xml,
    report_html,
    report_json,
    report_markdown,
    viewer,
)
from codegen_eval.report.model import with_baselines
from tests.conftest import run_cli
from tests.runfactory import StandardRuns, execute, standard_runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> StandardRuns:
    return standard_runs(tmp_path_factory.mktemp("standard-runs"), data_dir)


def test_the_fixture_runs_have_the_verdicts_the_broken_bodies_produce(runs: StandardRuns) -> None:
    ref = json.loads((runs.ref / "summary.json").read_text())
    broken = json.loads((runs.broken / "summary.json").read_text())
    assert ref["outcomes"] == {"passed": 20}
    assert broken["outcomes"] == {"error": 2, "failed": 4, "passed": 13, "timeout": 1}
    assert broken["scorers"]["pass"]["pass_at_k"]["pass@1"] == pytest.approx(0.65)


def test_compare_text(runs: StandardRuns) -> None:
    c = compare_runs(load_run(runs.ref), load_run(runs.broken))
    text = compare_text(c)
    assert text.splitlines()[0].startswith("A: ref  (humaneval")
    assert "paired: 20 problems (20 items) present in both; 0 item(s) only in A, 0 only in B" in text
    assert "test: McNemar exact test" in text
    row = next(line for line in text.splitlines() if line.startswith("pass "))
    assert row.split()[:4] == ["pass", "pass@1", "100.00", "[100.00,"]
    assert "-35.00" in row and "0.0156" in row  # 7 regressions, none fixed: p = 2/128
    assert "flipped: 7 item(s) (7 regressed, 0 improved)" in text
    assert re.search(r"HumanEval/7\s+regressed\s+passed\s+->\s+timeout", text)
    assert re.search(r"HumanEval/5\s+regressed\s+passed\s+->\s+error \(ValueError\)", text)
    assert "model: 'replay:" in text  # the config difference


def test_compare_json_and_markdown(runs: StandardRuns) -> None:
    c = compare_runs(load_run(runs.n5a), load_run(runs.n5b))
    data = json.loads(compare_json(c))
    metrics = data["scorers"]["pass"]["metrics"]
    assert set(metrics) == {"pass@1", "pass@5"}
    for m in metrics.values():
        assert m["delta"] == pytest.approx(m["b"] - m["a"])
        assert m["delta_ci95"][0] <= m["delta"] <= m["delta_ci95"][1]
        assert m["test"]["name"].startswith("sign-flip")  # n = 5: not McNemar
    assert data["paired"] == {"items": 30, "groups": 30, "only_a": 0, "only_b": 0}
    assert {f["direction"] for f in data["flips"]} == {"improved"}
    md = compare_markdown(c)
    assert "| scorer | metric | A (95% CI) | B (95% CI) | Δ pp | Δ 95% CI | p | A better | B better |" in md
    assert "<details><summary>Flipped:" in md
    assert "| `HumanEval/0` | improved | 2/5 passed (failed 2, error 1) | 4/5 passed (failed 1) |" in md


def test_compare_by_category_for_mtpb(runs: StandardRuns) -> None:
    c = compare_runs(load_run(runs.mtpb_single), load_run(runs.mtpb_multi))
    assert [s.scorer for s in c.scorers] == ["pass", "reference", "strict"]
    cats = [cd.category for cd in c.scorers[0].by_category]
    assert cats == ["algorithm", "array", "class", "data science", "dict", "math", "string"]
    assert sum(cd.delta.groups for cd in c.scorers[0].by_category) == 11  # MTPB_PROBLEMS
    assert [d.key for d in c.config_diff] == ["model", "turns"]  # two replay files
    # Every item broken in the multi-turn samples is broken in the single-turn ones: multi is never worse.
    assert c.flips and all(f.direction == "improved" for f in c.flips)
    assert all(cd.delta.delta >= 0 for cd in c.scorers[0].by_category)
    overall = c.scorers[0].metrics[0]
    assert overall.delta > 0 and overall.test.name == "sign-flip-exact" and overall.test.a_better == 0
    text = compare_text(c)
    assert "by category: pass rate (%), scorer strict" in text


def _gate_for(runs: StandardRuns, run: Path, baseline: Path) -> tuple[str, ET.Element]:
    r, b = load_run(run), load_run(baseline)
    result = gate(r, b)
    xml = junit_xml(r, result, b)
    return xml, ET.fromstring(xml)


def test_junit_xml_has_one_case_per_problem_with_its_outcome(runs: StandardRuns) -> None:
    xml, root = _gate_for(runs, runs.broken, runs.ref)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["codegen-eval.gate", "humaneval"]
    gate_suite, suite = suites
    assert gate_suite.get("failures") == "1"
    gate_failure = gate_suite.find("testcase/failure")
    assert gate_failure is not None and gate_failure.get("type") == "regression"
    assert (gate_failure.text or "").startswith("REGRESSION")
    cases = suite.findall("testcase")
    assert len(cases) == 20 == int(suite.get("tests", "0"))
    by_name = {c.get("name"): c for c in cases}
    assert by_name["HumanEval/0"].find("failure") is not None
    assert by_name["HumanEval/0"].find("failure").get("type") == "failed"  # type: ignore[union-attr]
    assert by_name["HumanEval/5"].find("error").get("type") == "error"  # type: ignore[union-attr]
    assert by_name["HumanEval/7"].find("error").get("type") == "timeout"  # type: ignore[union-attr]
    assert by_name["HumanEval/1"].find("failure") is None and by_name["HumanEval/1"].find("error") is None
    assert "baseline: passed (regression)" in (by_name["HumanEval/0"].findtext("system-out") or "")
    assert (suite.get("failures"), suite.get("errors")) == ("4", "3")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("21", "5", "3")
    # Schema order inside a testcase: failure/error before system-out; attributes the schema requires.
    for case in cases:
        assert case.get("classname") == "humaneval" and case.get("time") is not None
        tags = [child.tag for child in case]
        assert tags in ([], ["system-out"], ["failure", "system-out"], ["error", "system-out"])
        float(case.get("time", ""))
    for s in suites:
        for attr in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname"):
            assert s.get(attr) is not None, attr


def test_junit_for_a_passing_gate_has_no_gate_failure(runs: StandardRuns) -> None:
    _, root = _gate_for(runs, runs.ref, runs.ref)
    gate_suite = root.find("testsuite")
    assert gate_suite is not None and gate_suite.get("failures") == "0"
    assert root.get("failures") == "0" and root.get("errors") == "0"


def test_junit_from_a_bare_summary_uses_pass_counts(runs: StandardRuns) -> None:
    run = load_run(runs.broken / "summary.json")
    assert run.executions is None
    xml = junit_xml(run, gate(run, load_run(runs.ref)))
    cases = ET.fromstring(xml).findall("testsuite")[1].findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 7 and all(c.find("failure").get("type") == "failed" for c in failed)  # type: ignore[union-attr]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _viewer_data(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>', page, re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def test_html_report_is_self_contained_with_decodable_plots(runs: StandardRuns) -> None:
    model = build_report([load_run(p) for p in (runs.ref, runs.broken, runs.mtpb_single, runs.mtpb_multi)])
    page = report_html(model)
    assert page.startswith("<!DOCTYPE html>")
    # One executable script, allowed by its hash and nothing else; the data is inert JSON.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp is not None and "default-src 'none'" in csp.group(1)
    assert f"script-src '{viewer.script_hash()}'" in csp.group(1) and "unsafe-inline'; script" in csp.group(1)
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts == [' type="application/json" id="viewer-colors"', ' type="application/json" id="viewer-data"', ""]
    assert f"<script>{viewer.SCRIPT}</script>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', page)
    # Per benchmark: scores and outcome breakdown; MTPB also single vs multi by category. The grids are HTML.
    assert [alt for _, alt in images] == [
        "humaneval: pass@1 by run",
        "humaneval outcome breakdown",
        "mtpb: pass@1 by run",
        "Single- vs multi-turn pass rate by category",
        "mtpb outcome breakdown",
        "mtpb difficulty split",  # the runs hold a single/multi pair: the paper's analysis (report/analyses.py)
    ]
    for data, _alt in images:
        width, height = _png_size(base64.b64decode(data))
        assert width > 100 and height > 50
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings == [
        "Runs",
        "Models × benchmarks",
        "humaneval",
        "humaneval · Scores",
        "humaneval · Comparison: broken vs ref",
        "humaneval · Outcomes",
        "humaneval · Per-problem outcomes",
        "mtpb",
        "mtpb · Scores",
        "mtpb · By category",
        "mtpb · Single- vs multi-turn: pair/single vs pair/multi",
        "mtpb · Outcomes",
        "mtpb · Per-problem outcomes",
        "Analyses",
        "mtpb · Difficulty split (2 runs)",
        "Samples",
    ]
    # Grid cells name their problem on hover and open its samples; flips link both runs' samples.
    assert '<a class="gcell o-failed" href="#problem=1/HumanEval%2F0" title="HumanEval/0: failed"></a>' in page
    assert '<a class="gcell o-timeout" href="#problem=1/HumanEval%2F7" title="HumanEval/7: timeout"></a>' in page
    assert 'href="#problem=3/mtpb%2F1%2F0"' in page
    assert '<a class="mono" href="#pair=0/1/HumanEval%2F5">HumanEval/5</a>' in page
    # Every wide table scrolls inside its card.
    assert page.count("<table>") == page.count('<div class="scroll"><table>')
    assert "different problems" not in page


def test_the_viewer_data_has_every_sample_with_its_prompt_completion_verdict_and_test(runs: StandardRuns) -> None:
    from codegen_eval.config import from_mapping
    from codegen_eval.rundir import RunDir
    from codegen_eval.runner import build_benchmark

    loaded = [load_run(p) for p in (runs.broken, runs.n5a, runs.mtpb_multi)]
    data = _viewer_data(report_html(build_report(loaded)))
    strings, outcomes = data["strings"], data["outcomes"]
    assert len(strings) == len(set(strings))  # each text once
    broken, n5a, multi = data["runs"]
    assert [r["label"] for r in data["runs"]] == ["broken", "n5a", "pair/multi"]
    assert all(r["notes"] == [] for r in data["runs"])
    assert len(broken["samples"]) == 20 and len(n5a["samples"]) == 150 and len(multi["samples"]) == 55
    assert n5a["counts"][n5a["items"].index("HumanEval/0")] == [5, 2]
    # broken, HumanEval/5: the prompt, the crashing body raw and postprocessed, its verdict, stderr and the test.
    row = next(s for s in broken["samples"] if broken["items"][s[0]] == "HumanEval/5")
    item, index, outcome, detail, stderr, raws, texts, prompts, mode, error, exit_text = row
    assert (index, outcomes[outcome], strings[detail], data["modes"][mode]) == (0, "error", "ValueError", "completion")
    assert strings[texts[0]] == strings[raws[0]] == "    raise ValueError('broken on purpose')\n"
    assert strings[prompts[0]].startswith("from typing import List\n\n\ndef intersperse(")
    assert strings[stderr].rstrip().endswith("ValueError: broken on purpose")
    assert strings[error] == "" and exit_text > 0
    test = strings[broken["tests"][item]]
    assert "def check(candidate):" in test and test.rstrip().splitlines()[-2] == "check(intersperse)"
    assert broken["harness"] == -1  # HumanEval's tests share no harness
    # A HumanEval prompt is stored once for all runs and samples of its problem.
    assert n5a["samples"][0][7] == n5a["samples"][1][7] and isinstance(n5a["samples"][0][7][0], int)
    # MTPB multi-turn: decoding the prompts gives exactly what the benchmark renders at each turn.
    meta = RunDir(runs.mtpb_multi).read_meta()
    bench = build_benchmark(from_mapping(meta.config or {}, "run.json"))
    problems = {p.id: p for p in bench.load()}
    samples = {(s.problem_id, s.index): s for s in RunDir(runs.mtpb_multi).samples()}
    for row in multi["samples"]:
        sample = samples[(multi["items"][row[0]], row[1])]
        prompt = ""
        for turn, entry in enumerate(row[7]):
            if isinstance(entry, int):
                prompt = strings[entry]
            else:
                prompt = prompt + strings[row[6][turn - 1]] + strings[entry[0]]
            assert prompt == bench.render(problems[sample.problem_id], turn, sample.turns[:turn])
        assert len(row[7]) == len(sample.turns) > 1 and any(isinstance(e, list) for e in row[7])
    # MTPB's checker is the harness every test shares; a test is the call with this item's gold.
    assert "def run_checked" in strings[multi["harness"]]
    tail = strings[multi["tests"][multi["items"].index("mtpb/3/1")]]
    assert tail.startswith("run_checked(«the code under test», '3720', ")


def test_html_report_without_samples_has_no_script(runs: StandardRuns) -> None:
    page = report_html(build_report([load_run(runs.ref), load_run(runs.broken)]), samples=False)
    assert "<script" not in page and "script-src" not in page
    assert "<h2>Samples</h2>" not in page
    assert '<span class="gcell o-failed" title="HumanEval/0: failed"></span>' in page  # hover, no link


def test_html_report_without_a_turn_pair_has_no_category_plot(runs: StandardRuns) -> None:
    page = report_html(build_report([load_run(runs.n5a), load_run(runs.n5b)]))
    assert "Single- vs multi-turn" not in page and "By category" not in page
    assert "pass@k versus k" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 2  # curve, breakdown
    assert 'title="HumanEval/0: 2/5 passed (failed 2, error 1)"' in page


def test_the_baseline_is_the_one_chosen(runs: StandardRuns) -> None:
    loaded = [load_run(p) for p in (runs.ref, runs.broken, runs.slight, runs.mtpb_single, runs.mtpb_multi)]
    default = build_report(loaded)
    assert [(c.a.label, c.b.label) for c in default.comparisons] == [
        ("ref", "broken"),
        ("ref", "slight"),
        ("pair/single", "pair/multi"),
    ]
    chosen = build_report(loaded, [1, 4])
    assert chosen.baselines == {"humaneval": 1, "mtpb": 4}
    assert [(c.a.label, c.b.label) for c in chosen.comparisons] == [
        ("broken", "ref"),
        ("broken", "slight"),
        ("pair/multi", "pair/single"),
    ]
    assert [(p.single, p.multi) for p in chosen.turn_pairs] == [(3, 4)]  # the turn pair stays single vs multi
    page = report_html(chosen, samples=False)
    assert "humaneval · Comparison: ref vs broken" in page and "humaneval · Comparison: slight vs broken" in page
    assert "mtpb · Comparison: pair/single vs pair/multi" in page  # B = pair/single against the multi baseline
    with pytest.raises(UsageError, match="two baselines for humaneval"):
        build_report(loaded, [0, 1])
    # A baseline given that is not among the runs joins them, first.
    runs_, chosen_ = with_baselines(loaded[1:3], [loaded[0]])
    assert [r.label for r in runs_] == ["ref", "broken", "slight"] and chosen_ == [0]
    runs_, chosen_ = with_baselines(loaded, [load_run(runs.slight)])
    assert len(runs_) == 5 and chosen_ == [2]


def test_report_cli_baseline_and_no_samples(runs: StandardRuns, tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    r = run_cli("report", str(runs.ref), str(runs.broken), "--baseline", str(runs.broken), "--format", "markdown")
    assert r.returncode == 0, r.stderr
    assert "- **A**: `broken`" in r.stdout and "- **B**: `ref`" in r.stdout
    r = run_cli("report", str(runs.ref), "--baseline", str(runs.broken), "--no-samples", "-o", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "Comparison: ref vs broken" in page and "<script" not in page


def test_runs_over_different_problems_are_compared_on_the_shared_ones_and_say_so(
    runs: StandardRuns, tmp_path: Path
) -> None:
    # n5a has 30 problems, ref 20; a third run has three problems neither has.
    other = execute(
        RunConfig(bench="humaneval", model="reference", problems="40-42", output_dir=str(tmp_path / "other"))
    )
    model = build_report([load_run(runs.ref), load_run(runs.n5a), load_run(other)])
    c = model.comparisons[0]
    assert (c.paired_groups, c.only_a, c.only_b) == (20, 0, 10)
    assert model.not_compared == ((0, 2, "ref and other have no problems in common"),)
    page = report_html(model, samples=False)
    assert "restricted to the 20 item(s) of the 20 problem(s) both have (0 item(s) only in A and 10 only in B" in page
    assert "These runs cover different problems (items per run: ref: 20, n5a: 30, other: 3)" in page
    assert "humaneval · Not compared" in page and "other with ref: ref and other have no problems in common." in page
    assert "Runs in humaneval cover different numbers of problems" in page
    md = report_markdown(model)
    assert "> not compared: other with ref: ref and other have no problems in common" in md


def test_report_markdown_and_json(runs: StandardRuns) -> None:
    model = build_report([load_run(p) for p in (runs.mtpb_single, runs.mtpb_multi, runs.ref)])
    md = report_markdown(model)
    assert md.startswith("## codegen-eval report (3 runs)")
    assert "### By category (pass rate %, scorer `pass`)" in md
    assert "| category | pair/single | pair/multi |" in md  # only runs that have categories
    # TURNS: the form of a multi-turn benchmark's run; "—" for HumanEval, whose problems have one turn.
    assert "| pair/single | mtpb | " in md and "| single | 1 | 11 | 55 |" in md and "| multi | 1 | 11 | 55 |" in md
    assert re.search(r"\| ref \| humaneval \| replay:\S+ \| — \| 1 \| 20 \| 20 \|", md)
    data = json.loads(report_json(model))
    assert [r["label"] for r in data["runs"]] == ["pair/single", "pair/multi", "ref"]
    assert data["turn_pairs"][0]["single"] == "pair/single" and data["turn_pairs"][0]["multi"] == "pair/multi"
    assert data["runs"][2]["pass_at_k_curve"] == [{"k": 1, "value": 1.0, "ci95": [1.0, 1.0]}]
    assert "per_problem" not in data["runs"][0]["scorers"]["pass"]


def test_duplicate_labels_are_made_unique(runs: StandardRuns) -> None:
    model = build_report([load_run(runs.ref), load_run(runs.ref)])
    assert model.labels == ("ref", "ref (2)")


def test_junit_for_mtpb_has_a_case_per_test_case_classed_by_problem(runs: StandardRuns) -> None:
    run, base = load_run(runs.mtpb_multi), load_run(runs.mtpb_single)
    root = ET.fromstring(junit_xml(run, gate(run, base), base))
    suite = root.findall("testsuite")[1]
    cases = suite.findall("testcase")
    assert len(cases) == 55 and suite.get("name") == "mtpb"
    first = cases[0]
    assert (first.get("classname"), first.get("name")) == ("mtpb/1", "mtpb/1/0")
    kinds = Counter((child.tag, child.get("type")) for case in cases for child in case if child.tag != "system-out")
    summary = json.loads((runs.mtpb_multi / "summary.json").read_text())
    expected = {
        ("failure" if o == "failed" else "error", o): k for o, k in summary["outcomes"].items() if o != "passed"
    }
    assert kinds == expected and sum(expected.values()) > 0
