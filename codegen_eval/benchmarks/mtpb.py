"""MTPB, the CodeGen paper's multi-turn benchmark: fill and render turns, truncate, assemble, judge."""

# The protocol (docs/mtpb.md, from the authors' mtpb.jsonl, mtpb_sample.py and mtpb_exec.py): every
# (problem, test case) pair is one item whose turns are the problem's prompts filled with that case's inputs;
# each turn is shown as a `# ...` comment after the history so far, and the model's continuation is
# truncated by the authors' rules before it joins the history. The program scored is the final history,
# checked by the authors' print-based checker (codegen_eval.benchmarks.mtpb_scoring).

from __future__ import annotations

import json
import logging
import re
import string
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from codegen_eval.benchmarks.base import BenchmarkBase, BenchmarkSettings, FullBenchmark, StopHints
from codegen_eval.data import DatasetSpec, asset_path, resolve_dataset
from codegen_eval.errors import UsageError
from codegen_eval.records import (
    ExecutionJob,
    ExecutionResult,
    ExitKind,
    Outcome,
    Problem,
    Sample,
    SamplingParams,
    Turn,
    TurnOutput,
    Verdict,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

UPSTREAM_REPO = "salesforce/CodeGen"
UPSTREAM_COMMIT = "6f09e495f41e006375055239e4bcb18539f3a38b"
MTPB_DATA = DatasetSpec(
    name="mtpb",
    filename="mtpb.jsonl",
    sha256="3ab79ddb160f484a63491330ba72204930d56cc946f7c0c5fb469622a941f89c",
    url=(f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/codegen1/benchmark/mtpb.jsonl"),
    hint=f"the MTPB data (mtpb.jsonl from {UPSTREAM_REPO} at {UPSTREAM_COMMIT[:12]})",
    packaged=("mtpb", "mtpb.jsonl"),  # benchmarks/mtpb/mtpb.jsonl, byte-identical to the authors' file
)

PREFIX = "# Import libraries.\n\nimport numpy as np\n\n"
N_CASES = 5
DEFAULT_MAX_GEN_LENGTH = 256  # the authors' sampler default, used where a problem has none (ids 39-45)
DEFAULT_TIMEOUT_S = 20.0  # the authors' per-program limit
# The authors cut at `<|endoftext|>` (CodeGen's marker, decoded with special tokens); other model families
# end text with these, and a marker left in a program is a syntax error.
DEFAULT_EOS_MARKERS = ("<|endoftext|>", "<|im_end|>", "</s>", "<|end|>", "<|eot_id|>")
SINGLE_TURN_NOTE = "reconstruction (not published by the authors)"
OPTIONS = ("eos_markers", "single_truncation")

# Column 0 is what the authors' `re.MULTILINE` `^` means: the start of the text or just after a "\n".
_PRINT_LINE = re.compile(r"^print", re.MULTILINE)
_DEF_LINE = re.compile(r"^def", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^#", re.MULTILINE)
_TRIPLE_QUOTE_LINE = re.compile(r"^(?:'''|\"\"\")", re.MULTILINE)
_BLANK_LINES = "\n\n\n"


# --------------------------------------------------------------------------------------------------------
# Truncation


@dataclass(frozen=True, slots=True)
class TruncationRules:
    """Which of the authors' cuts apply. All on = the authors' multi-turn rules."""

    second_print: bool = True
    second_def: bool = True
    comment_line: bool = True
    eos_markers: tuple[str, ...] = DEFAULT_EOS_MARKERS

    def describe(self) -> str:
        parts = []
        if self.second_print:
            parts.append("second column-0 print")
        if self.second_def:
            parts.append("second column-0 def")
        earliest = ["column-0 #"] if self.comment_line else []
        earliest += ["end markers", "column-0 ''' or \"\"\"", "\\n\\n\\n"]
        return f"cut before the {', then the '.join(parts)}, then at the earliest of: {', '.join(earliest)}"


def truncate(text: str, rules: TruncationRules) -> str:
    """The authors' truncation of one continuation, in their order: print rule, def rule, earliest cut.

    "A line starts with print" is a literal prefix at column 0 (so `printer = 1` counts too, as in theirs).
    """
    if rules.second_print:
        text = _cut_before_second(text, _PRINT_LINE)
    if rules.second_def:
        text = _cut_before_second(text, _DEF_LINE)
    cuts = [len(text)]
    if rules.comment_line and (m := _COMMENT_LINE.search(text)):
        cuts.append(m.start())
    if m := _TRIPLE_QUOTE_LINE.search(text):
        cuts.append(m.start())
    for marker in (*rules.eos_markers, _BLANK_LINES):
        if marker and (i := text.find(marker)) >= 0:
            cuts.append(i)
    return text[: min(cuts)]


def _cut_before_second(text: str, pattern: re.Pattern[str]) -> str:
    matches = pattern.finditer(text)
    if next(matches, None) is None:
        return text
    second = next(matches, None)
    return text if second is None else text[: second.start()]


def stop_hints(rules: TruncationRules) -> StopHints:
    """Hints that end generation no earlier than postprocess would cut.

    Each hint's first occurrence lies at or after the final cut, so the text up to and including it truncates
    exactly like the whole continuation. The column-0 hints ("\\n#", "\\n'''", '\\n\"\"\"') need the backend to keep
    the stop string in the returned text (as transformers' stop_strings do): the cut lies after its newline, so a
    backend that strips it (the OpenAI API) would lose that newline and change the next turn's prompt. "\\n\\n\\n"
    and the end markers are safe either way. "\\n#" is offered only where the #-line cut applies (not in relaxed
    single).
    """
    strippable = tuple(dict.fromkeys(h for h in ("\n\n\n", *rules.eos_markers) if h))
    kept_only = [*(["\n#"] if rules.comment_line else []), "\n'''", '\n"""']
    return StopHints(strippable, tuple(dict.fromkeys(h for h in kept_only if h not in strippable)))


# --------------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True, slots=True)
class Quirk:
    """A defect of the published data that does not stop a run."""

    cases: frozenset[int]  # the test cases it concerns; empty: the whole problem
    text: str


@dataclass(frozen=True, slots=True)
class MtpbRecord:
    """One validated line of mtpb.jsonl."""

    id: str
    name: str
    category: str
    templates: tuple[str, ...]
    inputs: tuple[Mapping[str, object], ...]  # exactly N_CASES
    outputs: tuple[object, ...]  # the first N_CASES golds (extra published ones dropped)
    max_gen_length: int  # tokens per turn
    max_gen_length_given: bool  # False: the authors' default was used
    # Known quirks of the published data (Quirk): warned about only when a run selects the problem
    quirks: tuple[Quirk, ...] = ()

    def warning(self, cases: Collection[int]) -> str | None:
        """The quirks that concern `cases` (the selected test cases), as one warning line; None if none do."""
        texts = [q.text for q in self.quirks if not q.cases or not q.cases.isdisjoint(cases)]
        return f"MTPB problem {self.id} ({self.name}): {'; '.join(texts)}" if texts else None


@dataclass(frozen=True, slots=True)
class MtpbCase:
    """Problem.payload of one MTPB item: one problem with one of its five test cases."""

    problem_id: str  # the original id, "1".."115"
    case: int  # 0..4
    category: str
    prompts: tuple[str, ...]  # filled with this case's inputs
    inputs: Mapping[str, object]
    gold: object  # JSON value the last print must match
    max_gen_length_given: bool


def fill(template: str, inputs: Mapping[str, object]) -> str:
    """The authors' filling: `template.format(**case)`; values go in as str(value), `{{ }}` are braces."""
    return template.format(**inputs)


def load_records(path: Path) -> list[MtpbRecord]:
    """Parse and validate an MTPB file. Real defects raise UsageError; known quirks of the published file
    (extra golds, unused or repeated inputs, golds the checker can never accept) are kept in each record's
    `quirks`, for a warning when a run selects the problem (MTPB.data_warnings)."""
    records: list[MtpbRecord] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the MTPB data {path}: {e}") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        record = _validate(raw, f"{path}:{lineno}")
        if record.id in seen:
            raise UsageError(f"{path}:{lineno}: MTPB problem id {record.id} appears twice")
        seen.add(record.id)
        records.append(record)
    if not records:
        raise UsageError(f"{path}: no MTPB problems in the file")
    # The authors sort problems by their numeric id.
    return sorted(records, key=lambda r: int(r.id))


def _validate(raw: object, where: str) -> MtpbRecord:
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: an MTPB line must be a JSON object")
    pid = raw.get("id")
    if isinstance(pid, int) and not isinstance(pid, bool):
        pid = str(pid)
    if not isinstance(pid, str) or not pid.isdecimal():
        raise UsageError(f"{where}: MTPB problem has no numeric 'id' (got {pid!r})")
    label = f"MTPB problem {pid}" + (f" ({raw['name']})" if isinstance(raw.get("name"), str) else "")

    def need(key: str, kind: type[T], what: str) -> T:
        value = raw.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise UsageError(f"{where}: {label}: field '{key}' must be {what} (got {value!r:.60})")
        return value

    name = need("name", str, "a string")
    category = need("category", str, "a string")
    if not isinstance(raw.get("description", ""), str):
        raise UsageError(f"{where}: {label}: field 'description' must be a string")
    templates = need("prompts", list, "a list of prompt templates")
    inputs = need("inputs", list, f"a list of {N_CASES} test-case inputs")
    outputs = need("outputs", list, f"a list of {N_CASES} expected outputs")
    if not templates or not all(isinstance(t, str) for t in templates):
        raise UsageError(f"{where}: {label}: 'prompts' must be a non-empty list of strings")
    if len(inputs) != N_CASES or not all(
        isinstance(case, dict) and all(isinstance(k, str) for k in case) for case in inputs
    ):
        raise UsageError(f"{where}: {label}: 'inputs' must hold exactly {N_CASES} objects (got {len(inputs)} entries)")
    if len(outputs) < N_CASES:
        raise UsageError(f"{where}: {label}: {len(outputs)} outputs for {N_CASES} inputs")
    given = "max_gen_length" in raw
    budget = need("max_gen_length", int, "a positive integer") if given else DEFAULT_MAX_GEN_LENGTH
    if budget <= 0:
        raise UsageError(f"{where}: {label}: 'max_gen_length' must be positive (got {budget})")

    for c, case in enumerate(inputs):
        for t, template in enumerate(templates):
            try:
                fill(template, case)
            except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
                raise UsageError(
                    f"{where}: {label}: prompt {t + 1} cannot be filled with the inputs of mtpb/{pid}/{c} "
                    f"({type(e).__name__}: {e})"
                ) from None

    return MtpbRecord(
        id=pid,
        name=name,
        category=category,
        templates=tuple(templates),
        inputs=tuple(MappingProxyType(dict(case)) for case in inputs),
        outputs=tuple(outputs[:N_CASES]),
        max_gen_length=budget,
        max_gen_length_given=given,
        quirks=tuple(_quirks(pid, templates, inputs, outputs, raw)),
    )


_KNOWN_FIELDS = {"id", "name", "description", "category", "prompts", "inputs", "outputs", "max_gen_length"}


def _quirks(
    pid: str, templates: list[str], inputs: list[dict[str, object]], outputs: list[object], raw: dict[str, object]
) -> list[Quirk]:
    """Defects of the published data that do not stop a run, worded for a warning."""
    quirks = []
    if len(outputs) > N_CASES:
        quirks.append(
            Quirk(
                frozenset(),
                f"{len(outputs)} outputs for {N_CASES} inputs; outputs after the {N_CASES}th are ignored "
                "(the authors pair them with zip)",
            )
        )
    used = {
        re.match(r"[^.\[]*", field).group()  # type: ignore[union-attr]  # always matches
        for template in templates
        for _, field, _, _ in string.Formatter().parse(template)
        if field is not None
    }
    for c, case in enumerate(inputs):
        unused = sorted(set(case) - used)
        if unused:
            quirks.append(Quirk(frozenset({c}), f"mtpb/{pid}/{c} has input keys no prompt uses: {', '.join(unused)}"))
    canon = [json.dumps(case, sort_keys=True) for case in inputs]
    for c, key in enumerate(canon):
        first = canon.index(key)
        if first != c:
            quirks.append(Quirk(frozenset({c}), f"mtpb/{pid}/{c} repeats the inputs of mtpb/{pid}/{first}"))
    never = {
        c: f"mtpb/{pid}/{c} ({'null' if gold is None else type(gold).__name__})"
        for c, gold in enumerate(outputs[:N_CASES])
        if gold is None or isinstance(gold, dict)
    }
    if never:
        text = f"golds the authors' checker can never accept: {', '.join(never.values())}"
        quirks.append(Quirk(frozenset(never), text))
    extra = sorted(set(raw) - _KNOWN_FIELDS)
    if extra:
        quirks.append(Quirk(frozenset(), f"unknown fields ignored: {', '.join(extra)}"))
    return quirks


def expand(records: Sequence[MtpbRecord]) -> list[Problem]:
    """One Problem per (problem, test case): id mtpb/<id>/<case>, group mtpb/<id>, turns = filled prompts."""
    problems = []
    for record in records:
        for c, case in enumerate(record.inputs):
            prompts = tuple(fill(t, case) for t in record.templates)
            payload = MtpbCase(
                problem_id=record.id,
                case=c,
                category=record.category,
                prompts=prompts,
                inputs=case,
                gold=record.outputs[c],
                max_gen_length_given=record.max_gen_length_given,
            )
            problems.append(
                Problem(
                    id=f"mtpb/{record.id}/{c}",
                    group=f"mtpb/{record.id}",
                    turns=tuple(Turn(p, record.max_gen_length) for p in prompts),
                    payload=payload,
                    category=record.category,
                )
            )
    return problems


# --------------------------------------------------------------------------------------------------------
# Rendering and program assembly (pure functions of the payload, so tests and tools can use them directly)


def comment(prompt: str) -> str:
    """How one turn's prompt appears in the context (the authors' `# {prompt}\\n`)."""
    return f"# {prompt}\n"


def render_multi(case: MtpbCase, turn: int, texts: Sequence[str]) -> str:
    """Context for `turn`: prefix, then each earlier turn's comment + postprocessed text + a blank line."""
    if not 0 <= turn < len(case.prompts):
        raise ValueError(f"mtpb/{case.problem_id} has {len(case.prompts)} turns, not turn {turn}")
    if len(texts) != turn:
        raise ValueError(f"turn {turn} needs {turn} earlier outputs, got {len(texts)}")
    parts = [PREFIX]
    for prompt, text in zip(case.prompts[:turn], texts, strict=True):
        parts += [comment(prompt), text, "\n\n"]
    parts.append(comment(case.prompts[turn]))
    return "".join(parts)


def render_single(case: MtpbCase) -> str:
    """The single-turn reconstruction: prefix, then every prompt as a comment line, then the continuation."""
    return PREFIX + "".join(comment(p) for p in case.prompts)


def load_references(path: Path) -> dict[str, tuple[str, ...]]:
    """benchmarks/mtpb/reference_solutions.json: {problem id: [code template per turn, ...]}; {} if absent."""
    if not path.is_file():
        log.warning("mtpb: no reference solutions at %s", path)
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and all(isinstance(t, str) for t in v) for v in raw.values()
    ):
        raise UsageError(f"{path}: expected {{problem id: [code template per turn, ...]}}")
    return {str(k): tuple(v) for k, v in raw.items()}


# Chat mode (instruct models; not paper-comparable): the user messages. The code extracted from each reply takes the
# place of a continuation, so the program is assembled exactly as in completion mode (prefix, comments, code).
CHAT_FIRST_TURN = (
    "We will write a Python program step by step. Each message gives the next step. Reply with only the new code "
    "for that step, in one ```python code block. The code of earlier steps has already run: its variables and "
    "imports (numpy as np) are available.\n\nStep 1: {prompt}"
)
CHAT_NEXT_TURN = "Step {step}: {prompt}"
CHAT_SINGLE = (
    "Write a Python program that does the following, in order. Reply with the complete program in one ```python "
    "code block (numpy is imported as np).\n\n{steps}"
)


def chat_instruction(case: MtpbCase, turn: int, single: bool) -> str:
    """The user message for `turn` (multi-turn) or the only one (single-turn) in chat mode."""
    if single:
        return CHAT_SINGLE.format(steps="\n".join(f"{i}. {p}" for i, p in enumerate(case.prompts, 1)))
    if turn == 0:
        return CHAT_FIRST_TURN.format(prompt=case.prompts[0])
    return CHAT_NEXT_TURN.format(step=turn + 1, prompt=case.prompts[turn])


def program_multi(case: MtpbCase, texts: Sequence[str]) -> str:
    """The authors' program: the final history (prefix, and per turn comment + text + blank line)."""
    return "".join([PREFIX, *(comment(p) + t + "\n\n" for p, t in zip(case.prompts, texts, strict=True))])


def program_single(case: MtpbCase, text: str) -> str:
    return render_single(case) + text


# --------------------------------------------------------------------------------------------------------
# The benchmark


class MTPB(BenchmarkBase):
    """The Multi-Turn Programming Benchmark (115 problems x 5 test cases = 575 items)."""

    name = "mtpb"
    preload: tuple[str, ...] = ("numpy",)  # every program starts with PREFIX: `import numpy as np`
    # Bump whenever a prompt, a truncation rule, the program assembly or the scoring changes.
    version = "mtpb-1"

    def __init__(self, settings: BenchmarkSettings) -> None:
        unknown = sorted(set(settings.options) - set(OPTIONS))
        if unknown:
            raise UsageError(
                f"benchmark 'mtpb' has no option {', '.join(repr(k) for k in unknown)} (options: {', '.join(OPTIONS)})"
            )
        self.data_dir = settings.data_dir
        self.timeout_s = DEFAULT_TIMEOUT_S if settings.timeout_s is None else settings.timeout_s
        if "eos_markers" in settings.options:
            # Comma-separated; an empty value turns the marker cut off (for text decoded without specials).
            markers = tuple(m for m in settings.options["eos_markers"].split(",") if m)
        else:
            markers = DEFAULT_EOS_MARKERS
        single_truncation = settings.options.get("single_truncation", "relaxed")
        if single_truncation not in ("relaxed", "full"):
            raise UsageError(f"mtpb: single_truncation must be 'relaxed' or 'full', not {single_truncation!r}")
        self.single_truncation = single_truncation
        self.rules = TruncationRules(eos_markers=markers)

    def single_turn_form(self) -> MtpbSingleTurn:
        """`--turns single` (benchmarks.transforms.SingleTurn): every prompt at once."""
        return MtpbSingleTurn(self.rules.eos_markers, self.single_truncation)

    # -- data ---------------------------------------------------------------------------------------------

    @cached_property
    def data_path(self) -> Path:
        return resolve_dataset(MTPB_DATA, self.data_dir)

    @cached_property
    def records(self) -> list[MtpbRecord]:
        return load_records(self.data_path)

    def load(self) -> list[Problem]:
        return expand(self.records)

    def data_warnings(self, problems: Sequence[Problem]) -> list[str]:
        """The data's quirks for the selected problems only (a run of mtpb/3 hears nothing about mtpb/57)."""
        cases: dict[str, set[int]] = defaultdict(set)
        for p in problems:
            cases[p.group].add(_case(p).case)
        warnings = (r.warning(cases[f"mtpb/{r.id}"]) for r in self.records if f"mtpb/{r.id}" in cases)
        return [w for w in warnings if w is not None]

    def subsets(self) -> Mapping[str, frozenset[str]]:
        """`scorable`: the problems none of whose cases has a known issue (benchmarks/mtpb/known_issues.json)
        for any scorer — wrong golds, unpublished CSV files, random golds, golds the checker cannot accept."""
        flawed = {f"mtpb/{issue_id}" for issue_id in self._known_issue_ids}
        if not flawed:
            return {}
        return {"scorable": frozenset(f"mtpb/{r.id}" for r in self.records) - flawed}

    @cached_property
    def _known_issue_ids(self) -> frozenset[str]:
        path = asset_path("mtpb", "known_issues.json")
        if not path.is_file():
            log.warning("mtpb: no known-issues file at %s; no 'scorable' subset", path)
            return frozenset()
        try:
            issues = json.loads(path.read_text(encoding="utf-8"))
            return frozenset(str(issue["id"]) for issue in issues)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise UsageError(f"cannot read {path}: {e!r}") from None

    # -- generation ---------------------------------------------------------------------------------------

    def default_sampling(self, n: int) -> SamplingParams:
        # The authors' sampler: temperature 0.2, top-p 0.95, whatever the number of samples.
        return SamplingParams(temperature=0.2, top_p=0.95)

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        return render_multi(_case(problem), turn, [h.text for h in history])

    def instruction(self, problem: Problem, turn: int) -> str:
        """Chat mode: each turn is a user message and the conversation continues (CHAT_* above)."""
        return chat_instruction(_case(problem), turn, single=False)

    def stop_hints(self, problem: Problem, turn: int) -> StopHints:
        return stop_hints(self.rules)

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str:
        return truncate(raw, self.rules)

    def reference(self, problem: Problem) -> tuple[str, ...] | None:
        """Known-good code per turn from benchmarks/mtpb/reference_solutions.json, filled with the case."""
        case = _case(problem)
        templates = self._references.get(case.problem_id)
        if templates is None:
            return None
        where = f"{self._references_path}: problem {case.problem_id}"
        if len(templates) != len(case.prompts):
            raise UsageError(f"{where} has {len(templates)} turns of code, the problem has {len(case.prompts)}")
        try:
            return tuple(fill(t, case.inputs) for t in templates)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
            raise UsageError(f"{where}: cannot fill with the inputs of {problem.id} ({e!r})") from None

    @cached_property
    def _references_path(self) -> Path:
        return asset_path("mtpb", "reference_solutions.json")

    @cached_property
    def _references(self) -> dict[str, tuple[str, ...]]:
        return load_references(self._references_path)

    # -- execution ----------------------------------------------------------------------------------------

    def program(self, problem: Problem, sample: Sample) -> str:
        """The program the authors would score for this sample (before the checker is wrapped around it)."""
        if sample.mode == "solution":
            # A whole program already (e.g. the "completions" field of the authors' own sample files).
            if len(sample.turns) != 1:
                raise UsageError(f"{problem.id}: a whole-program sample must have one text, not {len(sample.turns)}")
            return sample.turns[0].text
        # Completion: the postprocessed continuations; chat: the code extracted from each reply.
        texts = [t.text for t in sample.turns]
        expected = len(problem.turns)
        if len(texts) != expected:
            if sample.error is None:
                raise UsageError(
                    f"{problem.id}: sample {sample.index} has {len(texts)} turns, multi-turn MTPB "
                    f"expects {expected} (were the samples generated with another --turns?)"
                )
            texts = (texts + [""] * expected)[:expected]
        return program_multi(_case(problem), texts)

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob:
        from codegen_eval.benchmarks.mtpb_scoring import build_program

        source = build_program(self.program(problem, sample), _case(problem).gold, nonce)
        return ExecutionJob(program=source, timeout_s=self.timeout_s)

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict:
        from codegen_eval.benchmarks.mtpb_scoring import parse_verdict

        if sample.error is not None:
            return Verdict(Outcome.GENERATION_ERROR, sample.error, _scores(False, False))
        exited_ok = result.kind is ExitKind.EXITED and result.exit_code == 0
        # The checker's lines carry the recorded print calls (a short repr of the value), never the printed text,
        # which goes to a swallowed stdout as in the authors' harness: a long print cannot change a verdict. Only
        # output the program wrote around the checker (to fd 1 directly) can push stdout past what is kept; the
        # checker's final line then sits in the kept tail.
        verdict = parse_verdict("\n".join(result.stdout_lines()), nonce, exited_ok)
        tail = result.stdout_tail.splitlines()
        if result.stdout_truncated and not any(line.startswith(f"{nonce} ") for line in tail):
            # Stdout was truncated and none of the checker's lines is in its tail: the last print is unknown.
            detail = f"stdout truncated, the last print is unknown; {verdict.detail}"
            return Verdict(Outcome.OUTPUT_LIMIT, detail, _scores(False, False))
        scores = _scores(verdict.reference, verdict.strict)
        if verdict.reference:
            # As in the authors' checker, a right value printed before a crash or a hang still passes.
            return Verdict(Outcome.PASSED, verdict.detail, scores)
        return Verdict(_failure_outcome(result, verdict.finished), verdict.detail, scores)

    def provenance(self) -> Mapping[str, str]:
        return {
            "benchmark_version": self.version,
            "data_path": str(self.data_path),
            "data_sha256": MTPB_DATA.sha256,
            "data_url": MTPB_DATA.url,
            "upstream": f"{UPSTREAM_REPO}@{UPSTREAM_COMMIT}",
            "turns": "multi",
            "truncation": self.rules.describe(),
            "eos_markers": json.dumps(list(self.rules.eos_markers)),
            "prefix": json.dumps(PREFIX),
            "max_gen_length_default": str(DEFAULT_MAX_GEN_LENGTH),
            "timeout_s": f"{self.timeout_s:g}",
            "reference_solutions": str(self._references_path),
        }


class MtpbSingleTurn:
    """MTPB's single-turn form (a reconstruction, not published by the authors): every prompt as a comment line
    after the prefix, then the continuation; the truncation relaxed unless `single_truncation=full`."""

    label = "MTPB"

    def __init__(self, eos_markers: tuple[str, ...], truncation: str) -> None:
        self.truncation = truncation
        # Relaxed: measured, under the #-line cut every single-turn continuation of a small model was empty,
        # because it first writes another `# ...` line; several functions in one answer are normal too.
        full = truncation != "relaxed"
        self.rules = TruncationRules(second_def=full, comment_line=full, eos_markers=eos_markers)

    def render(self, problem: Problem) -> str:
        return render_single(_case(problem))

    def instruction(self, problem: Problem) -> str:
        return chat_instruction(_case(problem), 0, single=True)

    def postprocess(self, problem: Problem, raw: str) -> str:
        return truncate(raw, self.rules)

    def stop_hints(self, problem: Problem) -> StopHints:
        return stop_hints(self.rules)

    def provenance(self) -> Mapping[str, str]:
        return {
            "turns": "single",
            "truncation": self.rules.describe(),
            "single_turn_format": SINGLE_TURN_NOTE,
            "single_truncation": self.truncation,
        }


def _case(problem: Problem) -> MtpbCase:
    if not isinstance(problem.payload, MtpbCase):
        raise TypeError(f"{problem.id} is not an MTPB item")
    return problem.payload


def _scores(reference: bool, strict: bool) -> tuple[tuple[str, bool], ...]:
    return (("reference", reference), ("strict", strict))


def _failure_outcome(result: ExecutionResult, finished: bool) -> Outcome:
    if result.kind is ExitKind.SIGNALED:
        return Outcome.KILLED
    if result.kind is not ExitKind.EXITED:
        return Outcome(result.kind.value)  # a limit: the outcome of the same name
    if result.exit_code != 0 or not finished:
        return Outcome.ERROR
    return Outcome.FAILED


if TYPE_CHECKING:  # lets mypy check that MTPB satisfies the Benchmark protocol and its single-turn form
    from codegen_eval.benchmarks.transforms import SingleTurnForm

    def _conforms(settings: BenchmarkSettings) -> FullBenchmark:
        return MTPB(settings)

    def _form(benchmark: MTPB) -> SingleTurnForm:
        return benchmark.single_turn_form()
