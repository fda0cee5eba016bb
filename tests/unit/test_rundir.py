import json
from pathlib import Path

import pytest

from codegen_eval.errors import UsageError
from codegen_eval.records import Outcome, Sample, TurnOutput
from codegen_eval.rundir import ExecutionRecord, RunDir, read_jsonl, write_json_atomic


def test_samples_roundtrip_and_truncated_tail(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    s = Sample("HumanEval/0", 0, (TurnOutput(raw="x\n#", text="x"),))
    rd.append_sample(s)
    rd.append_sample(Sample("HumanEval/0", 1, (), error="boom"))
    rd.close()
    # a crash mid-write leaves a truncated last line
    with (tmp_path / "samples.jsonl").open("a") as f:
        f.write('{"problem_id": "HumanEval/0", "ind')
    samples = rd.samples()
    assert samples == [s, Sample("HumanEval/0", 1, (), error="boom")]
    # appending after the crash repairs the tail first
    rd.append_sample(Sample("HumanEval/1", 0, ()))
    rd.close()
    assert [x.problem_id for x in rd.samples()] == ["HumanEval/0", "HumanEval/0", "HumanEval/1"]


def test_malformed_middle_line_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\nnot json\n{"b": 2}\n')
    with pytest.raises(UsageError, match=r"x.jsonl:2: malformed JSON line"):
        list(read_jsonl(p))


def test_execution_record_roundtrip(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    r = ExecutionRecord("a", 3, Outcome.ERROR, "ValueError", (("strict", False),), None, 1, 0.5, "tb")
    rd.append_execution(r)
    rd.close()
    assert rd.executions() == [r]


def test_atomic_write_leaves_no_temp(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "s.json", {"a": 1})
    write_json_atomic(tmp_path / "s.json", {"a": 2})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_missing_run_json(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a run directory"):
        RunDir(tmp_path).read_meta()


def test_atomic_json_gets_the_mode_of_a_plain_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    atomic = tmp_path / "atomic.json"
    write_json_atomic(atomic, {"a": 1})
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
