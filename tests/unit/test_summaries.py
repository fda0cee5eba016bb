"""The records that leave the pipeline read back to the same JSON: run.json, summary.json, comparison.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from codegen_eval.compare import compare_runs, load_run, pass_at_k_curve
from codegen_eval.config import RunConfig
from codegen_eval.rundir import RunDir
from codegen_eval.runner import Run, execute_run
from codegen_eval.summaries import Comparison, CurvePoint, RunMeta, RunSummary, SandboxInfo
from tests.runfactory import StandardRuns, standard_runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> StandardRuns:
    return standard_runs(tmp_path_factory.mktemp("standard-runs"), data_dir)


@pytest.fixture(scope="session")
def resumed(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """An MTPB reference run (three scorers, a subset, categories) generated, then finished by resume."""
    out = tmp_path_factory.mktemp("resumed") / "run"
    config = RunConfig(bench="mtpb", model="reference", problems="1-3", data_dir=str(data_dir), output_dir=str(out))
    execute_run(Run.create(config, progress=False), ("generate",))
    execute_run(Run.resume(out, None, progress=False))
    return out


def _file_text(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"  # as rundir.write_json_atomic writes it


def _run_dirs(runs: StandardRuns, resumed: Path) -> list[Path]:
    return [*(getattr(runs, f.name) for f in dataclasses.fields(runs)), resumed]


def test_run_json_and_summary_json_read_back_to_the_same_bytes(runs: StandardRuns, resumed: Path) -> None:
    for path in _run_dirs(runs, resumed):
        rundir = RunDir(path)
        meta_text, summary_text = (path / "run.json").read_text(), (path / "summary.json").read_text()
        assert _file_text(rundir.read_meta().to_json()) == meta_text, path
        assert _file_text(rundir.read_summary().to_json()) == summary_text, path
        assert RunMeta.from_json(json.loads(meta_text)) == rundir.read_meta()
        assert RunSummary.from_json(json.loads(summary_text), path) == rundir.read_summary()


def test_the_records_are_typed(resumed: Path) -> None:
    rundir = RunDir(resumed)
    meta, summary = rundir.read_meta(), rundir.read_summary()
    assert meta.status == "completed" and meta.resumed_at and meta.finished_at
    assert isinstance(meta.sandbox, SandboxInfo) and meta.sandbox.name == "process"
    assert meta.executed_programs == 15 and meta.deduplicated_samples == 0
    # A resumed run's keys keep the order they were first written in; resumed_at comes after the first finish.
    order = list(json.loads((resumed / "run.json").read_text()))
    assert order.index("benchmark") < order.index("backend") < order.index("finished_at") < order.index("resumed_at")
    assert summary.bench == "mtpb" and summary.k == (1,) and summary.samples_judged == 15
    assert set(summary.scorers) == {"pass", "reference", "strict"}
    block = summary.scorers["pass"]
    assert block.pass_at_k == {"pass@1": 1.0} and block.pass_rate_ci95 == (1.0, 1.0)
    assert block.subsets is not None and block.by_category is not None and block.per_problem is not None
    assert block.per_problem["mtpb/1/0"] == (1, 1)
    assert summary.item_groups is not None and summary.item_groups["mtpb/1/0"][0] == "mtpb/1"


def test_comparisons_and_curves_read_back(runs: StandardRuns) -> None:
    for a, b in ((runs.ref, runs.broken), (runs.n5a, runs.n5b), (runs.mtpb_single, runs.mtpb_multi)):
        c = compare_runs(load_run(a), load_run(b))
        data = json.loads(json.dumps(c.to_json()))
        assert Comparison.from_json(data) == c
        assert Comparison.from_json(data).to_json() == c.to_json()
        for point in pass_at_k_curve(load_run(b)):
            assert CurvePoint.from_json(json.loads(json.dumps(point.to_json()))) == point


def test_older_and_partial_files_read(runs: StandardRuns) -> None:
    # A run.json with only a status (an interrupted run of an older version), unknown keys, an unexpected type.
    meta = RunMeta.from_json({"status": "interrupted"})
    assert meta.status == "interrupted" and meta.config is None and meta.to_json() == {"status": "interrupted"}
    odd = {"future_key": [1], "status": "failed", "config": "not a mapping", "executed_programs": 3}
    meta = RunMeta.from_json(odd)
    assert meta.to_json() == odd and list(meta.to_json()) == list(odd)
    assert meta.config is None and meta.executed_programs == 3
    # updated() keeps a key where it was and appends a new one, as a dict would.
    changed = meta.updated(status="completed", finished_at="t", config={"bench": "humaneval"})
    assert list(changed.to_json()) == ["future_key", "status", "config", "executed_programs", "finished_at"]
    assert changed.to_json()["config"] == {"bench": "humaneval"}
    # A summary without item_groups (older versions) or a header (made by hand).
    data = json.loads((runs.ref / "summary.json").read_text())
    del data["item_groups"]
    summary = RunSummary.from_json(data, "old")
    assert summary.item_groups is None and summary.to_json() == data
    bare = {"bench": "humaneval", "scorers": {"pass": {"per_problem": {"P/1": [1, 1]}}}}
    summary = RunSummary.from_json(bare, "bare")
    assert summary.n is None and summary.to_json() == {**bare, "outcomes": {}}
