"""The difficulty split (codegen_eval/analyses/difficulty.py) on real MTPB runs made by the pipeline (replayed
reference solutions with some items broken, executed in the process sandbox), checked against per-problem counts
read straight from each run's summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codegen_eval.analyses.difficulty import (
    BUCKETS,
    DifficultySplit,
    assign_buckets,
    difficulty_markdown,
    difficulty_split,
    natural_key,
)
from codegen_eval.compare import load_run
from codegen_eval.errors import UsageError
from tests.conftest import run_cli
from tests.runfactory import humaneval_run, humaneval_samples, mtpb_breaker, mtpb_run, mtpb_samples

# Two "models", each a run --turns both layout (DIR/single, DIR/multi); a lower threshold breaks more items.
MODELS = {"a": (3, 6), "b": (5, 9)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("difficulty")
    out = {}
    for name, (single_threshold, multi_threshold) in MODELS.items():
        for turns, threshold in (("single", single_threshold), ("multi", multi_threshold)):
            work = base / "work" / name / turns
            samples = mtpb_samples(base / f"{name}-{turns}.jsonl", data_dir, turns, work, mtpb_breaker(threshold))
            out[f"{name}/{turns}"] = mtpb_run(base / name / turns, samples, data_dir, turns)
    return out


def group_rates_from_summary(run: Path) -> dict[str, float]:
    """Per problem group, the mean over its items of c/n, from summary.json's per_problem counts."""
    summary = json.loads((run / "summary.json").read_text())
    rates: dict[str, list[float]] = {}
    for item, (n, c) in summary["scorers"]["pass"]["per_problem"].items():
        rates.setdefault(item.rsplit("/", 1)[0], []).append(c / n)
    return {g: float(np.mean(v)) for g, v in rates.items()}


def test_split_matches_the_counts(runs: dict[str, Path]) -> None:
    split = difficulty_split([load_run(p) for p in runs.values()])
    rates = {label: group_rates_from_summary(path) for label, path in runs.items()}
    groups = sorted(rates["a/single"], key=natural_key)
    assert len(groups) == 11
    mean = {g: float(np.mean([r[g] for r in rates.values()])) for g in groups}
    order = sorted(groups, key=lambda g: (-mean[g], natural_key(g)))
    assert [b.name for b in split.buckets] == list(BUCKETS)
    assert [list(b.groups) for b in split.buckets] == [order[:4], order[4:8], order[8:]]
    assert [(p.single, p.multi) for p in split.pairs] == [("a/single", "a/multi"), ("b/single", "b/multi")]
    for pair in split.pairs:
        name = pair.single.split("/")[0]
        for bucket, score in zip(split.buckets, pair.buckets, strict=True):
            single = float(np.mean([rates[f"{name}/single"][g] for g in bucket.groups]))
            multi = float(np.mean([rates[f"{name}/multi"][g] for g in bucket.groups]))
            assert score.single == pytest.approx(single) and score.multi == pytest.approx(multi)
            assert score.gain == pytest.approx(multi - single)
            assert score.single_ci95[0] <= score.single <= score.single_ci95[1]
            assert score.gain_ci95[0] <= score.gain <= score.gain_ci95[1]
    # Multi-turn breaks fewer items than single-turn here (a subset of them), so no bucket loses.
    assert all(s.gain >= 0 for p in split.pairs for s in p.buckets)
    assert any(n.startswith("caveat: buckets of only 3-4 problem groups") for n in split.notes)


def test_record_round_trip_markdown_and_png(runs: dict[str, Path]) -> None:
    from codegen_eval.analyses.plots import difficulty_plot

    split = difficulty_split([load_run(p) for p in runs.values()])
    assert DifficultySplit.from_json(json.loads(json.dumps(split.to_json()))) == split
    text = difficulty_markdown(split)
    assert "| easy | 4 |" in text and "### " in text and "caveat:" in text
    assert difficulty_plot(split).startswith(b"\x89PNG")


def test_ties_at_a_cut_are_split_by_id_and_said() -> None:
    buckets = assign_buckets({"p/10": 0.0, "p/2": 0.0, "p/3": 1.0, "p/1": 0.0, "p/4": 0.5, "p/5": 0.0})
    assert [b.groups for b in buckets] == [("p/3", "p/4"), ("p/1", "p/2"), ("p/5", "p/10")]
    with pytest.raises(UsageError, match="at least 3 problem groups"):
        assign_buckets({"p/1": 1.0, "p/2": 0.0})


def test_cli_difficulty(runs: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "difficulty.png"
    done = run_cli("analyze", "difficulty", *map(str, runs.values()), "--format", "json", "--png", str(png))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [b["name"] for b in data["buckets"]] == list(BUCKETS) and len(data["pairs"]) == 2
    assert "caveat: buckets of only" in done.stderr
    assert png.read_bytes().startswith(b"\x89PNG")
    done = run_cli("analyze", "difficulty", str(runs["a/single"]), str(runs["a/multi"]))
    assert done.returncode == 0 and "| hard |" in done.stdout and "caveat:" in done.stdout


def test_cli_difficulty_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    done = run_cli("analyze", "difficulty", str(runs["a/multi"]), str(runs["b/multi"]))
    assert done.returncode == 2 and "needs a single-turn run and its multi-turn run" in done.stderr
    humaneval = humaneval_run(tmp_path / "he", humaneval_samples(tmp_path / "he.jsonl", 3), 3)
    done = run_cli("analyze", "difficulty", str(runs["a/single"]), str(humaneval))
    assert done.returncode == 2 and "runs of one benchmark" in done.stderr
    done = run_cli("analyze", "difficulty", str(tmp_path / "missing"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
