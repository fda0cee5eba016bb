"""`codegen-eval rerun`: execute one recorded program of a run again, print its output and both verdicts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from codegen_eval.config import from_mapping
from codegen_eval.errors import UsageError
from codegen_eval.execute import program_sha256
from codegen_eval.records import ExecutionJob
from codegen_eval.rundir import RunDir
from codegen_eval.runner import Run, sandbox_settings
from codegen_eval.sandbox import SANDBOXES


def rerun(path: Path, problem_id: str, index: int, show_program: bool = False) -> int:
    """0 when the verdict is the recorded one, 1 when it differs (a flaky or environment-dependent program)."""
    if not (path / "run.json").is_file():
        raise UsageError(f"{path} is not a run directory (no run.json)")
    rundir = RunDir(path)
    meta = rundir.read_meta()
    config = from_mapping(meta.config or {}, str(rundir.run_json))
    run = Run(config, rundir, meta, progress=False)  # reads the run; writes nothing
    problem = next((p for p in run.all_problems if p.id == problem_id), None)
    if problem is None:
        raise UsageError(f"{path}: no problem {problem_id!r} in this run's benchmark ({config.bench})")
    sample = run.latest_samples().get((problem_id, index))
    if sample is None:
        have = sorted(i for (p, i) in run.latest_samples() if p == problem_id)
        raise UsageError(f"{path}: no sample {index} of {problem_id} (samples: {have or 'none'})")
    records = [r for r in rundir.executions() if (r.problem_id, r.index) == (problem_id, index)]
    recorded = records[-1] if records else None
    if sample.error is not None:
        raise UsageError(f"{problem_id} #{index}: its generation failed ({sample.error}); no program ran")

    nonce = meta.required_nonce()
    job = run.benchmark.build_job(problem, sample, nonce)
    rebuilt_sha = program_sha256(job.program)
    want = recorded.program_sha256 if recorded is not None else ""
    stored = rundir.program_path(want) if want else None
    if stored is not None and stored.is_file():
        text = stored.read_bytes().decode("utf-8", "surrogatepass")
        source = f"stored: {stored}"
    else:
        text = job.program
        source = "rebuilt from the sample (the run did not keep programs: --record-programs)"
    sha = program_sha256(text)
    if want and sha != want:
        click.echo(
            f"warning: this program's sha256 {sha[:16]} differs from the one recorded ({want[:16]}): the benchmark "
            f"code changed since the run (it was {(meta.benchmark or {}).get('benchmark_version', '?')})",
            err=True,
        )
    if rebuilt_sha != sha:
        click.echo("note: the stored program differs from what this version would build from the sample", err=True)

    settings = sandbox_settings(run, workers=1)
    with SANDBOXES.load(config.sandbox)(settings) as sandbox:
        result = sandbox.run(ExecutionJob(program=text, timeout_s=job.timeout_s, memory_mb=job.memory_mb))
    verdict = run.benchmark.judge(problem, sample, result, nonce)

    echo = click.echo
    echo(f"run:      {path}")
    echo(f"program:  {problem_id} #{index}, sha256 {sha} ({source})")
    echo(f"sandbox:  {config.sandbox}, timeout {job.timeout_s or settings.timeout_s:g}s, memory {config.memory_mb} MiB")
    if recorded is not None:
        echo(f"recorded: {recorded.outcome.value}" + (f" ({recorded.detail})" if recorded.detail else ""))
    code = f"exit {result.exit_code}" if result.exit_code is not None else f"signal {result.signal}"
    echo(f"now:      {verdict.outcome.value}" + (f" ({verdict.detail})" if verdict.detail else ""))
    echo(f"process:  {result.kind.value}, {code}, {result.duration_s:.3f}s")
    if show_program:
        echo("----- program -----")
        echo(text, nl=not text.endswith("\n"))
    echo(f"----- stdout ({result.stdout_bytes} bytes) -----")
    sys.stdout.write(result.stdout)
    if result.stdout_truncated:
        kept = len(result.stdout.encode()) + len(result.stdout_tail.encode())
        echo(f"\n[... {result.stdout_bytes - kept} bytes not kept ...]")
        sys.stdout.write(result.stdout_tail)
    echo(f"----- stderr ({result.stderr_bytes} bytes{', the last kept' if result.stderr_truncated else ''}) -----")
    sys.stdout.write(result.stderr)
    sys.stdout.flush()
    if recorded is not None and recorded.outcome is not verdict.outcome:
        echo(
            f"the verdict differs from the recorded one: {recorded.outcome.value} -> {verdict.outcome.value}", err=True
        )
        return 1
    return 0
