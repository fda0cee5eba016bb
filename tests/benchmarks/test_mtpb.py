"""MTPB items, fill semantics, record validation, settings, rendering and program assembly."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from codegen_eval.benchmarks import BENCHMARKS
from codegen_eval.benchmarks.mtpb import (
    MTPB,
    MTPB_DATA,
    PREFIX,
    MtpbCase,
    fill,
    load_records,
    program_multi,
    program_single,
)
from codegen_eval.errors import UsageError
from codegen_eval.records import Problem, Sample, TurnOutput

MakeMtpb = Callable[..., MTPB]


@pytest.fixture(scope="session")
def raw_records(data_dir: Path) -> dict[str, dict[str, object]]:
    lines = (data_dir / "mtpb" / "mtpb.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def case_of(problem: Problem) -> MtpbCase:
    assert isinstance(problem.payload, MtpbCase)
    return problem.payload


# -- items -------------------------------------------------------------------------------------------------


def test_registered() -> None:
    assert BENCHMARKS.load("mtpb") is MTPB


def test_575_items_in_the_authors_order(items_multi: dict[str, Problem]) -> None:
    assert list(items_multi) == [f"mtpb/{i}/{c}" for i in range(1, 116) for c in range(5)]
    groups = Counter(p.group for p in items_multi.values())
    assert groups == {f"mtpb/{i}": 5 for i in range(1, 116)}
    for pid, p in items_multi.items():
        assert p.group == pid.rsplit("/", 1)[0]
        assert (case_of(p).problem_id, case_of(p).case) == (pid.split("/")[1], int(pid.split("/")[2]))


def test_categories(items_multi: dict[str, Problem]) -> None:
    problems = Counter(p.category for p in items_multi.values() if p.id.endswith("/0"))
    assert problems == {
        "array": 23,
        "data science": 23,
        "math": 22,
        "string": 21,
        "algorithm": 21,
        "dict": 3,
        "class": 2,
    }
    assert all(p.category == case_of(p).category for p in items_multi.values())


def test_turns_are_filled_prompts_with_budgets(
    items_multi: dict[str, Problem], raw_records: dict[str, dict[str, object]]
) -> None:
    for p in items_multi.values():
        case = case_of(p)
        raw = raw_records[case.problem_id]
        prompts = raw["prompts"]
        inputs = raw["inputs"]
        assert isinstance(prompts, list) and isinstance(inputs, list)
        expected = [t.format(**inputs[case.case]) for t in prompts]
        assert [t.instruction for t in p.turns] == expected == list(case.prompts)
        budget = raw.get("max_gen_length", 256)
        assert {t.max_new_tokens for t in p.turns} == {budget}
        assert case.max_gen_length_given == ("max_gen_length" in raw)
    missing = sorted({case_of(p).problem_id for p in items_multi.values() if not case_of(p).max_gen_length_given})
    assert missing == ["39", "40", "41", "42", "43", "44", "45"]
    assert items_multi["mtpb/39/2"].turns[0].max_new_tokens == 256
    assert items_multi["mtpb/18/0"].turns[0].max_new_tokens == 512


def test_single_turn_items(items_multi: dict[str, Problem], items_single: dict[str, Problem]) -> None:
    assert list(items_single) == list(items_multi)
    for pid, single in items_single.items():
        multi = items_multi[pid]
        assert single.group == multi.group and single.category == multi.category
        (turn,) = single.turns
        assert turn.instruction == "\n".join(t.instruction for t in multi.turns)
        assert turn.max_new_tokens == sum(t.max_new_tokens for t in multi.turns)
    assert items_single["mtpb/18/0"].turns[0].max_new_tokens == 512 * len(items_multi["mtpb/18/0"].turns)


def test_golds(items_multi: dict[str, Problem], raw_records: dict[str, dict[str, object]]) -> None:
    for p in items_multi.values():
        outputs = raw_records[case_of(p).problem_id]["outputs"]
        assert isinstance(outputs, list)
        assert case_of(p).gold == outputs[case_of(p).case]
    assert [case_of(items_multi[f"mtpb/57/{c}"]).gold for c in range(5)] == [1, 5, 1, 2, 10010]


# -- fill semantics ----------------------------------------------------------------------------------------


def test_fill_is_str_format() -> None:
    assert fill("x = {a}", {"a": [1, 2, 3]}) == "x = [1, 2, 3]"
    assert fill('s = "{a}"', {"a": "hi"}) == 's = "hi"'
    assert fill("{a} {b}", {"a": 1.5, "b": ["p", "q"], "unused": 0}) == "1.5 ['p', 'q']"
    assert fill("{{ {a} }}", {"a": True}) == "{ True }"
    with pytest.raises(KeyError):
        fill("{missing}", {})


def test_fill_on_published_problems(items_multi: dict[str, Problem]) -> None:
    def prompts(pid: str) -> tuple[str, ...]:
        return case_of(items_multi[pid]).prompts

    assert prompts("mtpb/1/0")[0] == 'Assign the string "abcde" to a variable named "my_string".'
    # Lists go in as str(list); `{{ }}` become literal braces.
    assert "corresponding notes [[3, 5, 4], [3, 1, 1], [1, 2, 3], [0, 4, 4]] as values" in prompts("mtpb/9/0")[0]
    assert '{ "name": "John", "notes": [3, 5, 4] }' in prompts("mtpb/9/0")[1]
    assert prompts("mtpb/46/0")[-1].endswith('Use the format "{:.1f} {:.1f}".')
    assert "train set size of 80%, test set size of 20%" in prompts("mtpb/46/0")[5]
    # A list of strings prints with Python's quotes.
    assert prompts("mtpb/89/0")[0] == "Initialize a variable \"x\" with ['a', 'b', 'c']."
    assert prompts("mtpb/89/3")[0] == "Initialize a variable \"x\" with [[1, 2, 3], 'a', 'b', 'c']."
    # Embedded newlines stay; the stray key of case 5 is ignored.
    assert "\n# str(4) = 4\n" in prompts("mtpb/17/0")[0]
    assert prompts("mtpb/57/4")[0] == 'Assign an integer array "[2, 2,2,2,2, 10000]" to a variable named "my_array".'


def test_published_quirks_are_kept_for_the_selected_problems(
    data_dir: Path, mtpb_factory: MakeMtpb, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="codegen_eval.benchmarks.mtpb"):
        records = load_records(data_dir / "mtpb" / "mtpb.jsonl")
    assert len(records) == 115
    assert not caplog.records  # loading says nothing: a run warns about the problems it selected only
    warned = {r.id: r.warning(range(5)) for r in records if r.quirks}
    assert sorted(warned, key=int) == ["10", "41", "57", "89"]
    assert "mtpb/10/4 repeats the inputs of mtpb/10/1" in str(warned["10"])
    assert "6 outputs for 5 inputs" in str(warned["57"]) and "mtpb/57/4 has input keys no prompt uses: B" in str(
        warned["57"]
    )
    assert "mtpb/41/1 (null), mtpb/41/4 (null)" in str(warned["41"])
    assert "mtpb/89/0 (dict)" in str(warned["89"])
    # Through the benchmark: only the selected problems, and of those only the quirks of the selected cases.
    mtpb = mtpb_factory(data_dir)
    problems = mtpb.load()

    def warnings(*ids: str) -> list[str]:
        return mtpb.data_warnings([p for p in problems if p.id in ids or p.group in ids])

    assert warnings("mtpb/1", "mtpb/3") == []
    (w,) = warnings("mtpb/1", "mtpb/57")
    assert w.startswith("MTPB problem 57 (") and "6 outputs" in w and "mtpb/57/4" in w
    (w,) = warnings("mtpb/57/0")
    assert "6 outputs" in w and "mtpb/57/4" not in w  # the whole problem's quirk stays, case 4's goes
    assert warnings("mtpb/10/0") == [] and len(warnings("mtpb/10/4")) == 1


# -- validation of the records -----------------------------------------------------------------------------


def _good(pid: str = "3", **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": pid,
        "name": "Toy",
        "description": "A toy.",
        "category": "math",
        "prompts": ["Set x to {a}.", "Print x."],
        "inputs": [{"a": i} for i in range(5)],
        "outputs": list(range(5)),
        "max_gen_length": 128,
    }
    record.update(overrides)
    return record


def _write(tmp_path: Path, *records: dict[str, object] | str) -> Path:
    path = tmp_path / "mtpb.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_valid_synthetic_file_sorted_numerically(tmp_path: Path) -> None:
    records = load_records(_write(tmp_path, _good("10"), _good("9"), _good("2")))
    assert [r.id for r in records] == ["2", "9", "10"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"prompts": None}, "MTPB problem 3 \\(Toy\\): field 'prompts' must be a list"),
        ({"prompts": []}, "'prompts' must be a non-empty list of strings"),
        ({"prompts": ["ok", 3]}, "'prompts' must be a non-empty list of strings"),
        ({"name": None}, "MTPB problem 3: field 'name' must be a string"),
        ({"category": ["math"]}, "field 'category' must be a string"),
        ({"inputs": [{"a": 1}] * 4}, "'inputs' must hold exactly 5 objects \\(got 4 entries\\)"),
        ({"inputs": [{"a": 1}] * 4 + [[1]]}, "'inputs' must hold exactly 5 objects"),
        ({"outputs": [1, 2, 3, 4]}, "4 outputs for 5 inputs"),
        ({"max_gen_length": 0}, "'max_gen_length' must be positive"),
        ({"max_gen_length": "128"}, "field 'max_gen_length' must be a positive integer"),
        ({"max_gen_length": True}, "field 'max_gen_length' must be a positive integer"),
        (
            {"prompts": ["Set x to {a}.", "Use {b}."]},
            "prompt 2 cannot be filled with the inputs of mtpb/3/0 \\(KeyError",
        ),
        ({"prompts": ["Set x to {a}.", "Brace { here"]}, "prompt 2 cannot be filled .* \\(ValueError"),
        ({"prompts": ["Set x to {0}."]}, "prompt 1 cannot be filled .* \\(IndexError"),
        ({"id": "three"}, "MTPB problem has no numeric 'id'"),
        ({"description": 5}, "field 'description' must be a string"),
    ],
)
def test_real_defects_are_usage_errors(tmp_path: Path, override: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_records(_write(tmp_path, _good("1"), _good(**override)))


def test_file_level_defects(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"mtpb.jsonl:2: not valid JSON"):
        load_records(_write(tmp_path, _good("1"), "{not json"))
    with pytest.raises(UsageError, match="problem id 1 appears twice"):
        load_records(_write(tmp_path, _good("1"), _good("1")))
    with pytest.raises(UsageError, match="must be a JSON object"):
        load_records(_write(tmp_path, "[1, 2]"))
    with pytest.raises(UsageError, match="no MTPB problems"):
        load_records(_write(tmp_path, ""))
    with pytest.raises(UsageError, match="cannot read the MTPB data"):
        load_records(tmp_path / "absent.jsonl")


def test_integer_id_and_missing_budget_accepted(tmp_path: Path) -> None:
    record = _good(pid="7")
    record["id"] = 7
    del record["max_gen_length"]
    (r,) = load_records(_write(tmp_path, record))
    assert (r.id, r.max_gen_length, r.max_gen_length_given) == ("7", 256, False)


def test_quirks_of_synthetic_records_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    record = _good(outputs=[*range(5), 99], inputs=[{"a": 0}, {"a": 0}, {"a": 2, "z": 1}, {"a": 3}, {"a": 4}])
    record["extra"] = 1
    with caplog.at_level(logging.WARNING):
        (r,) = load_records(_write(tmp_path, record))
    assert r.outputs == (0, 1, 2, 3, 4) and not caplog.records
    message = r.warning(range(5))
    assert message is not None and message.startswith("MTPB problem 3 (Toy): ")
    for part in ("6 outputs", "mtpb/3/1 repeats the inputs of mtpb/3/0", "mtpb/3/2 has input keys", "extra"):
        assert part in message


def test_sha_mismatch_on_load_is_refused(tmp_path: Path, mtpb_factory: MakeMtpb) -> None:
    (tmp_path / "mtpb").mkdir()
    _write(tmp_path / "mtpb", _good("1"))
    with pytest.raises(UsageError, match=f"expected {MTPB_DATA.sha256}"):
        mtpb_factory(tmp_path).load()


# -- settings ----------------------------------------------------------------------------------------------


def test_settings_validation(data_dir: Path, mtpb_factory: MakeMtpb) -> None:
    with pytest.raises(UsageError, match="benchmark 'mtpb' has no option 'temperature'"):
        mtpb_factory(data_dir, temperature="0.2")
    with pytest.raises(UsageError, match="turns must be 'multi' or 'single'"):
        mtpb_factory(data_dir, "both")
    with pytest.raises(UsageError, match="single_truncation must be 'relaxed' or 'full'"):
        mtpb_factory(data_dir, "single", single_truncation="none")
    assert mtpb_factory(data_dir).timeout_s == 20.0
    from codegen_eval.benchmarks.base import BenchmarkSettings

    assert MTPB(BenchmarkSettings(data_dir=data_dir, timeout_s=3.5)).timeout_s == 3.5


def test_provenance(data_dir: Path, mtpb_factory: MakeMtpb) -> None:
    multi = mtpb_factory(data_dir).provenance()
    assert multi["data_path"] == str(data_dir / "mtpb" / "mtpb.jsonl")
    assert multi["data_sha256"] == MTPB_DATA.sha256
    assert multi["upstream"] == "salesforce/CodeGen@6f09e495f41e006375055239e4bcb18539f3a38b"
    assert multi["turns"] == "multi" and "single_turn_format" not in multi
    assert "second column-0 def" in multi["truncation"] and "column-0 #" in multi["truncation"]
    assert json.loads(multi["eos_markers"])[0] == "<|endoftext|>"
    assert json.loads(multi["prefix"]) == PREFIX
    assert multi["timeout_s"] == "20" and multi["benchmark_version"] == "mtpb-1"

    single = mtpb_factory(data_dir, "single", eos_markers="<|im_end|>").provenance()
    assert single["single_turn_format"] == "reconstruction (not published by the authors)"
    assert single["single_truncation"] == "relaxed"
    assert "def" not in single["truncation"] and "column-0 #" not in single["truncation"]
    assert json.loads(single["eos_markers"]) == ["<|im_end|>"]
    full = mtpb_factory(data_dir, "single", single_truncation="full").provenance()
    assert full["single_truncation"] == "full" and "column-0 #" in full["truncation"]


# -- rendering and assembly --------------------------------------------------------------------------------


def _outputs(*texts: str) -> tuple[TurnOutput, ...]:
    return tuple(TurnOutput(raw=t + "<junk>", text=t) for t in texts)


def test_render_multi(mtpb_multi: MTPB, items_multi: dict[str, Problem]) -> None:
    p = items_multi["mtpb/1/1"]
    assert (
        mtpb_multi.render(p, 0, ()) == PREFIX + '# Assign the string "abcdecadeCADE" to a variable named "my_string".\n'
    )
    history = _outputs('my_string = "abcdecadeCADE"', "my_string = my_string.lower()")
    expected = (
        PREFIX
        + '# Assign the string "abcdecadeCADE" to a variable named "my_string".\n'
        + 'my_string = "abcdecadeCADE"\n\n'
        + '# Lowercase the given string "my_string".\n'
        + "my_string = my_string.lower()\n\n"
        + '# Assign the distinct characters of the string to a variable named "chars".\n'
    )
    assert mtpb_multi.render(p, 2, history) == expected  # the postprocessed text is used, never the raw
    with pytest.raises(ValueError, match="needs 2 earlier outputs"):
        mtpb_multi.render(p, 2, history[:1])
    with pytest.raises(ValueError, match="has 5 turns"):
        mtpb_multi.render(p, 5, _outputs(*"abcde"))


def test_render_single(mtpb_single: MTPB, items_single: dict[str, Problem]) -> None:
    p = items_single["mtpb/1/0"]
    context = mtpb_single.render(p, 0, ())
    assert context.startswith(PREFIX + '# Assign the string "abcde" to a variable named "my_string".\n# Lowercase')
    assert context.endswith("# Print the resulting list of characters.\n")
    assert context.count("\n# ") == 5
    with pytest.raises(ValueError, match="one turn"):
        mtpb_single.render(p, 1, _outputs("x"))


def _sample(problem_id: str, *texts: str, mode: str = "completion", error: str | None = None) -> Sample:
    return Sample(problem_id, 0, _outputs(*texts), mode=mode, error=error)  # type: ignore[arg-type]


def test_program_is_the_final_history(mtpb_multi: MTPB, items_multi: dict[str, Problem]) -> None:
    p = items_multi["mtpb/3/2"]
    texts = [f"v{i} = {i}" for i in range(len(p.turns))]
    history = _outputs(*texts)
    program = mtpb_multi.program(p, _sample(p.id, *texts))
    last = len(texts) - 1
    assert program == mtpb_multi.render(p, last, history[:last]) + texts[last] + "\n\n"


def test_single_program_is_prompt_plus_text(mtpb_single: MTPB, items_single: dict[str, Problem]) -> None:
    p = items_single["mtpb/3/2"]
    assert mtpb_single.program(p, _sample(p.id, "x = 1\nprint(x)\n")) == mtpb_single.render(p, 0, ()) + (
        "x = 1\nprint(x)\n"
    )


def test_sample_shape_is_checked(
    mtpb_multi: MTPB, mtpb_single: MTPB, items_multi: dict[str, Problem], items_single: dict[str, Problem]
) -> None:
    p = items_multi["mtpb/1/0"]
    with pytest.raises(UsageError, match="has 1 turns, multi-turn MTPB expects 5"):
        mtpb_multi.program(p, _sample(p.id, "x"))
    with pytest.raises(UsageError, match="has 5 turns, single-turn MTPB expects 1"):
        mtpb_single.program(items_single["mtpb/1/0"], _sample(p.id, *"abcde"))
    # A failed generation still assembles (its verdict is GENERATION_ERROR); missing turns are empty.
    expected = program_multi(case_of(p), ["x = 1", "", "", "", ""])
    assert mtpb_multi.program(p, _sample(p.id, "x = 1", error="boom")) == expected


# -- reference solutions, protocol extras --------------------------------------------------------------------


def test_references_survive_postprocess(
    mtpb_multi: MTPB, mtpb_single: MTPB, items_multi: dict[str, Problem], items_single: dict[str, Problem]
) -> None:
    """The reference backend's text goes through postprocess like a model's: it must come out unchanged."""
    for bench, items in ((mtpb_multi, items_multi), (mtpb_single, items_single)):
        for p in items.values():
            reference = bench.reference(p)
            assert reference is not None and len(reference) == len(p.turns), p.id
            for t, text in enumerate(reference):
                assert bench.postprocess(p, t, text) == text, (bench.turns, p.id, t)


def _code_lines(program: str) -> list[str]:
    return [line for line in program.splitlines() if line.strip() and not line.startswith("# ")]


def test_single_reference_program_equals_multi_modulo_comments(
    mtpb_multi: MTPB, mtpb_single: MTPB, items_multi: dict[str, Problem], items_single: dict[str, Problem]
) -> None:
    for pid, multi in items_multi.items():
        single = items_single[pid]
        multi_ref, single_ref = mtpb_multi.reference(multi), mtpb_single.reference(single)
        assert multi_ref is not None and single_ref is not None
        multi_program = mtpb_multi.program(multi, _sample(pid, *multi_ref))
        single_program = mtpb_single.program(single, _sample(pid, *single_ref))
        assert _code_lines(single_program) == _code_lines(multi_program), pid
        assert "\n\n\n" not in single_ref[0]
    # Filled like the prompts: the case's values, `{{ }}` as braces.
    (code,) = mtpb_single.reference(items_single["mtpb/9/0"]) or ("",)
    assert code.startswith('my_notes = dict(zip(["Kevin", "John", "Mike", "Mitch"], [[3, 5, 4], [3, 1, 1],')
    assert '{"name": student["name"]' in code


def test_reference_missing_for_unknown_problem(mtpb_multi: MTPB, items_multi: dict[str, Problem]) -> None:
    p = items_multi["mtpb/1/0"]
    stranger = Problem("mtpb/999/0", "mtpb/999", p.turns, replace(case_of(p), problem_id="999"))
    assert mtpb_multi.reference(stranger) is None


def test_scorable_subset(mtpb_multi: MTPB, items_multi: dict[str, Problem]) -> None:
    flawed = {"9", "23", "31", "38", "41", "46", "55", "56", "87", "89", "94"}  # known_issues.json
    subsets = mtpb_multi.subsets()
    assert set(subsets) == {"scorable"}
    assert subsets["scorable"] == {p.group for p in items_multi.values()} - {f"mtpb/{i}" for i in flawed}
    assert len(subsets["scorable"]) == 104


def test_default_sampling_is_the_authors(mtpb_multi: MTPB) -> None:
    for n in (1, 5):
        sampling = mtpb_multi.default_sampling(n)
        assert (sampling.temperature, sampling.top_p) == (0.2, 0.95)


def test_chat_mode_messages(
    mtpb_multi: MTPB, mtpb_single: MTPB, items_multi: dict[str, Problem], items_single: dict[str, Problem]
) -> None:
    p = items_multi["mtpb/1/0"]
    prompts = [t.instruction for t in p.turns]
    first = mtpb_multi.instruction(p, 0)
    assert first.endswith(f"Step 1: {prompts[0]}") and "only the new code" in first and "```python" in first
    assert [mtpb_multi.instruction(p, t) for t in range(1, 5)] == [f"Step {t + 1}: {prompts[t]}" for t in range(1, 5)]
    single = mtpb_single.instruction(items_single["mtpb/1/0"], 0)
    assert single.endswith("\n".join(f"{i}. {q}" for i, q in enumerate(prompts, 1)))
    assert "complete program" in single


def test_chat_mode_program_is_assembled_like_a_completion(
    mtpb_multi: MTPB, mtpb_single: MTPB, items_multi: dict[str, Problem], items_single: dict[str, Problem]
) -> None:
    p = items_multi["mtpb/1/0"]
    codes = ["a = 1", "b = 2", "c = a + b", "d = c", "print(d)"]
    assert mtpb_multi.program(p, _sample(p.id, *codes, mode="chat")) == program_multi(case_of(p), codes)
    s = items_single["mtpb/1/0"]
    assert mtpb_single.program(s, _sample(s.id, "print(1)", mode="chat")) == program_single(case_of(s), "print(1)")


def test_solution_mode_sample_is_the_whole_program(mtpb_multi: MTPB, items_multi: dict[str, Problem]) -> None:
    p = items_multi["mtpb/1/0"]
    program = "x = 1\nprint(x)\n"
    assert mtpb_multi.program(p, _sample(p.id, program, mode="solution")) == program
    with pytest.raises(UsageError, match="must have one text"):
        mtpb_multi.program(p, _sample(p.id, "a", "b", mode="solution"))
