import json
from pathlib import Path

import pytest

from codegen_eval.errors import UsageError
from codegen_eval.records import Outcome, Sample, TurnOutput
from codegen_eval.rundir import ExecutionRecord, RunDir, make_dirs, read_jsonl, write_json_atomic
from codegen_eval.summaries import RunMeta


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


def test_default_names_never_collide(tmp_path: Path) -> None:
    wanted = tmp_path / "runs" / "20250101T000000Z_humaneval_reference_abcd1234"
    first, made = make_dirs(wanted, unique=True)
    assert first == wanted and made == [tmp_path / "runs", wanted]
    second, made = make_dirs(wanted, unique=True)
    third, _ = make_dirs(wanted, unique=True)
    assert (second.name, third.name) == (f"{wanted.name}-2", f"{wanted.name}-3") and made == [second]
    # A name the user gave is used as it is, existing or not.
    assert make_dirs(wanted, unique=False) == (wanted, [])


def test_a_directory_holding_a_run_is_refused(tmp_path: Path) -> None:
    rundir = RunDir.create(tmp_path / "r", unique=False)
    rundir.write_meta(RunMeta(status="started"))
    with pytest.raises(UsageError, match="already holds a run; continue it with --resume"):
        RunDir.create(tmp_path / "r", unique=False)
    assert RunDir.create(tmp_path / "r", unique=True).path == tmp_path / "r-2"


def test_discard_removes_only_what_the_run_made(tmp_path: Path) -> None:
    # A new directory (and the parents made for it) goes entirely.
    rundir = RunDir.create(tmp_path / "runs" / "a", unique=True)
    rundir.write_meta(RunMeta(status="started"))
    rundir.append_sample(Sample("P/1", 0, (TurnOutput("x", "x"),)))
    rundir.discard()
    assert not (tmp_path / "runs").exists()
    # A parent shared with another run stays.
    (tmp_path / "runs" / "other").mkdir(parents=True)
    rundir = RunDir.create(tmp_path / "runs" / "b", unique=True)
    rundir.write_meta(RunMeta(status="started"))
    rundir.discard()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["other"]
    # A directory the user pointed at keeps what it held, and itself.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "samples.jsonl").write_text("")  # even a file of a name the run uses
    rundir = RunDir.create(mine, unique=False)
    rundir.write_meta(RunMeta(status="started"))
    rundir.append_execution(ExecutionRecord("P/1", 0, Outcome.PASSED))
    rundir.discard()
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "samples.jsonl"]
