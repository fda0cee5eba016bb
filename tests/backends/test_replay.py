import json
from pathlib import Path

import pytest

from codegen_eval.backends.base import BackendContext
from codegen_eval.backends.reference import ReferenceBackend
from codegen_eval.backends.replay import ReplayBackend, load_replay
from codegen_eval.errors import UsageError
from codegen_eval.records import GenerationRequest

IDS = ("HumanEval/0", "HumanEval/1")


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_human_eval_format(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "s.jsonl",
        [{"task_id": "HumanEval/0", "completion": "a"}, {"task_id": "HumanEval/0", "completion": "b"}],
    )
    data = load_replay(f, IDS)
    assert (data.format, data.mode) == ("human-eval", "completion")
    assert data.samples == {"HumanEval/0": [("a",), ("b",)]}
    backend = ReplayBackend(str(f), {}, BackendContext(problem_ids=IDS))
    [c] = backend.generate([GenerationRequest("k", "", 10, n=2, problem_id="HumanEval/0")])
    assert c.texts == ("a", "b")
    with pytest.raises(UsageError, match="has 2 sample"):
        backend.generate([GenerationRequest("k", "", 10, n=3, problem_id="HumanEval/0")])


def test_evalplus_and_bigcode_formats(tmp_path: Path) -> None:
    f = _write(tmp_path / "e.jsonl", [{"task_id": "HumanEval/1", "solution": "def f(): pass"}])
    assert load_replay(f, IDS).mode == "solution"
    g = tmp_path / "gen.json"
    g.write_text(json.dumps([["x0", "y0"], ["x1"]]))
    data = load_replay(g, IDS)
    assert (data.format, data.mode) == ("bigcode", "solution")
    assert data.samples == {"HumanEval/0": [("x0",), ("y0",)], "HumanEval/1": [("x1",)]}


def test_codegen_eval_format_multi_turn(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "samples.jsonl",
        [
            {
                "problem_id": "HumanEval/0",
                "index": 0,
                "turns": [{"raw": "t1", "text": "t1"}, {"raw": "t2", "text": "t2"}],
            }
        ],
    )
    backend = ReplayBackend(str(f), {}, BackendContext(problem_ids=IDS))
    [c] = backend.generate([GenerationRequest("k", "", 10, problem_id="HumanEval/0", turn=1)])
    assert c.texts == ("t2",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task_id": "HumanEval/99", "completion": "x"}\n', "unknown task id 'HumanEval/99'"),
        ('{"task_id": "HumanEval/0"}\n', "s.jsonl:1: missing field"),
        (
            '{"task_id": "HumanEval/0", "completion": "x"}\n{oops\n{"task_id": "HumanEval/0", "completion": "y"}\n',
            "s.jsonl:2: malformed JSON",
        ),
        ("", "no samples"),
        ("[1, 2]", "list of lists"),
    ],
)
def test_bad_input(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_replay(f, IDS)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="samples file not found"):
        load_replay(tmp_path / "nope.jsonl", IDS)


def test_reference_backend_serves_turns() -> None:
    ctx = BackendContext(reference={"p": ("a", "b")})
    backend = ReferenceBackend("", {}, ctx)
    out = backend.generate(
        [GenerationRequest("k", "", 5, n=3, problem_id="p", turn=1), GenerationRequest("k", "", 5, problem_id="q")]
    )
    assert out[0].texts == ("b", "b", "b")
    assert out[1].error == "no reference solution for q"
    with pytest.raises(UsageError, match="no options"):
        ReferenceBackend("", {"x": "1"}, ctx)
