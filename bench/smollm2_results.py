"""The README's results table: SmolLM2-135M-Instruct on HumanEval (raw and chat mode) and MTPB (multi vs single turn).

Runs the real CLI for each row (resumable: an interrupted row continues from its run directory), times it, and
prints a Markdown table from each run's summary.json.

    PYTHONPATH=$PWD python bench/smollm2_results.py [--out runs/smollm2] [--mtpb-problems 1-115] [--skip chat]

Everything runs on whatever device the hf backend picks (CUDA when present, else CPU); the table says which.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(name: str, out: Path, args: list[str]) -> tuple[dict[str, object], float]:
    run_dir = out / name
    timing = out / f"{name}.seconds"
    summary = run_dir / "summary.json"
    if summary.exists() and timing.exists():  # finished earlier
        return json.loads(summary.read_text()), float(timing.read_text())
    cmd = [sys.executable, "-m", "codegen_eval", "run", *args]
    cmd += ["--resume", str(run_dir)] if (run_dir / "run.json").exists() else ["--output-dir", str(run_dir)]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    start = time.monotonic()
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise SystemExit(f"{name}: the run failed (see above); rerun this script to resume it")
    seconds = time.monotonic() - start
    timing.write_text(f"{seconds:.1f}")
    return json.loads(summary.read_text()), seconds


def _scorer(summary: dict[str, object], scorer: str) -> dict[str, object]:
    scorers = summary["scorers"]
    assert isinstance(scorers, dict)
    result = scorers[scorer]
    assert isinstance(result, dict)
    return result


def _mtpb_row(label: str, s: dict[str, object], minutes: float) -> str:
    ref, strict = _scorer(s, "reference"), _scorer(s, "strict")
    return (
        f"| {label} | {s['problems']} problems ({s['items']} cases) | "
        f"pass rate {_pct(ref['pass_rate'])} (strict {_pct(strict['pass_rate'])}) | {minutes:.1f} min |"
    )


def _pct(x: object) -> str:
    return f"{100 * float(x):.2f}" if isinstance(x, int | float) else "–"  # type: ignore[arg-type]


def _device() -> str:
    try:
        import torch

        return (
            f"CUDA ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
        )
    except ImportError:
        return "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/smollm2", type=Path)
    p.add_argument("--mtpb-problems", default="1-115", help="MTPB problem selection (default: all 115)")
    p.add_argument("--skip", action="append", default=[], choices=["raw", "chat", "mtpb", "mtpb-chat"])
    a = p.parse_args()
    out: Path = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = ["--model", "smollm2-135m", "--no-progress"]
    rows: list[str] = []

    if "raw" not in a.skip:
        s, t = _run("humaneval_raw", out, ["--bench", "humaneval", *model])
        sc = _scorer(s, "pass")
        rows.append(
            f"| HumanEval, raw completion (paper protocol), greedy | {s['problems']} problems | "
            f"pass@1 {_pct(sc['pass_at_k']['pass@1'])} | {t / 60:.1f} min |"  # type: ignore[index]
        )
    if "chat" not in a.skip:
        s, t = _run("humaneval_chat", out, ["--bench", "humaneval", *model, "-B", "chat=true"])
        sc = _scorer(s, "pass")
        rows.append(
            f"| HumanEval, chat mode (instruct, not paper-comparable), greedy | {s['problems']} problems | "
            f"pass@1 {_pct(sc['pass_at_k']['pass@1'])} | {t / 60:.1f} min |"  # type: ignore[index]
        )
    if "mtpb" not in a.skip:
        for variant in ("multi", "single"):
            args = ["--bench", "mtpb", *model, "--turns", variant, "--problems", a.mtpb_problems]
            s, t = _run(f"mtpb_{variant}", out, args)
            rows.append(_mtpb_row(f"MTPB {variant}-turn, T=0.2 top-p 0.95, n=1", s, t / 60))
    if "mtpb-chat" not in a.skip:
        args = ["--bench", "mtpb", *model, "-B", "chat=true", "--turns", "multi", "--problems", a.mtpb_problems]
        s, t = _run("mtpb_multi_chat", out, args)
        rows.append(_mtpb_row("MTPB multi-turn, chat mode (not paper-comparable)", s, t / 60))
    if "mtpb" not in a.skip:
        print(f"paired comparison: codegen-eval compare {out / 'mtpb_single'} {out / 'mtpb_multi'}\n")
    print(f"SmolLM2-135M-Instruct (`--model smollm2-135m`), {_device()}\n")
    print("| run | size | score (%) | wall time |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
