"""The hostile suite's table for docs/execution.md: every hostile program, its outcome under each sandbox.

Runs tests/sandbox/hostile/hostile_cases.py against the process and the container sandbox (each skipped with a
note when unusable here) and prints a markdown table; --out also writes it to a file.

    PYTHONPATH=. python bench/hostile_table.py [--out FILE] [--sandboxes process,docker]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "sandbox" / "hostile"))

from hostile_cases import CASES, Report, planted_secret, remote_address, run_case  # noqa: E402

from codegen_eval.errors import SandboxError  # noqa: E402
from codegen_eval.sandbox import SANDBOXES  # noqa: E402
from codegen_eval.sandbox.base import SandboxSettings  # noqa: E402

CHECKS = (
    "Checks after every program: it did not pass (exit 0 and its sentinel line), its outcome is one of those "
    "expected, no process of it is left on the host, no file it named exists in /, /root, /tmp, /var/tmp, "
    "/dev/shm or the harness's directories, the harness's planted secret is not in its output, it did not reach "
    "a listener on the host's 127.0.0.1 nor a Unix-socket listener the test left on the host, the four jobs submitted "
    "while it ran came back exactly as they printed, and the sandbox still runs `print('alive')` afterwards."
)


def cell(report: Report | None, known: str) -> str:
    if report is None:
        return "n/a"
    if report.ok:
        return f"{report.label} ✓"
    if known:
        return f"{report.label}, **passes**: known ({known})"
    return f"{report.label} ✗ " + "; ".join(report.problems())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--sandboxes", default="process,docker")
    args = ap.parse_args()
    names = args.sandboxes.split(",")
    results: dict[str, dict[str, Report]] = {name: {} for name in names}
    notes = []
    with planted_secret() as secret:
        remote = remote_address()
        for name in names:
            try:
                box = SANDBOXES.load(name)(SandboxSettings(workers=2))
                box.__enter__()
            except (ImportError, SandboxError) as exc:
                notes.append(f"{name}: not run ({exc})")
                continue
            try:
                for case in CASES:
                    results[name][case.name] = run_case(box, case, secret, remote)
                    print(f"{name:8} {case.name:28} {results[name][case.name].label}", file=sys.stderr)
            finally:
                box.__exit__(None, None, None)
    lines = [
        "| # | program | what it tries | expected | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    for i, case in enumerate(CASES, 1):
        row = [str(i), f"`{case.name}`", case.what, " or ".join(case.expect)]
        row += [cell(results[name].get(case.name), case.known_reason(name)) for name in names]
        lines.append("| " + " | ".join(row) + " |")
    held = {name: sum(r.ok for r in results[name].values()) for name in names}
    lines += ["", CHECKS, ""]
    lines += [f"{name}: {held[name]}/{len(results[name])} held" for name in names if results[name]]
    lines += notes
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()
