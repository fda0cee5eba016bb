"""`run --temperature 0.2,0.6,0.8`: one run per temperature under one parent directory, and the best-of-temperatures
pass@k the CodeGen paper reports (for each k, the pass@k of the temperature that scored highest at that k).

Layout: <dir>/sweep.json (written first: the temperatures and the config; then, once every run is scored, the
table), <dir>/sweep.md, and <dir>/t<temperature>/ one ordinary run directory each. `run --resume <dir>` continues
each temperature's run where it stopped (a finished one is left as it is) and starts the ones never begun."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen_eval.config import RunConfig, from_mapping
from codegen_eval.errors import UsageError
from codegen_eval.rundir import RUN_JSON, make_dirs, write_json_atomic
from codegen_eval.runner import Run, RunResult, execute_run, output_path
from codegen_eval.summaries import ScoreBlock

SWEEP_JSON = "sweep.json"
SWEEP_MD = "sweep.md"


def parse_temperatures(text: str) -> tuple[float, ...]:
    """ "0.2,0.6,0.8" -> (0.2, 0.6, 0.8); each >= 0, no repeats."""
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"--temperature: not a number or comma-separated numbers: {text!r}") from None
    if not values:
        raise UsageError("--temperature: empty")
    if any(t < 0 for t in values):
        raise UsageError(f"--temperature must be >= 0 (got {text})")
    if len(set(values)) != len(values):
        raise UsageError(f"--temperature: a temperature is repeated ({text})")
    return values


def variant_name(temperature: float) -> str:
    return f"t{temperature:g}"


def is_sweep(path: Path) -> bool:
    return (path / SWEEP_JSON).exists() and not (path / RUN_JSON).exists()


@dataclass(frozen=True, slots=True)
class SweepRow:
    temperature: float
    run: str  # the run directory, relative to the sweep's
    pass_at_k: Mapping[str, float]
    ci95: Mapping[str, tuple[float, float]]


@dataclass(frozen=True, slots=True)
class SweepSummary:
    temperatures: tuple[float, ...]
    rows: tuple[SweepRow, ...]
    best: Mapping[str, tuple[float, float]]  # "pass@k" -> (temperature, value); ties: the lowest temperature

    def to_json(self) -> dict[str, Any]:
        return {
            "temperatures": list(self.temperatures),
            "runs": [
                {
                    "temperature": r.temperature,
                    "run": r.run,
                    "pass_at_k": dict(r.pass_at_k),
                    "pass_at_k_ci95": {k: list(v) for k, v in r.ci95.items()},
                }
                for r in self.rows
            ],
            "best": {k: {"temperature": t, "value": v} for k, (t, v) in self.best.items()},
        }


def summarize_scores(runs: Sequence[tuple[float, str, ScoreBlock]]) -> SweepSummary:
    """(temperature, run directory name, its pass scorer) per run -> the table and the best temperature per k
    (also what `report` shows for the runs of a sweep)."""
    rows = [SweepRow(t, name, dict(b.pass_at_k or {}), dict(b.pass_at_k_ci95 or {})) for t, name, b in runs]
    temperatures = [t for t, _, _ in runs]
    metrics = sorted({k for r in rows for k in r.pass_at_k}, key=lambda k: int(k.partition("@")[2] or 0))
    best: dict[str, tuple[float, float]] = {}
    for k in metrics:
        scored = [(r.pass_at_k[k], -r.temperature) for r in rows if k in r.pass_at_k]
        value, neg_t = max(scored)
        best[k] = (-neg_t, value)
    return SweepSummary(tuple(temperatures), tuple(rows), best)


def sweep_markdown(summary: SweepSummary) -> str:
    metrics = list(summary.best)
    lines = [
        "| temperature | " + " | ".join(f"{k} % [95% CI]" for k in metrics) + " | run |",
        "| ---: | " + " | ".join("---" for _ in metrics) + " | --- |",
    ]
    for r in summary.rows:
        cells = []
        for k in metrics:
            if k not in r.pass_at_k:
                cells.append("")
                continue
            ci = r.ci95.get(k)
            text = f"{100 * r.pass_at_k[k]:.1f}" + ("" if ci is None else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]")
            cells.append(f"**{text}** (best)" if summary.best[k][0] == r.temperature else text)
        lines.append(f"| {r.temperature:g} | " + " | ".join(cells) + f" | {r.run} |")
    best = ", ".join(f"{k} {100 * v:.1f}% (T={t:g})" for k, (t, v) in summary.best.items())
    lines += ["", f"best of temperatures (the paper's protocol: for each k, the best temperature): {best}"]
    return "\n".join(lines) + "\n"


def run_sweep(
    config: RunConfig,
    temperatures: Sequence[float] | None,
    *,
    resume: Path | None = None,
    progress: bool = True,
    stages: Sequence[str] = ("generate", "execute"),
) -> tuple[Path, list[RunResult], SweepSummary | None]:
    """One run per temperature under one directory (new, or `resume`), then the summary when executed."""
    if resume is not None:
        recorded = json.loads((resume / SWEEP_JSON).read_text())
        temps = tuple(float(t) for t in recorded["temperatures"])
        if temperatures is not None and tuple(temperatures) != temps:
            raise UsageError(f"{resume} is a sweep over {', '.join(f'{t:g}' for t in temps)}; it cannot be changed")
        base = resume
        # A temperature never begun gets the sweep's own config (recorded at its start), not this command line's.
        config = from_mapping(recorded["config"], str(resume / SWEEP_JSON))
        runs = []
        for i, t in enumerate(temps):
            sub = base / variant_name(t)
            if (sub / RUN_JSON).exists():
                runs.append(Run.resume(sub, None, progress=progress, warn=i == 0))
            else:
                fresh = dataclasses.replace(config, temperature=t, output_dir=str(sub))
                runs.append(Run.plan(fresh, progress=progress, warn=i == 0))
    else:
        assert temperatures is not None
        temps = tuple(temperatures)
        planned = [
            Run.plan(dataclasses.replace(config, temperature=t), progress=progress, warn=i == 0)
            for i, t in enumerate(temps)
        ]  # every temperature valid before anything is written
        base, _ = make_dirs(output_path(config, "sweep", SWEEP_JSON), unique=not config.output_dir)
        write_json_atomic(base / SWEEP_JSON, {"temperatures": list(temps), "config": config.to_dict()})
        runs = [run.relocate(base / variant_name(t)) for run, t in zip(planned, temps, strict=True)]
    results = [execute_run(run, stages) for run in runs]
    summary = None
    scored = [
        (t, r.path.name, r.summary.scorers["pass"])
        for t, r in zip(temps, results, strict=True)
        if r.summary is not None
    ]
    if "execute" in stages and len(scored) == len(results):
        summary = summarize_scores(scored)
        write_json_atomic(base / SWEEP_JSON, {**summary.to_json(), "config": config.to_dict()})
        (base / SWEEP_MD).write_text(sweep_markdown(summary))
    return base, results, summary
