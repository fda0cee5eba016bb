"""`run --turns both`: the single- and the multi-turn variant of one config side by side, and their comparison."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen_eval.config import RunConfig
from codegen_eval.rundir import RUN_JSON, make_dirs, write_json_atomic
from codegen_eval.runner import Run, RunResult, execute_run, output_path

log = logging.getLogger(__name__)

TURN_VARIANTS = ("single", "multi")
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"


@dataclass(frozen=True, slots=True)
class TurnsResult:
    base: Path
    single: RunResult
    multi: RunResult
    comparison: Any  # codegen_eval.compare.Comparison (imported lazily), A = single-turn, B = multi-turn


def is_turns_pair(path: Path) -> bool:
    """A directory written by `--turns both`: single/ and multi/ run directories side by side."""
    return not (path / RUN_JSON).exists() and all((path / v / RUN_JSON).exists() for v in TURN_VARIANTS)


def run_both_turns(
    config: RunConfig,
    *,
    resume: Path | None = None,
    overrides: bool = True,
    progress: bool = True,
    stages: Sequence[str] = ("generate", "execute"),
) -> TurnsResult:
    """Run the single- and the multi-turn variant of one config in <dir>/single and <dir>/multi, then compare them
    (<dir>/comparison.json and .md; the same numbers `compare <dir>/single <dir>/multi` gives)."""
    from codegen_eval.compare import compare_runs, load_run
    from codegen_eval.report import compare_markdown

    runs: list[Run] = []
    for i, variant in enumerate(TURN_VARIANTS):
        # The data's warnings once, not once per variant: both select the same problems.
        if resume is not None:
            variant_config = dataclasses.replace(config, turns=variant, output_dir=str(resume / variant))
            runs.append(
                Run.resume(resume / variant, variant_config if overrides else None, progress=progress, warn=i == 0)
            )
        else:
            runs.append(Run.plan(dataclasses.replace(config, turns=variant), progress=progress, warn=i == 0))
    if all(len(p.turns) <= 1 for p in runs[1].problems):
        log.warning("--turns both: every selected %s problem has one turn, so both variants are the same", config.bench)
    made: list[Path] = []
    if resume is None:
        # Both variants are valid: now the directories (a default name gets a suffix if taken), both at once, so
        # that `--resume <dir>` finds the pair even when the second variant never started.
        wanted = output_path(
            dataclasses.replace(config, turns="both"), "run", *(f"{v}/{RUN_JSON}" for v in TURN_VARIANTS)
        )
        base, made = make_dirs(wanted, unique=not config.output_dir)
        try:
            for run, variant in zip(runs, TURN_VARIANTS, strict=True):
                run.relocate(base / variant).open()
        except BaseException:
            _abandon(runs, made, "not run: the run directories could not be made", kept=False)
            raise
    else:
        base = resume
    results: list[RunResult] = []
    try:
        for i, run in enumerate(runs):
            # Once a variant has done work, the pair is worth resuming: a later one that fails keeps its directory.
            run.keep_on_failure = any(done.work for done in runs[:i])
            results.append(execute_run(run, stages))
    except BaseException as e:
        # The variant that raised has recorded how it ended; the ones after it never started. If it left its
        # directory, they keep theirs too, marked, so that `--resume <dir>` continues the pair.
        failed = runs[len(results)]
        later = runs[len(results) + 1 :]
        why = f"not run: the {TURN_VARIANTS[len(results)]}-turn variant stopped"
        interrupted = isinstance(e, KeyboardInterrupt)
        status = "interrupted" if interrupted else "failed"
        kept = failed.work > 0 or failed.keep_on_failure or interrupted
        _abandon(later, made, why, kept=kept, status=status)
        raise
    single, multi = results
    comparison = None
    if "execute" in stages:
        comparison = compare_runs(load_run(single.path), load_run(multi.path))
        write_json_atomic(base / COMPARISON_JSON, comparison.to_json())  # what `compare --format json` prints
        (base / COMPARISON_MD).write_text(compare_markdown(comparison))
    return TurnsResult(base, single, multi, comparison)


def _abandon(runs: Sequence[Run], made: Sequence[Path], why: str, *, kept: bool, status: str = "failed") -> None:
    """End variants that never ran. kept: a sibling keeps its directory, so a new variant stays too (`failed`);
    otherwise it leaves no trace, nor does the pair's directory where this invocation made it. A resumed variant
    gets its run.json back (Run.fail)."""
    for run in runs:
        if kept and run.opened and run.before is None:
            run.finish(status, error=why)
        else:
            run.fail(why)
    if not kept:
        for d in reversed(made):
            try:
                d.rmdir()  # only where empty
            except OSError:
                break
