"""The sample viewer's data: every sample of a run with its prompts, completions, verdict and test, as compact JSON."""

# One JSON document for the whole report, embedded in the page as <script type="application/json">. Every text goes
# into one string table and is referred to by its index, so what samples share (a HumanEval prompt and test across
# n = 100 samples, an identical completion, a traceback) is stored once. A later turn's prompt that continues the
# previous turn's prompt and completion (MTPB's multi-turn context) is stored as that continuation only.
# Prompts and tests are re-rendered by the benchmark from run.json's config; when the benchmark or its data cannot
# be loaded, the viewer shows the completions and verdicts without them and says why.

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codegen_eval.benchmarks.base import FullBenchmark
from codegen_eval.compare import LoadedRun
from codegen_eval.errors import UsageError
from codegen_eval.records import Outcome, Problem, Sample, TurnOutput
from codegen_eval.rundir import ExecutionRecord, RunDir
from codegen_eval.summaries import PRIMARY

NOT_EXECUTED = "not executed"
STDERR_KEEP = 3000  # characters of a stderr tail kept per sample
MODES = ("completion", "chat", "solution")
_MARK = "\u2063codegen-eval-code-under-test\u2063"
HARNESS_MIN_LINES = 8  # a line prefix shared by every test is shown apart (MTPB's checker) from this length on


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        i = self._index.get(text)
        if i is None:
            i = self._index[text] = len(self.table)
            self.table.append(text)
        return i


@dataclass(frozen=True, slots=True)
class _Loaded:
    benchmark: FullBenchmark
    problems: dict[str, Problem]
    note: str


def _load_benchmark(run: LoadedRun) -> _Loaded | str:
    """The run's benchmark as run.json configures it, or a line saying why not."""
    if not run.config:
        return "prompts and tests are not shown: no run.json (a bare summary)"
    from codegen_eval.config import from_mapping
    from codegen_eval.runner import build_benchmark

    # The run reported its data's known issues when it ran; the report does not repeat them.
    quiet = logging.getLogger("codegen_eval.benchmarks")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        config = from_mapping(run.config, str(run.path / "run.json"))
        benchmark = build_benchmark(config)
        problems = {p.id: p for p in benchmark.load()}
    except (UsageError, OSError, ValueError) as e:
        return f"prompts and tests are not shown: the benchmark could not be loaded ({e})"
    finally:
        quiet.setLevel(level)
    note = ""
    if run.benchmark_version and benchmark.version != run.benchmark_version:
        note = (
            f"prompts and tests rendered by benchmark version {benchmark.version}; the run used {run.benchmark_version}"
        )
    return _Loaded(benchmark, problems, note)


def _latest_samples(run: LoadedRun) -> dict[tuple[str, int], Sample]:
    if not run.path.is_dir():
        return {}
    return {(s.problem_id, s.index): s for s in RunDir(run.path).samples()}


def _test_text(benchmark: FullBenchmark, problem: Problem, nonce: str) -> str:
    """What a program of this problem is checked by: the job built around a placeholder sample, less the code under
    test (the text after it when the job extends it, else the job with the code's literal replaced)."""
    placeholder = Sample(problem.id, 0, tuple(TurnOutput(_MARK, _MARK) for _ in problem.turns))
    job = benchmark.build_job(problem, placeholder, nonce).program
    # `program` (the code under test, without the checks) is not in the Benchmark protocol; both benchmarks have it.
    program = getattr(benchmark, "program", None)
    code = program(problem, placeholder) if callable(program) else None
    if isinstance(code, str) and job.startswith(code):
        return job[len(code) :].lstrip("\n")
    if isinstance(code, str) and repr(code) in job:
        return job.replace(repr(code), "«the code under test»")
    return job.replace(_MARK, "«completion»")


def _common_head(texts: Sequence[str]) -> str:
    """The lines every text starts with, when there are at least HARNESS_MIN_LINES of them."""
    if len(texts) < 2:
        return ""
    split = [t.splitlines(keepends=True) for t in texts]
    head: list[str] = []
    for lines in zip(*split, strict=False):
        if any(line != lines[0] for line in lines):
            break
        head.append(lines[0])
    return "".join(head) if len(head) >= HARNESS_MIN_LINES else ""


def _prompts(
    benchmark: FullBenchmark, problem: Problem, sample: Sample, strings: _Strings, cache: dict[str, int]
) -> list[Any]:
    """Per turn: a string index, or [index] for a prompt that continues the previous prompt + completion."""
    out: list[Any] = []
    previous = ""
    for turn in range(len(problem.turns)):
        if sample.mode == "chat":
            text = benchmark.instruction(problem, turn)
        elif turn == 0 and problem.id in cache:
            out.append(cache[problem.id])
            previous = strings.table[cache[problem.id]]
            continue
        elif turn > len(sample.turns):
            break
        else:
            text = benchmark.render(problem, turn, sample.turns[:turn])
        if turn > 0 and sample.mode != "chat":
            before = previous + sample.turns[turn - 1].text
            if text.startswith(before):
                out.append([strings(text[len(before) :])])
                previous = text
                continue
        i = strings(text)
        if turn == 0 and sample.mode != "chat":
            cache[problem.id] = i
        out.append(i)
        previous = text
    return out


def _exit_text(r: ExecutionRecord) -> str:
    parts = []
    if r.exit is not None:
        parts.append(r.exit.value + (f" {r.exit_code}" if r.exit_code is not None else ""))
    if r.duration_s:
        parts.append(f"{r.duration_s:.2f}s")
    return " · ".join(parts)


def run_viewer_data(run: LoadedRun, strings: _Strings, outcomes: list[str]) -> dict[str, Any]:
    """One run's part of the viewer's document (see the module comment for the encoding)."""
    items = list(run.counts[PRIMARY])
    index = {item: i for i, item in enumerate(items)}
    notes: list[str] = []
    samples = _latest_samples(run)
    if not samples:
        notes.append("no samples.jsonl: completions are not shown")
    loaded = _load_benchmark(run) if samples else None
    if isinstance(loaded, str):
        notes.append(loaded)
        loaded = None
    elif loaded is not None and loaded.note:
        notes.append(loaded.note)

    tests: list[int] = [-1] * len(items)
    harness = -1
    if loaded is not None:
        nonce = run.meta.nonce or "nonce"
        texts: dict[int, str] = {}
        try:
            for item in items:
                problem = loaded.problems.get(item)
                if problem is not None:
                    texts[index[item]] = _test_text(loaded.benchmark, problem, nonce)
        except Exception as e:  # a benchmark's fault must not cost the whole report
            notes.append(f"tests are not shown: building a program failed ({type(e).__name__}: {e})")
            texts = {}
        head = _common_head(list(texts.values()))
        if head:
            harness = strings(head)
        for i, text in texts.items():
            tests[i] = strings(text[len(head) :])

    by_item: dict[str, set[int]] = {}
    for p, i in samples:
        by_item.setdefault(p, set()).add(i)
    rows: list[list[Any]] = []
    prompt_cache: dict[str, int] = {}
    prompt_failures = 0
    for item in items:
        records = {r.index: r for r in (run.executions or {}).get(item, ())}
        indices = sorted(by_item.get(item, set()) | set(records))
        problem = loaded.problems.get(item) if loaded is not None else None
        for k in indices:
            sample = samples.get((item, k))
            record = records.get(k)
            prompts: list[Any] = []
            if sample is not None and problem is not None and loaded is not None:
                try:
                    prompts = _prompts(loaded.benchmark, problem, sample, strings, prompt_cache)
                except (ValueError, UsageError, IndexError):
                    prompt_failures += 1
            outcome = record.outcome.value if record is not None else NOT_EXECUTED
            if outcome not in outcomes:
                outcomes.append(outcome)
            rows.append(
                [
                    index[item],
                    k,
                    outcomes.index(outcome),
                    strings(record.detail if record is not None else ""),
                    strings(record.stderr_tail[-STDERR_KEEP:] if record is not None else ""),
                    [strings(t.raw) for t in sample.turns] if sample is not None else [],
                    [strings(t.text) for t in sample.turns] if sample is not None else [],
                    prompts,
                    MODES.index(sample.mode) if sample is not None and sample.mode in MODES else 0,
                    strings((sample.error or "") if sample is not None else ""),
                    strings(_exit_text(record) if record is not None else ""),
                ]
            )
    if prompt_failures:
        notes.append(f"{prompt_failures} sample(s) whose prompt could not be rendered (turns do not match)")
    return {
        "bench": run.bench,
        "n": run.n,
        "items": items,
        "groups": [run.groups[item][0] for item in items],
        "counts": [list(run.counts[PRIMARY][item]) for item in items],
        "tests": tests,
        "harness": harness,
        "samples": rows,
        "notes": notes,
    }


def viewer_json(runs: Sequence[LoadedRun], labels: Sequence[str]) -> str:
    """The viewer's document for every run, safe to embed in <script type="application/json">."""
    strings = _Strings()
    outcomes = [o.value for o in Outcome] + [NOT_EXECUTED]
    data_runs = [
        {**run_viewer_data(run, strings, outcomes), "label": label} for label, run in zip(labels, runs, strict=True)
    ]
    doc = {"v": 1, "outcomes": outcomes, "modes": list(MODES), "strings": strings.table, "runs": data_runs}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates in a model's text: \u escapes instead
        text = json.dumps(doc, separators=(",", ":"))
    # Nothing in the data may end the script element or open a comment in it.
    return text.replace("<", "\\u003c")
