"""Golden MTPB prompts: the exact context at every turn, in both modes, compared byte for byte.

Prompt drift is how benchmarks silently change. To accept a deliberate change, regenerate and review the diff:
    UPDATE_GOLDEN=1 PYTHONPATH=$PWD python -m pytest tests/benchmarks/test_mtpb_golden.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from codegen_eval.benchmarks.mtpb import MTPB
from codegen_eval.records import Problem, Sample, TurnOutput
from tests.golden import check_golden

GOLDEN = Path(__file__).resolve().parents[2] / "benchmarks" / "mtpb" / "golden"  # shipped with the assets
# Chosen for what they exercise: 1 plain; 9 `{{ }}` and lists of lists; 46 `{{:.1f}}` and 7 turns;
# 17 prompts with embedded newlines; 89 a list of strings and a nested list; 39 no max_gen_length;
# 57 a stray input key; 18 the 512-token budget.
ITEMS = ["mtpb/1/0", "mtpb/9/0", "mtpb/46/0", "mtpb/17/4", "mtpb/89/3", "mtpb/39/2", "mtpb/57/4", "mtpb/18/0"]
KEEP = {".gitattributes", "README.md"}


def _history(bench: MTPB, problem: Problem) -> tuple[str, tuple[str, ...]]:
    """Reference solutions as the model's texts, or fixed strings where a problem has none."""
    reference = bench.reference(problem)
    if reference is not None:
        return "reference", tuple(bench.postprocess(problem, t, r) for t, r in enumerate(reference))
    turns = len(problem.turns)
    return "fixed", tuple(f"step_{t} = {t}" for t in range(turns)) if turns > 1 else ("result = 0\nprint(result)",)


def render_golden(make: Callable[..., MTPB]) -> dict[str, str]:
    files: dict[str, str] = {}
    manifest: dict[str, dict[str, object]] = {}
    for mode in ("multi", "single"):
        bench = make(turns=mode)
        items = {p.id: p for p in bench.load()}
        for item_id in ITEMS:
            problem = items[item_id]
            source, texts = _history(bench, problem)
            folder = f"{mode}/{item_id.removeprefix('mtpb/').replace('/', '-')}"
            history: list[TurnOutput] = []
            for turn, text in enumerate(texts):
                files[f"{folder}/turn-{turn}.txt"] = bench.render(problem, turn, history)
                history.append(TurnOutput(raw=text, text=text))
            sample = Sample(problem.id, 0, tuple(history))
            files[f"{folder}/program.txt"] = bench.program(problem, sample)
            manifest[f"{mode}:{item_id}"] = {
                "history": source,
                "turns": [[t.instruction, t.max_new_tokens] for t in problem.turns],
                "stop": list(bench.stop_hints(problem, 0).for_backend(True)),
            }
    files["manifest.json"] = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    return files


def test_golden_prompts(data_dir: Path, mtpb_factory: Callable[..., MTPB]) -> None:
    check_golden(GOLDEN, render_golden(lambda turns: mtpb_factory(data_dir, turns)), KEEP)


def test_golden_files_are_self_consistent() -> None:
    """Independent of the renderer: each turn's context extends the previous one, as the spec says."""
    manifest = json.loads((GOLDEN / "manifest.json").read_text(encoding="utf-8"))
    prefix = "# Import libraries.\n\nimport numpy as np\n\n"
    for item_id in ITEMS:
        folder = item_id.removeprefix("mtpb/").replace("/", "-")
        turns = manifest[f"multi:{item_id}"]["turns"]
        contexts = [(GOLDEN / "multi" / folder / f"turn-{t}.txt").read_text() for t in range(len(turns))]
        program = (GOLDEN / "multi" / folder / "program.txt").read_text()
        assert contexts[0] == prefix + f"# {turns[0][0]}\n"
        for t in range(1, len(turns)):
            previous_text = contexts[t][len(contexts[t - 1]) :].removesuffix(f"\n\n# {turns[t][0]}\n")
            assert contexts[t] == contexts[t - 1] + previous_text + f"\n\n# {turns[t][0]}\n"
        assert program.startswith(contexts[-1]) and program.endswith("\n\n")
        single = (GOLDEN / "single" / folder / "turn-0.txt").read_text()
        (single_turn,) = manifest[f"single:{item_id}"]["turns"]
        assert single == prefix + "".join(f"# {instruction}\n" for instruction, _ in turns)
        assert single_turn == ["\n".join(i for i, _ in turns), sum(n for _, n in turns)]
        assert (GOLDEN / "single" / folder / "program.txt").read_text().startswith(single)


def test_golden_detects_a_one_byte_change(
    data_dir: Path, mtpb_factory: Callable[..., MTPB], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison is byte-exact: a trailing space in one golden file fails it."""
    if os.environ.get("UPDATE_GOLDEN") == "1":
        pytest.skip("regenerating")
    import shutil

    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN, copy)
    target = copy / "multi" / "17-4" / "turn-1.txt"
    target.write_bytes(target.read_bytes().replace(b"odd:", b"odd: ", 1))
    monkeypatch.setattr(f"{__name__}.GOLDEN", copy)
    with pytest.raises(AssertionError, match="drifted"):
        test_golden_prompts(data_dir, mtpb_factory)
