"""Renderings of comparisons, the JUnit file and the multi-run report, on real run directories."""

from __future__ import annotations

import base64
import json
import re
import struct
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from codegen_eval.compare import compare_runs, gate, load_run
from codegen_eval.report import (
    build_report,
    compare_json,
    compare_markdown,
    compare_text,
    junit_xml,
    report_html,
    report_json,
    report_markdown,
)
from tests.runfactory import StandardRuns, standard_runs


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


def test_html_report_is_self_contained_with_decodable_plots(runs: StandardRuns) -> None:
    model = build_report([load_run(p) for p in (runs.ref, runs.broken, runs.mtpb_single, runs.mtpb_multi)])
    page = report_html(model)
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', page)
    # pass@1 by run, single vs multi by category, outcome breakdown, one outcome grid per run
    assert len(images) == 7
    for data, _alt in images:
        width, height = _png_size(base64.b64decode(data))
        assert width > 100 and height > 50
    assert "Single- vs multi-turn: pair/single vs pair/multi" in page
    assert "Comparison: broken vs ref" in page
    assert "By category" in page


def test_html_report_without_a_turn_pair_has_no_category_plot(runs: StandardRuns) -> None:
    page = report_html(build_report([load_run(runs.n5a), load_run(runs.n5b)]))
    assert "Single- vs multi-turn" not in page and "By category" not in page
    assert "pass@k versus k" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 4  # curve, breakdown, two grids


def test_report_markdown_and_json(runs: StandardRuns) -> None:
    model = build_report([load_run(p) for p in (runs.mtpb_single, runs.mtpb_multi, runs.ref)])
    md = report_markdown(model)
    assert md.startswith("## codegen-eval report (3 runs)")
    assert "### By category (pass rate %, scorer `pass`)" in md
    assert "| category | pair/single | pair/multi |" in md  # only runs that have categories
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
