"""compare, check and report through the CLI (`python -m codegen_eval ...`): outputs and exit codes 0/1/2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.runfactory import StandardRuns, humaneval_samples, standard_runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> StandardRuns:
    return standard_runs(tmp_path_factory.mktemp("standard-runs"), data_dir)


def _one_line_error(r: subprocess.CompletedProcess[str], message: str) -> None:
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# -- compare -------------------------------------------------------------------------------------------------------


def test_compare_text_json_markdown(runs: StandardRuns, tmp_path: Path) -> None:
    r = run_cli("compare", str(runs.ref), str(runs.broken))
    assert r.returncode == 0, r.stderr
    assert "McNemar exact test" in r.stdout and "flipped: 7 item(s)" in r.stdout
    r = run_cli("compare", str(runs.ref), str(runs.broken), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["scorers"]["pass"]["metrics"]["pass@1"]["delta"] == pytest.approx(-0.35)
    assert data["scorers"]["pass"]["metrics"]["pass@1"]["test"]["p_value"] == pytest.approx(2 / 128)
    out = tmp_path / "c.md"
    r = run_cli("compare", str(runs.ref), str(runs.broken), "--format", "markdown", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("### codegen-eval compare · humaneval")


def test_compare_a_summary_file_with_a_run_directory(runs: StandardRuns) -> None:
    by_dir = json.loads(run_cli("compare", str(runs.ref), str(runs.broken), "--format", "json").stdout)
    by_file = json.loads(
        run_cli("compare", str(runs.ref / "summary.json"), str(runs.broken), "--format", "json").stdout
    )
    assert by_file["scorers"] == by_dir["scorers"]
    # Without executions.jsonl the flips still show, with pass counts instead of outcomes.
    assert [f["item"] for f in by_file["flips"]] == [f["item"] for f in by_dir["flips"]]
    assert by_file["flips"][0]["a"]["outcomes"] == {}


def test_compare_mtpb_single_vs_multi(runs: StandardRuns) -> None:
    r = run_cli("compare", str(runs.mtpb_single), str(runs.mtpb_multi))
    assert r.returncode == 0, r.stderr
    assert "paired: 11 problems (55 items) present in both" in r.stdout
    assert "turns: 'single' -> 'multi'" in r.stdout
    assert "by category: pass rate (%), scorer reference" in r.stdout


def test_compare_refuses_different_benchmarks(runs: StandardRuns) -> None:
    r = run_cli("compare", str(runs.ref), str(runs.mtpb_multi))
    _one_line_error(r, "cannot compare runs of different benchmarks: ref is humaneval, pair/multi is mtpb")


def test_compare_bad_paths(runs: StandardRuns, tmp_path: Path) -> None:
    _one_line_error(run_cli("compare", str(tmp_path / "nope"), str(runs.ref)), "no such run directory")
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2")
    _one_line_error(run_cli("compare", str(junk), str(runs.ref)), "malformed JSON")


# -- check ---------------------------------------------------------------------------------------------------------


def test_check_exit_0_when_nothing_dropped(runs: StandardRuns) -> None:
    r = run_cli("check", str(runs.ref), "--baseline", str(runs.ref))
    assert r.returncode == 0, r.stderr
    assert (
        r.stdout.startswith("OK: pass@1 (scorer pass) went from 100.00%")
        and "No drop (allowed: 2.00 points)." in r.stdout
    )


def test_check_exit_1_on_a_significant_regression(runs: StandardRuns, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    verdict = tmp_path / "verdict.json"
    r = run_cli("check", str(runs.broken), "--baseline", str(runs.ref), "--junit", str(junit), "--json", str(verdict))
    assert r.returncode == 1, r.stderr
    paragraph = r.stdout.strip()
    assert paragraph.startswith("REGRESSION: pass@1 (scorer pass) went from 100.00% in the baseline (ref)")
    assert "to 65.00% in broken" in paragraph and "p = 0.01562" in paragraph
    assert len(paragraph.splitlines()) == 1  # one paragraph
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "5" and root.get("errors") == "3"
    assert json.loads(verdict.read_text())["failed"] is True


def test_check_baseline_as_summary_json_gives_the_same_verdict(runs: StandardRuns) -> None:
    by_dir = run_cli("check", str(runs.broken), "--baseline", str(runs.ref))
    by_file = run_cli("check", str(runs.broken), "--baseline", str(runs.ref / "summary.json"))
    assert by_file.returncode == by_dir.returncode == 1
    assert by_file.stdout.replace("ref/summary.json", "ref") == by_dir.stdout


def test_check_exit_0_when_the_drop_is_not_significant(runs: StandardRuns) -> None:
    r = run_cli("check", str(runs.slight), "--baseline", str(runs.ref), "--max-drop", "0.02")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK (not significant)") and "-5.00 points" in r.stdout


def test_check_exit_0_when_the_drop_is_within_the_threshold(runs: StandardRuns) -> None:
    r = run_cli("check", str(runs.broken), "--baseline", str(runs.ref), "--max-drop", "0.4")
    assert r.returncode == 0, r.stderr
    assert "That drop is within the allowed 40.00 points." in r.stdout


def test_check_other_metrics_and_scorers(runs: StandardRuns) -> None:
    # n5a against n5b (30 problems, n = 5): pass@5 is lower on 3 problems only (p = 2/8), while the pass rate is
    # lower on 11 (p = 2/2**11).
    r = run_cli("check", str(runs.n5a), "--baseline", str(runs.n5b), "--metric", "pass@5")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK (not significant): pass@5 (scorer pass)") and "p = 0.25)" in r.stdout
    assert "sign-flip permutation test on per-problem scores (exact)" in r.stdout
    r = run_cli("check", str(runs.n5a), "--baseline", str(runs.n5b), "--metric", "pass_rate")
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("REGRESSION: pass_rate (pass@1) (scorer pass)") and "-20.00 points" in r.stdout
    r = run_cli("check", str(runs.mtpb_single), "--baseline", str(runs.mtpb_multi), "--scorer", "strict")
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("REGRESSION: pass@1 (scorer strict)")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "accuracy"], "--metric must be pass@K or pass_rate"),
        (["--metric", "pass@3"], "pass@3 needs at least 3 samples"),
        (["--scorer", "strict"], "has no scorer 'strict'"),
        (["--max-drop", "-1"], "--max-drop is a fraction"),
        (["--alpha", "0"], "--alpha must be in (0, 1)"),
    ],
)
def test_check_bad_input_exit_2(runs: StandardRuns, extra: list[str], message: str) -> None:
    _one_line_error(run_cli("check", str(runs.broken), "--baseline", str(runs.ref), *extra), message)


def test_check_refuses_a_baseline_of_another_benchmark(runs: StandardRuns, tmp_path: Path) -> None:
    r = run_cli("check", str(runs.ref), "--baseline", str(runs.mtpb_multi / "summary.json"))
    _one_line_error(r, "cannot compare runs of different benchmarks")
    r = run_cli("check", str(runs.ref), "--baseline", str(tmp_path / "missing.json"))
    _one_line_error(r, "no such run directory or summary file")
    r = run_cli("check", str(runs.ref))
    assert r.returncode == 2 and "--baseline" in r.stderr


# -- report --------------------------------------------------------------------------------------------------------


def test_report_formats(runs: StandardRuns, tmp_path: Path) -> None:
    r = run_cli("report", str(runs.mtpb_single), str(runs.mtpb_multi), "--format", "markdown")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("## codegen-eval report (2 runs)")
    r = run_cli("report", str(runs.ref), "--format", "json", "-o", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["runs"][0]["label"] == "ref"
    r = run_cli("report", str(runs.ref), str(runs.broken), cwd=tmp_path)  # html, default file name
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Comparison: broken vs ref" in page
    # A bare summary.json: outcome grid from pass counts.
    r = run_cli("report", str(runs.broken / "summary.json"), "-o", str(tmp_path / "s.html"))
    assert r.returncode == 0, r.stderr
    assert "from pass counts in summary.json" in (tmp_path / "s.html").read_text()


def test_compare_and_check_note_a_run_that_did_not_complete(runs: StandardRuns, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(runs.broken, copy)
    meta = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    r = run_cli("compare", str(runs.ref), str(copy))
    assert r.returncode == 0, r.stderr
    assert "note: copy: run status is 'interrupted', not 'completed'" in r.stdout
    r = run_cli("check", str(copy), "--baseline", str(runs.ref))
    assert r.returncode == 1 and "Note: copy: run status is 'interrupted'" in r.stdout


def test_report_bad_input(tmp_path: Path) -> None:
    _one_line_error(run_cli("report", str(tmp_path / "nope")), "no such run directory")
    r = run_cli("report")
    assert r.returncode == 2 and "Missing argument" in r.stderr


def test_list_and_compare_do_not_import_matplotlib_or_torch(runs: StandardRuns) -> None:
    code = (
        "import sys, runpy; sys.argv = ['codegen-eval', 'compare', sys.argv[1], sys.argv[2]]\n"
        "try:\n    runpy.run_module('codegen_eval', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(runs.ref), str(runs.broken)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr


# -- --turns both --------------------------------------------------------------------------------------------------


def test_generate_turns_both_writes_a_single_and_a_multi_run(tmp_path: Path) -> None:
    samples = humaneval_samples(tmp_path / "s.jsonl", 3)
    out = tmp_path / "both"
    r = run_cli(
        "generate", "--model", f"replay:{samples}", "--limit", "3", "--turns", "both",
        "--output-dir", str(out), "--no-progress",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for variant in ("single", "multi"):
        meta = json.loads((out / variant / "run.json").read_text())
        assert meta["config"]["turns"] == variant and meta["status"] == "generated"
        assert meta["config"]["output_dir"] == str(out / variant)
        assert len((out / variant / "samples.jsonl").read_text().splitlines()) == 3
    assert "every selected humaneval problem has one turn" in r.stderr
    assert not (out / "comparison.json").exists()  # nothing executed, nothing to compare


def test_run_turns_both_writes_the_comparison_that_compare_gives(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "both"
    common = ["--bench", "mtpb", "--model", "reference", "--problems", "1-3,9", "--data-dir", str(data_dir)]
    r = run_cli("run", *common, "--turns", "both", "--output-dir", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "single-turn (A) vs multi-turn (B):" in r.stdout
    for variant in ("single", "multi"):
        meta = json.loads((out / variant / "run.json").read_text())
        assert meta["status"] == "completed" and meta["config"]["turns"] == variant
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["a"]["turns"] == "single" and saved["b"]["turns"] == "multi"
    assert saved["paired"] == {"items": 20, "groups": 4, "only_a": 0, "only_b": 0}
    again = run_cli("compare", str(out / "single"), str(out / "multi"), "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == saved
    assert (out / "comparison.md").read_text().startswith("### codegen-eval compare · mtpb")
    # Resuming the pair directory finds both runs complete, redoes nothing and rewrites the same comparison.
    r = run_cli("run", "--resume", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "comparison.json").read_text()) == saved
