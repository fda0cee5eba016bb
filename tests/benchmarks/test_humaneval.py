import pytest

from codegen_eval.benchmarks.base import BenchmarkSettings, classify_failure, exception_type
from codegen_eval.benchmarks.humaneval import HumanEval, sentinel
from codegen_eval.errors import UsageError
from codegen_eval.records import ExecutionResult, ExitKind, Outcome, Sample, TurnOutput


@pytest.fixture(scope="module")
def bench() -> HumanEval:
    return HumanEval(BenchmarkSettings())


def test_loads_164_official_problems(bench: HumanEval) -> None:
    problems = bench.load()
    assert len(problems) == 164
    assert problems[0].id == "HumanEval/0"
    assert problems[-1].id == "HumanEval/163"
    assert bench.provenance()["data_sha256"].startswith("b796127e")


def test_prompt_is_verbatim(bench: HumanEval) -> None:
    p = bench.load()[2]
    assert bench.render(p, 0, ()) == p.turns[0].instruction
    assert bench.render(p, 0, ()).startswith("\n\ndef truncate_number")


def test_postprocess_cuts_at_earliest_stop(bench: HumanEval) -> None:
    p = bench.load()[0]
    raw = "    return 1\n\nif __name__ == '__main__':\n    pass\ndef g(): pass"
    assert bench.postprocess(p, 0, raw) == "    return 1\n"
    assert bench.postprocess(p, 0, "    x = 1\n    # comment kept (indented)\n") == (
        "    x = 1\n    # comment kept (indented)\n"
    )
    assert bench.postprocess(p, 0, "    return 2\n#top-level comment") == "    return 2"
    assert bench.postprocess(p, 0, "    return 3\nprint(3)") == "    return 3"
    assert bench.postprocess(p, 0, "    return 4\nclass A: pass") == "    return 4"


def test_stop_option(bench: HumanEval) -> None:
    b = HumanEval(BenchmarkSettings(options={"stop": '["\\nSTOP"]'}))
    p = b.load()[0]
    assert b.postprocess(p, 0, "a\ndef b\nSTOP") == "a\ndef b"
    with pytest.raises(UsageError, match="JSON list"):
        HumanEval(BenchmarkSettings(options={"stop": "nope"}))
    with pytest.raises(UsageError, match="no option"):
        HumanEval(BenchmarkSettings(options={"stpo": "[]"}))


def test_program_has_check_then_sentinel(bench: HumanEval) -> None:
    p = bench.load()[0]
    s = Sample(p.id, 0, (TurnOutput("raw", "    return False\n"),))
    job = bench.build_job(p, s, "abc123")
    lines = job.program.rstrip("\n").splitlines()
    assert lines[-2] == "check(has_close_elements)"
    assert lines[-1] == f"print({sentinel('abc123')!r}, flush=True)"
    assert job.program.startswith(p.turns[0].instruction + "    return False\n")
    assert job.timeout_s == 3.0


def _result(kind: ExitKind, code: int | None = 0, stdout: str = "", stderr: str = "", sig: int | None = None):
    return ExecutionResult(kind, code, sig, stdout, stderr, 0.1)


def test_judge_requires_exit_zero_and_sentinel(bench: HumanEval) -> None:
    p = bench.load()[0]
    s = Sample(p.id, 0, ())
    ok = _result(ExitKind.EXITED, 0, stdout=sentinel("n1") + "\n")
    assert bench.judge(p, s, ok, "n1").outcome is Outcome.PASSED
    # right exit code, wrong nonce (e.g. from another run) -> not passed
    assert bench.judge(p, s, ok, "n2").outcome is Outcome.FAILED
    # sys.exit(0) before the checks: exit 0, no sentinel
    v = bench.judge(p, s, _result(ExitKind.EXITED, 0), "n1")
    assert (v.outcome, v.detail) == (Outcome.FAILED, "exited before the checks completed")


def test_failure_classification() -> None:
    tb = 'Traceback (most recent call last):\n  File "x", line 1\nAssertionError\n'
    assert classify_failure(_result(ExitKind.EXITED, 1, stderr=tb)).outcome is Outcome.FAILED
    tb = 'Traceback (most recent call last):\n  File "x"\nZeroDivisionError: division by zero\n'
    v = classify_failure(_result(ExitKind.EXITED, 1, stderr=tb))
    assert (v.outcome, v.detail) == (Outcome.ERROR, "ZeroDivisionError")
    syn = '  File "<program>", line 3\n    def f(:\n          ^\nSyntaxError: invalid syntax\n'
    assert classify_failure(_result(ExitKind.EXITED, 1, stderr=syn)).detail == "SyntaxError"
    assert classify_failure(_result(ExitKind.TIMEOUT, None)).outcome is Outcome.TIMEOUT
    assert classify_failure(_result(ExitKind.MEMORY_LIMIT, None)).outcome is Outcome.MEMORY_LIMIT
    assert classify_failure(_result(ExitKind.OUTPUT_LIMIT, None)).outcome is Outcome.OUTPUT_LIMIT
    assert classify_failure(_result(ExitKind.PROCESS_LIMIT, None)).outcome is Outcome.PROCESS_LIMIT
    v = classify_failure(_result(ExitKind.SIGNALED, None, sig=11))
    assert (v.outcome, v.detail) == (Outcome.KILLED, "killed by SIGSEGV")
    assert classify_failure(_result(ExitKind.EXITED, 3)).detail == "exit code 3"
    assert classify_failure(_result(ExitKind.EXITED, 1, stderr="MemoryError\n")).outcome is Outcome.MEMORY_LIMIT
    assert exception_type("pkg.mod.CustomError: x") == "CustomError"
    assert exception_type("just some text") is None


def test_chat_mode_keeps_prompt_imports(bench: HumanEval) -> None:
    p = bench.load()[0]  # prompt starts with "from typing import List"
    s = Sample(p.id, 0, (TurnOutput("reply", "def has_close_elements(a, b):\n    return True\n"),), mode="chat")
    program = bench.build_job(p, s, "n").program
    assert program.startswith("from typing import List\ndef has_close_elements(a, b):")
    solution = Sample(p.id, 0, (TurnOutput("x", "def f(): pass\n"),), mode="solution")
    assert bench.build_job(p, solution, "n").program.startswith("def f(): pass\n")
