"""MTPB in chat mode end to end: replies that wrap known-good code in prose and fences, replayed through the CLI,
score exactly like the reference backend's completions (both scorers, every case)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codegen_eval.benchmarks import build
from codegen_eval.benchmarks.base import BenchmarkSettings
from tests.conftest import run_cli

PROBLEMS = "1-6"


def _chat_samples(data_dir: Path, turns: str, path: Path) -> None:
    bench = build("mtpb", BenchmarkSettings(data_dir=data_dir), turns)
    lines = []
    for problem in bench.load():
        number = int(problem.group.split("/")[1])
        if number > 6:
            continue
        code = bench.reference(problem)
        assert code is not None
        replies = [f"Sure, here is the code.\n\n```python\n{c.rstrip()}\n```\n\nIt does what was asked." for c in code]
        turns_out = [{"raw": r, "text": ""} for r in replies]
        lines.append(json.dumps({"problem_id": problem.id, "index": 0, "mode": "chat", "turns": turns_out}))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("turns", ["multi", "single"])
def test_chat_replies_score_like_the_reference(data_dir: Path, tmp_path: Path, turns: str) -> None:
    samples = tmp_path / "chat.jsonl"
    _chat_samples(data_dir, turns, samples)
    common = ["--bench", "mtpb", "--turns", turns, "--problems", PROBLEMS, "--data-dir", str(data_dir), "--no-progress"]
    chat, ref = tmp_path / "chat", tmp_path / "ref"
    r = run_cli("run", *common, "--model", f"replay:{samples}", "--output-dir", str(chat))
    assert r.returncode == 0, r.stderr
    r = run_cli("run", *common, "--model", "reference", "--output-dir", str(ref))
    assert r.returncode == 0, r.stderr
    a = json.loads((chat / "summary.json").read_text())
    b = json.loads((ref / "summary.json").read_text())
    assert a["items"] == b["items"] == 30
    for scorer in ("reference", "strict"):
        assert a["scorers"][scorer]["per_problem"] == b["scorers"][scorer]["per_problem"]
        assert a["scorers"][scorer]["pass_rate"] == b["scorers"][scorer]["pass_rate"] > 0.9
    recorded = [json.loads(line) for line in (chat / "samples.jsonl").read_text().splitlines()]
    assert all(s["mode"] == "chat" and "```" not in s["turns"][0]["text"] for s in recorded)
