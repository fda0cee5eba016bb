"""MTPB truncation: the spec's examples, each rule, column-0 semantics, rule order, stop-hint safety."""

from __future__ import annotations

import random

import pytest

from codegen_eval.benchmarks.base import BenchmarkSettings
from codegen_eval.benchmarks.mtpb import DEFAULT_EOS_MARKERS, MTPB, TruncationRules, truncate
from codegen_eval.benchmarks.transforms import with_turns
from codegen_eval.records import Problem, Turn

MULTI = TruncationRules()
RELAXED = TruncationRules(second_def=False, comment_line=False)


# -- the spec's and the authors' own examples -------------------------------------------------------------


def test_spec_examples() -> None:
    assert truncate("x = 1\nprint(x)\nprint(x+1)\n", MULTI) == "x = 1\nprint(x)\n"
    assert truncate("x=1\n\n\ny=2", MULTI) == "x=1"
    assert truncate("# another comment\nx = 1\n", MULTI) == ""


def test_authors_self_test() -> None:
    # mtpb_sample.py's test_truncate: the blank-line cut comes before the trailing '#'.
    raw = "\nif len_a > len_b:\n    result = a\nelse:\n    result = b\n\n\n\n#"
    assert truncate(raw, MULTI) == "\nif len_a > len_b:\n    result = a\nelse:\n    result = b"


# -- each rule ---------------------------------------------------------------------------------------------


def test_print_rule_keeps_first_print_and_cuts_before_second() -> None:
    assert truncate("print(1)\n", MULTI) == "print(1)\n"
    assert truncate("a = 1\nprint(a)\nb = 2\nprint(b)\nprint(c)", MULTI) == "a = 1\nprint(a)\nb = 2\n"


def test_def_rule_keeps_first_def_and_cuts_before_second() -> None:
    raw = "def f(x):\n    return x\n\ndef g(x):\n    return 2 * x\n"
    assert truncate(raw, MULTI) == "def f(x):\n    return x\n\n"
    assert truncate("def f():\n    pass\n", MULTI) == "def f():\n    pass\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x = 1\n# next step\ny = 2", "x = 1\n"),
        ("x = 1\n'''doc'''\ny = 2", "x = 1\n"),
        ('x = 1\n"""doc"""\ny = 2', "x = 1\n"),
        ("x = 1\n\n\ny = 2", "x = 1"),
        ("x = 1<|endoftext|>junk", "x = 1"),
        ("x = 1\ny = 2<|im_end|>", "x = 1\ny = 2"),
        ("x = 1</s>", "x = 1"),
        ("x = 1<|end|>\n", "x = 1"),
        ("x = 1<|eot_id|>", "x = 1"),
    ],
)
def test_each_terminal(raw: str, expected: str) -> None:
    assert truncate(raw, MULTI) == expected


def test_earliest_terminal_wins() -> None:
    assert truncate("a = 1\n\n\n# c\n<|endoftext|>", MULTI) == "a = 1"
    assert truncate("a = 1<|endoftext|>\n\n\n# c", MULTI) == "a = 1"
    assert truncate("a = 1\n# c\n\n\n<|endoftext|>", MULTI) == "a = 1\n"
    assert truncate("a = 1\n'''\n# c", MULTI) == "a = 1\n"


def test_no_rule_applies() -> None:
    raw = "x = [1, 2]\nfor v in x:\n    print(v)\n"
    assert truncate(raw, MULTI) == raw
    assert truncate("", MULTI) == ""


# -- column 0 ----------------------------------------------------------------------------------------------


def test_indented_lines_are_kept() -> None:
    raw = (
        "class A:\n"
        "    def f(self):\n"
        "        # a comment\n"
        "        print(1)\n"
        "        '''doc'''\n"
        "    def g(self):\n"
        "        print(2)\n"
        '        """doc"""\n'
    )
    assert truncate(raw, MULTI) == raw


def test_column_zero_is_start_of_text_or_after_newline() -> None:
    assert truncate("#x\n", MULTI) == ""
    assert truncate("print(1)\nprint(2)", MULTI) == "print(1)\n"  # the first print at offset 0 counts
    assert truncate("def f(): pass\ndef g(): pass", MULTI) == "def f(): pass\n"
    assert truncate("x = '#'  # trailing comment\n", MULTI) == "x = '#'  # trailing comment\n"
    # Only "\n" starts a line for the authors' regular expressions, not "\r".
    assert truncate("x = 1\r# c", MULTI) == "x = 1\r# c"


def test_line_start_is_a_literal_prefix_like_the_authors() -> None:
    # `^print` / `^def` match any line *starting* with those letters, identifiers included.
    assert truncate("printer = 1\nprint(printer)\n", MULTI) == "printer = 1\n"
    assert truncate("default = 1\ndef f(): pass\n", MULTI) == "default = 1\n"
    assert truncate("x = 1\n#!shebang-ish\n", MULTI) == "x = 1\n"


# -- order -------------------------------------------------------------------------------------------------


def test_print_then_def_then_terminals() -> None:
    raw = "def f():\n    return 1\nprint(f())\ndef g():\n    return 2\nprint(g())\n# end"
    # print rule: cut before `print(g())`; def rule on what is left: cut before `def g`.
    assert truncate(raw, MULTI) == "def f():\n    return 1\nprint(f())\n"


def test_order_is_observable_with_a_marker_spanning_a_cut() -> None:
    # The print rule runs first, so a terminal straddling its cut is no longer there to be found.
    rules = TruncationRules(eos_markers=("X\nprint",))
    raw = "print(1)\nX\nprint(2)\n"
    assert truncate(raw, rules) == "print(1)\nX\n"
    assert truncate(raw, TruncationRules(second_print=False, eos_markers=("X\nprint",))) == "print(1)\n"


# -- variants and markers ----------------------------------------------------------------------------------


def test_relaxed_single_turn_keeps_comments_and_functions() -> None:
    raw = "# step 1\nx = 1\n# step 2\ndef f(v):\n    return v\n\ndef g(v):\n    return f(v)\nprint(g(x))\nprint(2)\n"
    expected = raw.removesuffix("print(2)\n")
    assert truncate(raw, RELAXED) == expected
    assert truncate(raw, MULTI) == ""
    # The other cuts still apply.
    assert truncate("# a\nx = 1\n\n\ny = 2", RELAXED) == "# a\nx = 1"
    assert truncate("x = 1\n'''\nprose", RELAXED) == "x = 1\n"
    assert truncate("x = 1<|endoftext|>", RELAXED) == "x = 1"


def test_marker_set_is_configurable() -> None:
    none = TruncationRules(eos_markers=())
    assert truncate("x = 1<|endoftext|>", none) == "x = 1<|endoftext|>"
    custom = TruncationRules(eos_markers=("<END>",))
    assert truncate("x = 1<END>y<|endoftext|>", custom) == "x = 1"
    assert set(DEFAULT_EOS_MARKERS) == {"<|endoftext|>", "<|im_end|>", "</s>", "<|end|>", "<|eot_id|>"}


def _benchmark(**options: str) -> MTPB:
    turns = options.pop("turns", "multi")
    return with_turns(MTPB(BenchmarkSettings(options=options)), turns)  # type: ignore[return-value]


PROBLEM = Problem(id="mtpb/0/0", group="mtpb/0", turns=(Turn("x", 128),))


def test_benchmark_postprocess_uses_the_configured_rules() -> None:
    raw = "# a\nx = 1\n"
    assert _benchmark().postprocess(PROBLEM, 0, raw) == ""
    assert _benchmark(turns="single").postprocess(PROBLEM, 0, raw) == raw
    assert _benchmark(turns="single", single_truncation="full").postprocess(PROBLEM, 0, raw) == ""
    b = _benchmark(eos_markers="<EOT>,<|endoftext|>")
    assert b.postprocess(PROBLEM, 0, "x<EOT>") == "x"
    assert b.postprocess(PROBLEM, 0, "x</s>") == "x</s>"
    assert _benchmark(eos_markers="").postprocess(PROBLEM, 0, "x<|endoftext|>") == "x<|endoftext|>"


# -- stop hints --------------------------------------------------------------------------------------------

_FRAGMENTS = [
    "x = 1",
    "print(x)",
    "print(x, y)",
    "    print(x)",
    "def f(a):",
    "    return a",
    "    # indented comment",
    "# a comment",
    "'''",
    '"""',
    "    '''doc'''",
    "",
    "",
    "for i in range(3):",
    "y = x  # trailing",
    "<|endoftext|>",
    "z = 2<|im_end|>",
    "printer = 3",
]


def _continuations(count: int) -> list[str]:
    rng = random.Random(1234)
    texts = [
        "x = 1\n\n\n# c",
        "#start",
        "x\n#",
        "a = 1\nprint(a)\n# next\nprint(a)",
    ]
    for _ in range(count):
        lines = [rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 12))]
        texts.append("\n".join(lines) + rng.choice(["", "\n", "\n\n"]))
    return texts


@pytest.mark.parametrize("variant", ["multi", "single-relaxed", "single-full"])
def test_stop_hints_never_cut_earlier_than_postprocess(variant: str) -> None:
    turns, _, truncation = variant.partition("-")
    options = {"turns": turns, **({"single_truncation": truncation} if truncation else {})}
    bench = _benchmark(**options)
    hints = bench.stop_hints(PROBLEM, 0).for_backend(True)
    checked = 0
    for raw in _continuations(3000):
        final = bench.postprocess(PROBLEM, 0, raw)
        for hint in hints:
            i = raw.find(hint)
            if i < 0:
                continue
            # A backend returns at least the text through the stop string (possibly a few characters more).
            for end in range(i + len(hint), min(len(raw), i + len(hint) + 3) + 1):
                assert bench.postprocess(PROBLEM, 0, raw[:end]) == final, (variant, hint, raw)
            if not hint.startswith("\n") or hint == "\n\n\n":
                # Safe even for a backend that strips the stop string.
                assert bench.postprocess(PROBLEM, 0, raw[:i]) == final, (variant, hint, raw)
            checked += 1
    assert checked > 1000


def test_stop_hints_per_variant() -> None:
    multi = _benchmark().stop_hints(PROBLEM, 0).for_backend(True)
    relaxed = _benchmark(turns="single").stop_hints(PROBLEM, 0).for_backend(True)
    full = _benchmark(turns="single", single_truncation="full").stop_hints(PROBLEM, 0).for_backend(True)
    assert "\n#" in multi and "\n#" in full and "\n#" not in relaxed
    for hints in (multi, relaxed, full):
        assert "\n\n\n" in hints and "<|endoftext|>" in hints and "\n'''" in hints
        # A bare "#" would stop at indented comments, which the authors keep.
        assert "#" not in hints and "\ndef" not in hints and "\nprint" not in hints
    assert "" not in _benchmark(eos_markers="").stop_hints(PROBLEM, 0).for_backend(True)


@pytest.mark.parametrize("variant", ["multi", "single-relaxed", "single-full"])
def test_hints_for_a_backend_that_strips_stop_strings_are_safe_to_strip(variant: str) -> None:
    # The OpenAI API returns the text without the stop string that ended it: whatever hint ended the text,
    # postprocess of the text before it must equal postprocess of the whole continuation.
    turns, _, truncation = variant.partition("-")
    options = {"turns": turns, **({"single_truncation": truncation} if truncation else {})}
    bench = _benchmark(**options)
    hints = bench.stop_hints(PROBLEM, 0).for_backend(False)
    assert "\n\n\n" in hints and "<|endoftext|>" in hints
    assert "\n#" not in hints and "\n'''" not in hints
    checked = 0
    for raw in _continuations(3000):
        final = bench.postprocess(PROBLEM, 0, raw)
        found = [i for i in (raw.find(h) for h in hints) if i >= 0]
        if found:
            # The server stops at the earliest occurrence of any hint and returns what precedes it.
            assert bench.postprocess(PROBLEM, 0, raw[: min(found)]) == final, (variant, raw)
            checked += 1
    assert checked > 300


def test_the_column_0_hints_are_unsafe_to_strip() -> None:
    # Why they are withheld from such backends: the #-line cut keeps the newline before the comment.
    bench = _benchmark()
    raw = "x = 1\n# next step\ny = 2"
    assert bench.postprocess(PROBLEM, 0, raw) == "x = 1\n"
    assert bench.postprocess(PROBLEM, 0, raw[: raw.find("\n#")]) == "x = 1"
