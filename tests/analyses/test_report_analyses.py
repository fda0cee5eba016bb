"""The paper's analyses inside `report` (codegen_eval/report/analyses.py): shown when the runs allow them, with the
values, tables and plots of the analyses modules, in HTML, markdown and JSON. Runs are real: a temperature sweep of
the tiny hf model and a bigger copy of it (HumanEval), and replayed MTPB runs in the `run --turns both` layout."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from codegen_eval.analyses.difficulty import difficulty_markdown, difficulty_split
from codegen_eval.analyses.plots import difficulty_plot, scaling_plot, temperature_plot
from codegen_eval.analyses.scaling import scaling, scaling_markdown
from codegen_eval.compare import load_run
from codegen_eval.report import build_report, report_html, report_json, report_markdown
from codegen_eval.report.analyses import expand_sweeps
from codegen_eval.sweep import summarize_scores
from tests.analyses.test_scaling import _bigger_model
from tests.conftest import run_cli
from tests.runfactory import mtpb_breaker, mtpb_run, mtpb_samples

HE_ARGS = ("--problems", "1-2", "-n", "2", "-k", "1,2", "--max-new-tokens", "12", "--no-progress")


@pytest.fixture(scope="module")
def hf_runs(tmp_path_factory: pytest.TempPathFactory, tiny_codegen: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report-hf")
    big = _bigger_model(tiny_codegen, base / "big-model")
    sweep = base / "sweep"
    r = run_cli(
        "run", "--model", f"hf:{tiny_codegen}", "--temperature", "0.2,0.8", *HE_ARGS, "--output-dir", str(sweep)
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("run", "--model", f"hf:{big}", *HE_ARGS, "--output-dir", str(base / "big-he"))
    assert r.returncode == 0, r.stderr
    return {"sweep": sweep, "big-he": base / "big-he"}


@pytest.fixture(scope="module")
def mtpb_runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report-mtpb")
    out = {}
    for name, thresholds in {"a": (3, 6), "b": (5, 9)}.items():
        for turns, threshold in zip(("single", "multi"), thresholds, strict=True):
            samples = mtpb_samples(
                base / f"{name}-{turns}.jsonl", data_dir, turns, base / "work" / name / turns, mtpb_breaker(threshold)
            )
            out[f"{name}/{turns}"] = mtpb_run(base / name / turns, samples, data_dir, turns)
    return out


def _pngs(page: str) -> list[tuple[str, bytes]]:
    """(alt, PNG bytes) of every inline image."""
    return [
        (alt, base64.b64decode(data))
        for data, alt in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">', page)
    ]


def _section(page: str, section_id: str) -> str:
    start = page.index(f'<section id="{section_id}">')
    return page[start : page.index("</section>", start)]


def test_a_sweep_directory_stands_for_its_runs(hf_runs: dict[str, Path]) -> None:
    sweep = hf_runs["sweep"]
    assert expand_sweeps([sweep, hf_runs["big-he"]]) == [sweep / "t0.2", sweep / "t0.8", hf_runs["big-he"]]
    done = run_cli("report", str(sweep), str(hf_runs["big-he"]), "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [r["label"] for r in data["runs"]] == ["t0.2", "t0.8", "big-he"]
    (best,) = data["analyses"]["best_of_temperatures"]
    recorded = json.loads((sweep / "sweep.json").read_text())  # what `run --temperature` itself summarized
    assert best["sweep"] == str(sweep.resolve()) and best["report_runs"] == ["t0.2", "t0.8"]
    assert best["temperatures"] == recorded["temperatures"] and best["best"] == recorded["best"]
    assert best["runs"] == recorded["runs"]
    assert any(n.startswith("caveat: 2 problem(s) per temperature") for n in best["notes"])


def test_best_of_temperatures_and_scaling_in_every_format(hf_runs: dict[str, Path]) -> None:
    sweep = hf_runs["sweep"]
    runs = [load_run(p) for p in expand_sweeps([sweep, hf_runs["big-he"]])]
    model = build_report(runs)
    a = model.analyses
    assert not a.difficulty and not a.notes
    (sw,) = a.sweeps
    expected = summarize_scores(
        [(float(r.config["temperature"]), r.path.name, r.summary.scorers["pass"]) for r in runs[:2]]
    )
    assert sw.summary == expected
    assert a.scaling is not None and a.scaling == scaling(runs)
    sizes = {p.parameters for p in a.scaling.points}
    assert len(sizes) == 2 and None not in sizes
    assert any(n.startswith("caveat: runs of fewer than 20 problem groups") for n in a.scaling.notes)

    md = report_markdown(model)
    assert "#### Best of temperatures" in md and (sweep / "sweep.md").read_text().rstrip() in md
    assert "#### Scaling: pass rate against model size" in md and scaling_markdown(a.scaling).rstrip() in md
    assert json.loads(report_json(model))["analyses"]["scaling"] == a.scaling.to_json()

    page = report_html(model, samples=False)
    assert '<h2 class="bench" id="analyses">Analyses</h2>' in page
    temps = _section(page, "analysis-temperatures")
    for k, (t, v) in sw.summary.best.items():
        assert f"{k} {100 * v:.2f}% (T={t:g})" in temps
    assert temps.count('<span class="sig">best</span>') == len(sw.summary.best)
    assert '<p class="warn">caveat: 2 problem(s) per temperature' in temps
    scale = _section(page, "analysis-scaling")
    for p in a.scaling.points:
        assert f'<span class="mono">{p.run}</span>' in scale
    assert scale.count("<tr>") == 1 + len(a.scaling.points)
    assert '<p class="warn">caveat: runs of fewer than 20 problem groups' in scale
    images = dict(_pngs(page))
    assert images["pass@k by temperature"] == temperature_plot(sw.summary)  # the analyses' own plots
    assert images["pass rate against model size"] == scaling_plot(a.scaling)


def test_difficulty_split_when_the_runs_have_single_multi_pairs(mtpb_runs: dict[str, Path]) -> None:
    runs = [load_run(p) for p in mtpb_runs.values()]
    model = build_report(runs)
    (split,) = model.analyses.difficulty
    assert split == difficulty_split(runs)
    assert [(p.single, p.multi) for p in split.pairs] == [("a/single", "a/multi"), ("b/single", "b/multi")]
    assert model.analyses.scaling is None and not model.analyses.sweeps  # replay runs: no sizes, no sweep

    md = report_markdown(model)
    assert "#### Difficulty split: mtpb, 4 runs" in md and "##### a/single vs a/multi" in md
    body = difficulty_markdown(split).split("| bucket | groups | single-turn", 1)[1]
    assert body.rstrip().replace("\n### ", "\n##### ") in md  # the analysis' own tables and notes, caveat included
    assert "caveat: buckets of only 3-4 problem groups" in md
    assert json.loads(report_json(model))["analyses"]["difficulty_split"] == [split.to_json()]

    page = report_html(model, samples=False)
    section = _section(page, "analysis-difficulty")
    assert "<h3>a/single vs a/multi</h3>" in section and "<h3>b/single vs b/multi</h3>" in section
    for pair in split.pairs:
        for b in pair.buckets:
            assert f"{100 * b.single:.2f}" in section and f"{100 * b.multi:.2f}" in section
            assert f"{100 * b.gain:+.2f}" in section
    assert '<p class="warn">caveat: buckets of only 3-4 problem groups' in section
    assert dict(_pngs(page))["mtpb difficulty split"] == difficulty_plot(split)


def test_analyses_left_out_when_the_runs_do_not_allow_them(
    mtpb_runs: dict[str, Path], hf_runs: dict[str, Path]
) -> None:
    # A single-turn run of one model with the multi-turn run of another: not a difficulty pair.
    model = build_report([load_run(mtpb_runs["a/single"]), load_run(mtpb_runs["b/multi"])])
    assert not model.analyses
    page = report_html(model, samples=False)
    assert 'id="analyses"' not in page and "### Analyses" not in report_markdown(model)
    assert json.loads(report_json(model))["analyses"]["difficulty_split"] == []
    # One temperature of a sweep, one model size: no best of temperatures, no scaling.
    model = build_report([load_run(hf_runs["sweep"] / "t0.2")])
    assert not model.analyses and 'id="analyses"' not in report_html(model, samples=False)
