"""Run directory: run.json (config, hash, versions, data sha256, status), samples.jsonl, executions.jsonl,
summary.json. JSONL files are appended as work completes; summaries are replaced atomically."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from codegen_eval.data import write_atomic
from codegen_eval.errors import UsageError
from codegen_eval.records import ExitKind, Outcome, Sample, TurnOutput
from codegen_eval.summaries import RunMeta, RunSummary

RUN_JSON = "run.json"
SAMPLES = "samples.jsonl"
EXECUTIONS = "executions.jsonl"
SUMMARY = "summary.json"
PROGRAMS = "programs"  # --record-programs: programs/<sha256>.py, the exact text of every program that ran
R = TypeVar("R")


def json_line(record: Mapping[str, Any]) -> str:
    """One JSONL line. Readable UTF-8 where the text allows; a model's text can hold lone surrogates (a
    completion is data, whatever it contains), which UTF-8 cannot encode: then \\u escapes, still valid JSON
    that reads back to the same string."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record)
    return text + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    """Indented JSON (ASCII), replacing `path` atomically (data.write_atomic)."""
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode(), plain_mode=True)


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, object). A malformed line is a UsageError naming it, except a truncated
    last line without a newline (a write cut short by a crash), which is skipped."""
    with path.open("rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    complete_tail = data.endswith(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_last = number == len(lines)
        try:
            yield number, json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if is_last and not complete_tail:
                return
            raise UsageError(f"{path}:{number}: malformed JSON line ({e})") from None


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One judged sample, as stored in executions.jsonl."""

    problem_id: str
    index: int
    outcome: Outcome
    detail: str = ""
    scores: tuple[tuple[str, bool], ...] = ()
    exit: ExitKind | None = None
    exit_code: int | None = None
    duration_s: float = 0.0
    stderr_tail: str = ""
    # How much the program wrote (kept or not), and the sha256 of the exact program text that ran: with
    # --record-programs the text itself is in programs/<sha256>.py; `codegen-eval rerun` re-executes it.
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    program_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(
            outcome=self.outcome.value,
            scores=dict(self.scores),
            exit=self.exit.value if self.exit else None,
            duration_s=round(self.duration_s, 4),
        )
        return d

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> ExecutionRecord:
        plain = {name: type(default)(d.get(name, default)) for name, default in _PLAIN_DEFAULTS.items()}
        return ExecutionRecord(
            problem_id=str(d["problem_id"]),
            index=int(d["index"]),
            outcome=Outcome(d["outcome"]),
            scores=tuple((str(k), bool(v)) for k, v in dict(d.get("scores") or {}).items()),
            exit=ExitKind(d["exit"]) if d.get("exit") else None,
            exit_code=d.get("exit_code"),
            **plain,
        )


# ExecutionRecord's plain fields, read back as their default's type; absent (an older file): the default.
_PLAIN_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(ExecutionRecord)
    if f.name not in ("problem_id", "index", "outcome", "scores", "exit", "exit_code")
}


def sample_to_json(s: Sample) -> dict[str, Any]:
    return {
        "problem_id": s.problem_id,
        "index": s.index,
        "mode": s.mode,
        "turns": [{"raw": t.raw, "text": t.text} for t in s.turns],
        "error": s.error,
    }


def sample_from_json(d: Mapping[str, Any]) -> Sample:
    return Sample(
        problem_id=str(d["problem_id"]),
        index=int(d["index"]),
        turns=tuple(TurnOutput(raw=str(t["raw"]), text=str(t["text"])) for t in d["turns"]),
        mode=d.get("mode", "completion"),
        error=d.get("error"),
    )


def _read_object(path: Path, missing: str, what: str) -> dict[str, Any]:
    """A JSON file holding one object; UsageError `missing` when there is no file, `path: what` when no object."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(missing) from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: {what}")
    return data


def make_dirs(path: Path, *, unique: bool) -> tuple[Path, list[Path]]:
    """Make the directory `path` and its missing parents; returns (the directory, the directories made here,
    outermost first). unique (a default name): when `path` is taken, `path-2`, `path-3`, … instead, each made with
    exist_ok=False, so two runs started in the same second never share one. Otherwise `path` may exist already."""
    made: list[Path] = []
    missing = [p for p in reversed(path.parents) if not p.exists()]
    for parent in missing:
        try:
            parent.mkdir()
            made.append(parent)
        except FileExistsError:
            pass  # made at the same moment by another run: not ours to remove
    candidate = path
    for attempt in range(2, 10_000):
        try:
            candidate.mkdir()
            return candidate, [*made, candidate]
        except FileExistsError:
            if not unique:
                return candidate, made
            candidate = path.with_name(f"{path.name}-{attempt}")
    raise UsageError(f"cannot find a free run directory name next to {path}")


class RunDir:
    """A run directory. Appends are line-buffered and flushed per record so a kill -9 loses at most the
    records in flight (and possibly leaves a truncated last line, which readers skip)."""

    def __init__(self, path: Path, made: Sequence[Path] = ()) -> None:
        self.path = path
        self._handles: dict[str, TextIO] = {}
        self._made = list(made)  # directories make_dirs made for this run (outermost first)
        self._created: list[Path] = []  # files this object created: all that discard() removes

    @staticmethod
    def create(path: Path, *, unique: bool) -> RunDir:
        """A new run directory (see make_dirs); an existing one is refused if it holds a run."""
        actual, made = make_dirs(path, unique=unique)
        if (actual / RUN_JSON).exists():  # a run there already, or one made there at the same moment
            raise UsageError(f"{actual} already holds a run; continue it with --resume {actual}")
        return RunDir(actual, made)

    def discard(self) -> None:
        """Undo a run that failed before doing any work: remove the files this object created, then the
        directories made for it where they are empty. Nothing it did not create is touched."""
        self.close()
        for f in reversed(self._created):
            f.unlink(missing_ok=True)
        self._created.clear()
        for d in reversed(self._made):
            try:
                d.rmdir()
            except OSError:
                break  # not empty: someone else's files, or an outer directory shared with other runs
        self._made.clear()

    def _note_new(self, target: Path) -> None:
        if not target.exists():
            self._created.append(target)

    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    def read_meta(self) -> RunMeta:
        missing = f"{self.path} is not a run directory (no {RUN_JSON})"
        return RunMeta.from_json(_read_object(self.run_json, missing, "not a run record"))

    def write_meta(self, meta: RunMeta) -> None:
        self._note_new(self.run_json)
        write_json_atomic(self.run_json, meta.to_json())

    def program_path(self, sha256: str) -> Path:
        return self.path / PROGRAMS / f"{sha256}.py"

    def store_program(self, sha256: str, text: str) -> None:
        """Keep a program's exact text under its content address (written once; a crash leaves no partial file)."""
        target = self.program_path(sha256)
        if target.exists():
            return
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(text.encode("utf-8", "surrogatepass"))
        os.replace(tmp, target)

    def _append(self, name: str, record: Mapping[str, Any]) -> None:
        handle = self._handles.get(name)
        if handle is None:
            target = self.path / name
            self._note_new(target)
            self._repair_tail(target)
            handle = target.open("a", encoding="utf-8")
            self._handles[name] = handle
        handle.write(json_line(record))
        handle.flush()

    @staticmethod
    def _repair_tail(target: Path) -> None:
        """Drop a truncated last line left by a crash so that new records start on a fresh line."""
        if not target.exists() or target.stat().st_size == 0:
            return
        with target.open("rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            cut = data.rfind(b"\n") + 1
            f.truncate(cut)

    def append_sample(self, sample: Sample) -> None:
        self._append(SAMPLES, sample_to_json(sample))

    def append_execution(self, record: ExecutionRecord) -> None:
        self._append(EXECUTIONS, record.to_json())

    def samples(self) -> list[Sample]:
        return self._records(SAMPLES, sample_from_json, "a codegen-eval sample record")

    def executions(self) -> list[ExecutionRecord]:
        return self._records(EXECUTIONS, ExecutionRecord.from_json, "an execution record")

    def _records(self, name: str, parse: Callable[[Mapping[str, Any]], R], what: str) -> list[R]:
        """The records of a JSONL file (none when there is no file); a line `parse` rejects is a UsageError."""
        path = self.path / name
        out: list[R] = []
        for n, d in read_jsonl(path) if path.exists() else ():
            try:
                out.append(parse(d))
            except (KeyError, TypeError, ValueError) as e:
                raise UsageError(f"{path}:{n}: not {what} ({e!r})") from None
        return out

    def write_summary(self, summary: RunSummary) -> None:
        write_json_atomic(self.path / SUMMARY, summary.to_json())

    def read_summary(self) -> RunSummary:
        """summary.json; a UsageError naming the run directory unless it has per-problem counts (RunSummary)."""
        missing = f"{self.path}: no {SUMMARY} (the run has not finished)"
        return RunSummary.from_json(_read_object(self.path / SUMMARY, missing, "not a summary"), self.path)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
