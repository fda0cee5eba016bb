"""The replay backend: serves completions from an existing samples file.

Formats: human-eval JSONL {"task_id", "completion"}; evalplus JSONL {"task_id", "solution"}; bigcode-evaluation-
harness generations JSON (a list, per problem in benchmark order, of lists of generations); codegen-eval's own
samples.jsonl (multi-turn included).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codegen_eval.backends.base import BackendContext
from codegen_eval.errors import UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode
from codegen_eval.rundir import read_jsonl


@dataclass(frozen=True, slots=True)
class ReplayData:
    format: str  # human-eval | evalplus | bigcode | codegen-eval
    mode: SampleMode
    # problem id -> samples in file order, each a tuple of raw per-turn texts
    samples: Mapping[str, list[tuple[str, ...]]]
    sha256: str


def load_replay(path: Path, problem_ids: Sequence[str]) -> ReplayData:
    """Parse a samples file; unknown task ids, missing fields and malformed lines are UsageErrors."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"samples file not found: {path}") from None
    except OSError as e:
        raise UsageError(f"cannot read samples file {path}: {e.strerror or e}") from None
    known = set(problem_ids)
    samples: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    fmt = ""
    mode: SampleMode = "completion"
    if raw.lstrip().startswith(b"["):
        fmt, mode = "bigcode", "solution"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}: malformed JSON ({e})") from None
        if not isinstance(data, list) or not all(
            isinstance(g, list) and all(isinstance(s, str) for s in g) for g in data
        ):
            raise UsageError(f"{path}: bigcode generations must be a list of lists of strings")
        if len(data) > len(problem_ids):
            raise UsageError(f"{path}: {len(data)} problems of generations, but the benchmark has {len(problem_ids)}")
        for pid, gens in zip(problem_ids, data, strict=False):
            samples[pid] = [(g,) for g in gens]
    else:
        for number, d in read_jsonl(path):
            where = f"{path}:{number}"
            if not isinstance(d, dict):
                raise UsageError(f"{where}: expected a JSON object")
            if "problem_id" in d and "turns" in d:
                line_fmt, line_mode = "codegen-eval", d.get("mode", "completion")
                pid = d["problem_id"]
                try:
                    texts = tuple(str(t["raw"]) for t in d["turns"])
                except (KeyError, TypeError):
                    raise UsageError(f"{where}: each turn needs a 'raw' field") from None
            elif "task_id" in d and ("completion" in d or "solution" in d):
                pid = d["task_id"]
                if "completion" in d:
                    line_fmt, line_mode, text = "human-eval", "completion", d["completion"]
                else:
                    line_fmt, line_mode, text = "evalplus", "solution", d["solution"]
                if not isinstance(text, str):
                    raise UsageError(f"{where}: the completion must be a string")
                texts = (text,)
            else:
                raise UsageError(
                    f"{where}: missing field: expected task_id with completion (human-eval) or solution "
                    f"(evalplus), or a codegen-eval sample (problem_id, turns)"
                )
            if fmt and line_fmt != fmt:
                raise UsageError(f"{where}: mixes {line_fmt} and {fmt} records")
            fmt, mode = line_fmt, line_mode
            if pid not in known:
                close = difflib.get_close_matches(str(pid), known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise UsageError(f"{where}: unknown task id {pid!r}{hint}")
            samples[pid].append(texts)
    if not samples:
        raise UsageError(f"{path}: no samples")
    return ReplayData(fmt, mode, dict(samples), hashlib.sha256(raw).hexdigest())


class ReplayBackend:
    name = "replay"
    keeps_stop_strings = True  # serves recorded texts; stop hints play no part
    progress = None  # answers at once: nothing to report within a call

    def __init__(self, model: str, options: Mapping[str, str], context: BackendContext) -> None:
        if options:
            raise UsageError(f"backend 'replay' has no options (got {', '.join(sorted(options))})")
        if not model:
            raise UsageError("replay needs a samples file: --model replay:PATH")
        self.path = Path(model)
        self.data = load_replay(self.path, context.problem_ids)
        self.mode: SampleMode = self.data.mode

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        out = []
        for r in requests:
            have = self.data.samples.get(r.problem_id, [])
            wanted = range(r.first_sample, r.first_sample + r.n)
            if len(have) < wanted.stop:
                raise UsageError(
                    f"{self.path}: {r.problem_id} has {len(have)} sample(s), the run needs {wanted.stop} (-n)"
                )
            texts = []
            for i in wanted:
                turns = have[i]
                if r.turn >= len(turns):
                    raise UsageError(f"{self.path}: {r.problem_id} sample {i} has no turn {r.turn + 1}")
                texts.append(turns[r.turn])
            out.append(Completion(texts=tuple(texts)))
        return out

    def provenance(self) -> Mapping[str, str]:
        return {
            "backend": "replay",
            "path": str(self.path.resolve()),
            "format": self.data.format,
            "sha256": self.data.sha256,
        }

    def close(self) -> None:
        pass
