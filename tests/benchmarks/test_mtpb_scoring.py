"""MTPB checker: both comparisons rule by rule, the last-statement rewrite, and whole programs run for real."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from codegen_eval.benchmarks import mtpb_scoring
from codegen_eval.benchmarks.mtpb_scoring import (
    MtpbVerdict,
    build_program,
    checker_source,
    parse_verdict,
    reference_equal,
    rewrite_last_statement,
    short_repr,
    strict_equal,
)

NONCE = "t3st-n0nce"


def both(value: object, gold: object) -> tuple[bool, bool]:
    return reference_equal(value, gold), strict_equal(value, gold)


# -- comparison rules ---------------------------------------------------------------------------------------


def test_int_gold_accepts_a_truncated_float_in_reference_only() -> None:
    assert both(16.7, 16) == (True, False)  # the authors cast to int(16.7) == 16
    assert both(15.9999, 16) == (False, False)  # int() truncates towards zero
    assert both(16.0, 16) == (True, True)
    assert both(16.0000000001, 16) == (True, True)  # within tolerance, not truncated
    assert both(17, 16) == (False, False)


def test_string_of_the_number_passes_an_int_gold() -> None:
    assert both("7980", 7980) == (True, True)
    assert both("7980.0", 7980) == (False, False)  # int("7980.0") raises
    assert reference_equal(" 7980", 7980) is True  # int() strips; the printed text differs
    assert strict_equal(" 7980", 7980) is False


def test_bool_gold_compares_in_string_space() -> None:
    assert both(True, True) == (True, True)
    assert both("True", True) == (True, True)
    assert both("False", True) == (False, False)
    assert both(1, True) == (False, False)  # str(1) != "True"
    assert both(np.bool_(True), True) == (True, True)
    assert both(False, False) == (True, True)
    assert both(0, False) == (False, False)


def test_str_gold_takes_str_of_the_value() -> None:
    assert both("Kevin", "Kevin") == (True, True)
    assert both(True, "True") == (True, True)
    assert both(2, "2") == (True, True)
    assert both(np.float64(0.5), "0.5") == (True, True)
    assert both("kevin", "Kevin") == (False, False)


def test_float_gold_absolute_tolerance() -> None:
    assert both(0.1 + 0.2, 0.3) == (True, True)
    assert both(0.75, 0.74999999999) == (True, True)
    assert both(0.3001, 0.3) == (False, False)
    assert both(3, 3.0) == (True, True)
    assert both("3.14", 3.14) == (True, True)
    # Large magnitudes: only strict has a relative tolerance.
    assert both(7.000000000000001e100, 7e100) == (False, True)


def test_list_whose_first_element_is_a_tuple() -> None:
    gold = [["Have", "free"], ["free", "hours"]]
    assert both([("Have", "free"), ("free", "hours")], gold) == (True, True)
    # The authors only converted when the *first* element is a tuple.
    assert both([["Have", "free"], ("free", "hours")], gold) == (False, True)
    assert both((17, 2), [17, 2]) == (True, True)  # cast list((17, 2))


def test_numpy_scalars_are_normalised() -> None:
    assert both(np.int64(5), 5) == (True, True)
    assert both(np.int32(5), 5) == (True, True)
    assert both(np.int8(5), 5) == (True, True)  # not in their list, but int() casts it
    assert both(np.float32(0.1), 0.1) == (True, True)
    assert both(np.float64(2.5), 2.5) == (True, True)
    assert both(np.float64(16.7), 16) == (True, False)


def test_ndarray_becomes_a_list() -> None:
    assert both(np.array([1, 2, 3]), [1, 2, 3]) == (True, True)
    assert both(np.array([[1, 0], [0, 1]]), [[1, 0], [0, 1]]) == (True, True)
    # As a list it is compared exactly by the authors; strict has a tolerance inside lists.
    assert both(np.array([1.0, 2.0000001]), [1, 2]) == (False, True)
    assert both(np.array([1, 2]), [1, 2, 3]) == (False, False)


def test_pandas_series_gets_the_tolerant_array_comparison() -> None:
    pd = pytest.importorskip("pandas")
    series = pd.Series([35.5, 66.5000001], index=["Yes", "No"])
    assert both(series, [35.5, 66.5]) == (True, True)
    assert both(pd.Series([35.5, 66.6]), [35.5, 66.5]) == (False, False)
    assert both(pd.Series([1.0, 2.0]), [1, 2, 3]) == (False, False)  # allclose cannot broadcast


def test_dict_gold_never_passes_reference_and_compares_deeply_in_strict() -> None:
    gold = {"5": ["apple", "peach"], "6": ["banana", "orange"]}
    assert both({"6": ["banana", "orange"], "5": ["apple", "peach"]}, gold) == (False, True)
    assert both({"5": ["apple"], "6": ["banana", "orange"]}, gold) == (False, False)
    assert both({5: ["apple", "peach"], 6: ["banana", "orange"]}, gold) == (False, False)  # keys differ
    assert both({"a": 0.1 + 0.2}, {"a": 0.3}) == (False, True)


def test_none_gold_never_passes_reference_and_passes_strict_when_none() -> None:
    assert both(None, None) == (False, True)
    assert both("None", None) == (False, True)  # print('None') prints the same
    assert both(0, None) == (False, False)
    assert both([], None) == (False, False)
    assert both([1, None, 2, False], [1, None, 2, False]) == (True, True)


def test_float_tolerance_inside_lists_is_strict_only() -> None:
    assert both([0.1 + 0.2, 1], [0.3, 1]) == (False, True)
    assert both((0.1 + 0.2, 1), [0.3, 1]) == (False, True)
    assert both([[0.1 + 0.2]], [[0.3]]) == (False, True)
    assert both([0.6000000000000001], [0.6]) == (False, True)
    assert both([0.5], [0.6]) == (False, False)


def test_strict_refuses_casts_the_reference_makes() -> None:
    assert both("abc", ["a", "b", "c"]) == (True, False)  # list("abc")
    assert both({3}, [3]) == (True, False)  # a set is not a list
    assert both({"a": 1}, ["a"]) == (True, False)  # list(dict) is its keys
    assert both([True, False], [1, 0]) == (True, False)  # bool is not a number
    assert both(True, 1) == (True, False)
    assert both([1, "1"], [1, 1]) == (False, False)


def test_unsupported_values_fail_without_raising() -> None:
    class Weird:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no")

        __hash__ = object.__hash__

    assert both(object(), 3) == (False, False)
    assert both(Weird(), "x") == (False, False)
    assert both([Weird()], [1]) == (False, False)
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert both(cyclic, [[1]]) == (False, False)


def test_short_repr_is_bounded() -> None:
    assert short_repr("abc") == "'abc'"
    assert len(short_repr(list(range(100_000)))) <= 200
    assert len(short_repr("x" * 10_000)) <= 200

    class Broken:
        def __repr__(self) -> str:
            raise ValueError

    assert "Broken" in short_repr(Broken())  # reprlib's fallback, not an exception


# -- the last-statement rewrite -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\nx", "x = 1\nprint(x)"),
        ("def f(a):\n    return a ** 2\nf(2)", "def f(a):\n    return a ** 2\nprint(f(2))"),
        ("print(1)", "print(1)"),
        ("x = f()", "x = print(f())"),  # the value of any statement that has one, as theirs did
        ("x += 1", "x += print(1)"),
        ("for i in range(3):\n    print(i)", "for i in range(3):\n    print(i)"),
        ("if x:\n    y", "if x:\n    y"),
        ("print_result(x)", "print_result(x)"),  # theirs: the name only has to start with "print"
        ("sys.stdout.write('a')", "print(sys.stdout.write('a'))"),
        ("x: int", "x: int"),
        ("", ""),
    ],
)
def test_rewrite_last_statement(source: str, expected: str) -> None:
    assert ast.unparse(rewrite_last_statement(ast.parse(source))) == ast.unparse(ast.parse(expected))


# -- parse_verdict ------------------------------------------------------------------------------------------


def _line(tag: str, **payload: object) -> str:
    return f"{NONCE} {tag} {json.dumps(payload)}"


def test_parse_verdict_last_line_wins_and_foreign_lines_are_ignored() -> None:
    good = {"printed": True, "reference": True, "strict": True, "value": "3"}
    bad = {"printed": True, "reference": False, "strict": False, "value": "4"}
    stdout = "\n".join(
        [
            "junk " + _line("END", **good),  # not at the start of a line
            "other-nonce V " + json.dumps(good),
            _line("V", **good),
            f"{NONCE} V not json",
            _line("V", **bad),
            _line("END", **bad),
            "trailing program output",
        ]
    )
    assert parse_verdict(stdout, NONCE, True) == MtpbVerdict(False, False, True, True, "wrong value: 4")


def test_parse_verdict_strict_needs_a_finish_and_a_clean_exit() -> None:
    good = {"printed": True, "reference": True, "strict": True, "value": "3"}
    assert parse_verdict(_line("END", **good), NONCE, True) == MtpbVerdict(True, True, True, True, "passed")
    assert parse_verdict(_line("END", **good), NONCE, False).strict is False
    hung = parse_verdict(_line("V", **good), NONCE, False)
    assert (hung.reference, hung.strict, hung.finished) == (True, False, False)
    assert hung.detail == "did not finish after print"
    assert parse_verdict("", NONCE, True) == MtpbVerdict(False, False, False, False, "no verdict from the checker")


def test_build_program_embeds_the_module_block_and_checks_the_nonce() -> None:
    block = checker_source()
    assert "def reference_equal(" in block and "def strict_equal(" in block and "def run_checked(" in block
    assert "def build_program(" not in block and "def parse_verdict(" not in block
    assert block in Path(mtpb_scoring.__file__).read_text(encoding="utf-8")
    assert block in build_program("print(1)", 1, NONCE)
    with pytest.raises(ValueError, match="nonce"):
        build_program("print(1)", 1, "two words")
    with pytest.raises(ValueError, match="nonce"):
        build_program("print(1)", 1, "")


# -- whole programs in a real subprocess --------------------------------------------------------------------


def run(program: str, gold: object, timeout_s: float = 20.0) -> tuple[MtpbVerdict, str]:
    """Run the checked program like a bare sandbox: own process, own directory, killed at the timeout."""
    source = build_program(program, gold, NONCE)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "program.py"
        path.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, str(path)],
                cwd=work,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
            )
            stdout, exited_ok = done.stdout.decode(), done.returncode == 0
        except subprocess.TimeoutExpired as e:  # run() has killed the child
            stdout, exited_ok = (e.stdout or b"").decode(), False
    return parse_verdict(stdout, NONCE, exited_ok), stdout


def test_last_expression_is_printed() -> None:
    verdict, _ = run("import numpy as np\nx = np.int64(3)\nx", 3)
    assert verdict == MtpbVerdict(True, True, True, True, "passed")
    verdict, _ = run("x = 16.7\nx", 16)
    assert (verdict.reference, verdict.strict) == (True, False)
    assert verdict.detail == "wrong value (strict): 16.7"
    verdict, _ = run("result = 2 + 3", 5)  # an assignment's value is wrapped too
    assert verdict.reference and verdict.strict


def test_the_first_argument_of_the_last_print_is_scored() -> None:
    program = "print(1)\nprint(2, 3)\nx = 0\nfor i in range(2):\n    pass"
    assert run(program, 2)[0].reference is True
    assert run(program, 1)[0].reference is False
    assert run(program, 3)[0].reference is False
    verdict, _ = run("print(5)\nprint()", 5)
    assert (verdict.reference, verdict.strict, verdict.printed) == (False, False, True)
    assert "without arguments" in verdict.detail


def test_prints_are_intercepted_and_not_written_to_stdout() -> None:
    verdict, stdout = run("print('hello')\nimport sys\nprint('bye', file=sys.stderr)\nprint('hello')", "hello")
    assert verdict.reference and verdict.strict
    assert "hello" not in stdout.replace(NONCE, "").replace("'hello'", "")
    assert all(line.startswith(NONCE) for line in stdout.splitlines() if line)


def test_no_print_fails() -> None:
    verdict, _ = run("x = 1\nfor i in range(3):\n    x += i", 3)
    assert verdict == MtpbVerdict(False, False, False, True, "no print")


def test_crash_after_print_passes_reference_only() -> None:
    verdict, _ = run("print(5)\n1 / 0", 5)
    assert verdict == MtpbVerdict(True, False, True, False, "crashed after print: ZeroDivisionError")
    verdict, _ = run("1 / 0\nprint(5)", 5)
    assert verdict == MtpbVerdict(False, False, False, False, "no print; crashed: ZeroDivisionError")


def test_hang_after_print_keeps_the_reference_verdict() -> None:
    verdict, stdout = run("print(5)\nwhile True:\n    pass", 5, timeout_s=3)
    assert verdict == MtpbVerdict(True, False, True, False, "did not finish after print")
    assert f"{NONCE} V " in stdout


def test_syntax_error_fails() -> None:
    verdict, _ = run("def f(:\n    print(1)", 1)
    assert verdict == MtpbVerdict(False, False, False, False, "syntax error")
    verdict, _ = run("print(1)\nreturn 2", 1)  # parses, but does not compile
    assert verdict.detail == "syntax error"


def test_system_exit() -> None:
    verdict, _ = run("import sys\nprint(5)\nsys.exit()", 5)
    assert (verdict.reference, verdict.strict, verdict.finished) == (True, True, True)
    verdict, _ = run("import sys\nprint(5)\nsys.exit(3)", 5)
    assert verdict == MtpbVerdict(True, False, True, False, "crashed after print: SystemExit(3)")


def test_object_mutated_after_print_is_compared_as_mutated_by_reference() -> None:
    # The authors compared after the program ended; strict scores the value as it was printed.
    verdict, _ = run("x = [1]\nprint(x)\nx.append(2)\npass", [1, 2])
    assert (verdict.reference, verdict.strict) == (True, False)
    verdict, _ = run("x = [1]\nprint(x)\nx.append(2)\npass", [1])
    assert (verdict.reference, verdict.strict) == (False, True)


def test_program_output_and_stdout_tampering_do_not_hide_the_verdict() -> None:
    program = "import os, sys\nsys.__stdout__.write('no newline')\nsys.__stdout__.flush()\nprint(5)\nos.close(1)\npass"
    verdict, _ = run(program, 5)
    assert verdict == MtpbVerdict(True, True, True, True, "passed")
    verdict, _ = run("import sys\nsys.stdout = 1\nprint(5)", 5)  # recorded, then print itself raises
    assert (verdict.reference, verdict.strict) == (True, False)


def test_verdict_lines_are_written_only_when_the_verdict_changes() -> None:
    verdict, stdout = run("for i in range(20000):\n    print(i >= 19990)", True)
    assert verdict.reference and verdict.strict
    assert len([line for line in stdout.splitlines() if line.startswith(f"{NONCE} V ")]) == 2


def test_program_runs_as_main_with_numpy_and_pandas() -> None:
    pytest.importorskip("pandas")
    program = (
        "import numpy as np\nimport pandas as pd\n"
        "if __name__ == '__main__':\n"
        "    df = pd.DataFrame({'Yes': [50, 21], 'No': [131, 2]})\n"
        "    means = df.mean()\n"
        "    print(means)\n"
    )
    verdict, _ = run(program, [35.5, 66.5])
    assert verdict == MtpbVerdict(True, True, True, True, "passed")


def test_names_from_the_checker_are_not_visible_to_the_program() -> None:
    verdict, _ = run("print('reference_equal' in globals() or 'run_checked' in dir())", False)
    assert verdict.reference and verdict.strict
