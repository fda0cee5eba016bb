"""The summary table after a run, and the time and throughput fields of summary.json."""

from __future__ import annotations

import json

from codegen_eval.report import summary_table
from codegen_eval.report.text import duration
from codegen_eval.summaries import RunSummary, ScoreBlock

BLOCK = ScoreBlock(
    items=4,
    groups=4,
    pass_rate=0.75,
    pass_rate_ci95=(0.5, 1.0),
    pass_at_k={"pass@1": 0.75, "pass@10": 0.9},
    per_problem={"P/1": (10, 1), "P/2": (10, 10), "P/3": (10, 10), "P/4": (10, 9)},
)


def _summary(**timing: object) -> RunSummary:
    return RunSummary(
        outcomes={"passed": 30, "failed": 10},
        scorers={"pass": BLOCK},
        bench="humaneval",
        model="openai:m",
        n=10,
        k=(1, 10),
        problems=4,
        items=4,
        samples_judged=40,
        **timing,  # type: ignore[arg-type]
    )


def test_the_table_labels_its_numbers_and_shows_throughput() -> None:
    summary = _summary(
        wall_s=95.0,
        generate_s=80.0,
        execute_s=15.0,
        samples_per_s=0.421,
        completion_tokens=40960,
        tokens_per_s=512.0,
    )
    lines = summary_table(summary).splitlines()
    assert lines[0] == "humaneval · openai:m · n=10 · 4 problems · 40 samples judged"
    assert lines[1].split() == ["scorer", "pass@1", "pass@10", "pass", "rate", "pass", "rate", "95%", "CI"]
    assert lines[3].split() == ["pass", "75.00%", "90.00%", "75.00%", "[50.00%,", "100.00%]"]
    assert lines[-1] == (
        "time: 1 min 35 s (generate 1 min 20 s, execute 15.0 s) · 0.4 samples/s · 40,960 tokens, 512 tokens/s"
    )


def test_an_older_summary_has_no_time_line() -> None:
    text = summary_table(_summary())
    assert "time:" not in text and "pass@10" in text


def test_durations() -> None:
    assert [duration(s) for s in (0.04, 59.94, 61, 3599, 3600 * 2 + 65)] == [
        "0.0 s",
        "59.9 s",
        "1 min 01 s",
        "59 min 59 s",
        "2 h 01 min",
    ]


def test_timing_fields_read_back_and_older_files_still_read() -> None:
    summary = _summary(wall_s=1.5, generate_s=1.0, execute_s=0.5, samples_per_s=26.667, completion_tokens=7)
    data = json.loads(json.dumps(summary.to_json()))
    assert RunSummary.from_json(data, "x") == summary
    keys = list(data)
    start = keys.index("samples_judged")
    assert keys[start : start + 6] == [
        "samples_judged",
        "wall_s",
        "generate_s",
        "execute_s",
        "samples_per_s",
        "completion_tokens",
    ]
    old = {k: v for k, v in data.items() if k not in ("wall_s", "generate_s", "execute_s", "samples_per_s")}
    del old["completion_tokens"]
    back = RunSummary.from_json(old, "old")
    assert back.wall_s is None and back.completion_tokens is None and back.to_json() == old


def test_script_json_leads_with_human_evals_keys() -> None:
    out = _summary(wall_s=2.0).script_json(run_dir="runs/x")
    assert list(out) == ["pass@1", "pass@10", "pass_rate", "run_dir", "summary"]
    assert (out["pass@1"], out["pass@10"], out["pass_rate"]) == (0.75, 0.9, 0.75)
    assert out["summary"]["wall_s"] == 2.0
