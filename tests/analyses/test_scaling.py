"""`analyze scaling` (codegen_eval/analyses/scaling.py) end to end: HumanEval and MTPB runs made by the CLI with two
tiny hf models of different sizes, plus a reference-backend run, whose provenance has no parameter count."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codegen_eval.analyses.scaling import ScalingResult, scaling, scaling_markdown
from codegen_eval.compare import load_run
from tests.conftest import run_cli

SMALL_ARGS = ("--problems", "1-2", "--max-new-tokens", "12", "--no-progress")


def _bigger_model(tiny: Path, directory: Path) -> Path:
    """The tiny model's tokenizer with a wider, deeper random CodeGen (so a different parameter count)."""
    import torch
    from transformers import AutoConfig, CodeGenForCausalLM

    shutil.copytree(tiny, directory, dirs_exist_ok=True)
    config = AutoConfig.from_pretrained(tiny)
    config.n_layer, config.n_embd = 3, 96
    torch.manual_seed(7)
    CodeGenForCausalLM(config).save_pretrained(directory)
    return directory


def _numel(folder: Path) -> int:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def _run(out: Path, *args: str) -> Path:
    r = run_cli("run", *args, *SMALL_ARGS, "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_codegen: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("scaling")
    big = _bigger_model(tiny_codegen, base / "big-model")
    out = {
        "small-he": _run(base / "small-he", "--model", f"hf:{tiny_codegen}", "-n", "2", "-k", "1,2"),
        "big-he": _run(base / "big-he", "--model", f"hf:{big}", "-n", "2", "-k", "1,2"),
        "ref-he": _run(base / "ref-he", "--model", "reference"),
    }
    _run(base / "big-mtpb", "--model", f"hf:{big}", "--bench", "mtpb", "--turns", "both")
    out["big-mtpb/single"], out["big-mtpb/multi"] = base / "big-mtpb" / "single", base / "big-mtpb" / "multi"
    out["small-model"], out["big-model"] = tiny_codegen, big
    return out


def test_parameters_recorded_are_the_models_numel(runs: dict[str, Path]) -> None:
    small, big = _numel(runs["small-model"]), _numel(runs["big-model"])
    assert small != big
    for run, expected in (("small-he", small), ("big-he", big), ("big-mtpb/multi", big), ("big-mtpb/single", big)):
        backend = json.loads((runs[run] / "run.json").read_text())["backend"]
        assert backend["parameters"] == str(expected)
    assert "parameters" not in json.loads((runs["ref-he"] / "run.json").read_text())["backend"]


def test_points_match_the_summaries(runs: dict[str, Path]) -> None:
    labels = ["small-he", "big-he", "ref-he", "big-mtpb/single", "big-mtpb/multi"]
    result = scaling([load_run(runs[label]) for label in labels])
    small, big = _numel(runs["small-model"]), _numel(runs["big-model"])
    expected_size = {"small-he": small, "big-he": big, "ref-he": None}
    for p in result.points:
        path = runs[p.run] if p.run in runs else runs[f"big-mtpb/{p.run.split('/')[-1]}"]
        block = json.loads((path / "summary.json").read_text())["scorers"]["pass"]
        assert p.value == pytest.approx(block["pass_at_k"][p.metric])
        assert p.ci95 == pytest.approx(tuple(block["pass_at_k_ci95"][p.metric]))
        assert p.parameters == expected_size.get(p.run, big)
    he = [(p.run, p.metric) for p in result.points if p.benchmark == "humaneval"]
    # Sorted by metric, then size; the run of unknown size last.
    assert he == [
        ("small-he", "pass@1"),
        ("big-he", "pass@1"),
        ("ref-he", "pass@1"),
        ("small-he", "pass@2"),
        ("big-he", "pass@2"),
    ]
    assert {p.benchmark for p in result.points} == {"humaneval", "mtpb single", "mtpb multi"}
    ref = next(p for p in result.points if p.run == "ref-he")
    assert ref.value == 1.0  # the reference solutions pass
    series = result.series()
    assert [p.run for p in series[("humaneval", "pass@1")]] == ["small-he", "big-he"]  # unknown size not plotted
    assert any(n.startswith("size unknown") and "ref-he" in n for n in result.notes)
    assert any(n.startswith("caveat: runs of fewer than 20") for n in result.notes)
    assert ScalingResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    text = scaling_markdown(result)
    assert "| size unknown | humaneval | pass@1 | 100.0 [100.0, 100.0] | ref-he |" in text
    assert f"({small:,})" in text and f"({big:,})" in text


def test_cli_json_and_png(runs: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "scaling.png"
    args = [str(runs[k]) for k in ("small-he", "big-he", "ref-he", "big-mtpb/multi")]
    r = run_cli("analyze", "scaling", *args, "--format", "json", "--png", str(png))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["analysis"] == "scaling" and len(data["points"]) == 6
    assert "caveat:" in r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = run_cli("analyze", "scaling", *args)
    assert md.returncode == 0 and md.stdout.startswith("| model | parameters |")


def test_no_such_scorer_is_a_usage_error(runs: dict[str, Path]) -> None:
    r = run_cli("analyze", "scaling", str(runs["small-he"]), "--scorer", "nope")
    assert r.returncode == 2 and "no scorer 'nope'" in r.stderr
