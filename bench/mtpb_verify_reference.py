"""Run every MTPB reference solution through the sandbox checker and compare with the known issues.

Stand-alone (needs only codegen_eval.benchmarks.mtpb_scoring, the data file and the assets in
benchmarks/mtpb/): for each problem and test case it assembles the program exactly as a model's would be
(prefix, then per turn "# " + filled prompt + "\\n" + filled code + "\\n\\n"), checks that every turn's code
survives the authors' per-turn truncation unchanged, runs build_program's source in a subprocess, parses the
verdict, and checks that every case outside known_issues.json passes both scorers and every known-issue case
fails exactly the listed scorers.

    PYTHONPATH=$PWD /work/venv/bin/python bench/mtpb_verify_reference.py [--ids 1,2,3] [--show 5:0]

Exit status 0 when every case is as expected, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from codegen_eval.benchmarks.mtpb_scoring import MtpbVerdict, build_program, parse_verdict  # noqa: E402

ASSETS = ROOT / "benchmarks" / "mtpb"
DATA_SHA256 = "3ab79ddb160f484a63491330ba72204930d56cc946f7c0c5fb469622a941f89c"
PREFIX = "# Import libraries.\n\nimport numpy as np\n\n"
SCORERS = ("reference", "strict")
TIMEOUT_S = 20.0  # the authors' limit per program


@dataclass(frozen=True, slots=True)
class CaseResult:
    problem_id: str
    case: int
    verdict: MtpbVerdict
    expected_fail: frozenset[str]  # scorers that must fail (known issue); all others must pass
    duration_s: float

    @property
    def as_expected(self) -> bool:
        got = {"reference": self.verdict.reference, "strict": self.verdict.strict}
        return all(got[s] == (s not in self.expected_fail) for s in SCORERS)


# -- inputs -----------------------------------------------------------------------------------------------


def find_data(explicit: str | None) -> Path | None:
    """--data, else $CODEGEN_EVAL_DATA_DIR, else the copy shipped in benchmarks/mtpb/, else the user cache."""
    if explicit:
        return Path(explicit)
    candidates: list[Path] = []
    env = os.environ.get("CODEGEN_EVAL_DATA_DIR")
    if env:
        candidates += [Path(env) / "mtpb" / "mtpb.jsonl", Path(env) / "mtpb.jsonl"]
    candidates.append(ROOT / "benchmarks" / "mtpb" / "mtpb.jsonl")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    cache = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    candidates.append(cache / "codegen-eval" / "mtpb" / "mtpb.jsonl")
    return next((c for c in candidates if c.is_file()), None)


def load_problems(path: Path) -> list[dict[str, object]]:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != DATA_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the pinned MTPB data {DATA_SHA256}")
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def load_templates(path: Path = ASSETS / "reference_solutions.json") -> dict[str, list[str]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object")
    return {str(k): list(v) for k, v in raw.items()}


def load_known_issues(path: Path = ASSETS / "known_issues.json") -> dict[tuple[str, int], frozenset[str]]:
    """(problem id, case index) -> scorers that cannot pass."""
    out: dict[tuple[str, int], frozenset[str]] = {}
    for entry in json.loads(path.read_text(encoding="utf-8")):
        cases = range(5) if entry["cases"] == "all" else entry["cases"]
        scorers = frozenset(entry["scorers"])
        if not scorers or not scorers <= set(SCORERS) or not entry.get("reason"):
            raise ValueError(f"{path}: bad entry {entry}")
        for c in cases:
            key = (str(entry["id"]), int(c))
            out[key] = out.get(key, frozenset()) | scorers
    return out


# -- assembly ---------------------------------------------------------------------------------------------


def cases_of(problem: Mapping[str, object]) -> list[tuple[dict[str, object], object]]:
    """(inputs, gold) per test case; id 57 has a sixth gold without inputs, which zip drops."""
    inputs = problem["inputs"]
    outputs = problem["outputs"]
    assert isinstance(inputs, list) and isinstance(outputs, list)
    return list(zip(inputs, outputs, strict=False))


def fill(template: str, case: Mapping[str, object]) -> str:
    return template.format(**case)


def assemble(prompts: Sequence[str], codes: Sequence[str], case: Mapping[str, object]) -> str:
    history = PREFIX
    for prompt, code in zip(prompts, codes, strict=True):
        history += "# " + fill(prompt, case) + "\n" + fill(code, case) + "\n\n"
    return history


_PRINT = re.compile(r"^print", re.M)
_DEF = re.compile(r"^def", re.M)
_TERMINALS = [re.compile(p, re.M) for p in (r"^#", re.escape("<|endoftext|>"), r"^'''", r'^"""', r"\n\n\n")]


def truncate(completion: str) -> str:
    """The authors' truncation of one turn's continuation (see the protocol's "Truncation" section)."""
    prints = list(_PRINT.finditer(completion))
    if len(prints) > 1:
        completion = completion[: prints[1].start()]
    defs = list(_DEF.finditer(completion))
    if len(defs) > 1:
        completion = completion[: defs[1].start()]
    cuts = [m.start() for m in (t.search(completion) for t in _TERMINALS) if m]
    return completion[: min(cuts)] if cuts else completion


def template_problems(problem: Mapping[str, object], codes: Sequence[str]) -> list[str]:
    """Why this problem's templates are unusable (turn count, placeholders, truncation), for every case."""
    pid = problem["id"]
    prompts = problem["prompts"]
    assert isinstance(prompts, list)
    if len(codes) != len(prompts):
        return [f"{pid}: {len(codes)} code turns for {len(prompts)} prompts"]
    errors: list[str] = []
    for index, (case, _) in enumerate(cases_of(problem)):
        for turn, code in enumerate(codes):
            try:
                text = fill(code, case)
            except (KeyError, IndexError, ValueError) as e:
                errors.append(f"{pid} case {index} turn {turn}: cannot fill: {e!r}")
                continue
            if truncate(text) != text:
                errors.append(f"{pid} case {index} turn {turn}: truncation would cut the code: {text!r}")
            if text.endswith("\n") or text.startswith("\n"):
                errors.append(f"{pid} case {index} turn {turn}: code must not start or end with a newline")
    return errors


# -- running ----------------------------------------------------------------------------------------------


def run_program(python: str, program: str, gold: object, timeout_s: float) -> tuple[MtpbVerdict, float]:
    """Run the checked program in its own process group and working directory, like a bare sandbox."""
    nonce = secrets.token_hex(8)
    source = build_program(program, gold, nonce)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # the program must not see the harness
    with tempfile.TemporaryDirectory(prefix="mtpb-verify-") as work:
        path = Path(work) / "program.py"
        path.write_text(source, encoding="utf-8")
        start = time.monotonic()
        proc = subprocess.Popen(
            [python, str(path)],
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            exited_ok = proc.returncode == 0
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            exited_ok = False
        duration = time.monotonic() - start
    return parse_verdict(out.decode("utf-8", "replace"), nonce, exited_ok), duration


def verify(
    problems: Sequence[Mapping[str, object]],
    templates: Mapping[str, Sequence[str]],
    known: Mapping[tuple[str, int], frozenset[str]],
    *,
    python: str = sys.executable,
    jobs: int = 2,
    timeout_s: float = TIMEOUT_S,
) -> tuple[list[CaseResult], list[str]]:
    """All cases of `problems`: their results, and every template error found before running."""
    errors: list[str] = []
    work: list[tuple[str, int, str, object]] = []
    for problem in problems:
        pid = str(problem["id"])
        codes = templates.get(pid)
        if codes is None:
            errors.append(f"{pid}: no reference solution")
            continue
        problem_errors = template_problems(problem, codes)
        errors += problem_errors
        if problem_errors:
            continue
        prompts = problem["prompts"]
        assert isinstance(prompts, list)
        for index, (case, gold) in enumerate(cases_of(problem)):
            work.append((pid, index, assemble(prompts, codes, case), gold))

    def one(item: tuple[str, int, str, object]) -> CaseResult:
        pid, index, program, gold = item
        verdict, duration = run_program(python, program, gold, timeout_s)
        return CaseResult(pid, index, verdict, known.get((pid, index), frozenset()), duration)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, work))
    return results, errors


def report(results: Iterable[CaseResult]) -> tuple[int, int, int, int]:
    """Print per-problem lines; return (cases, reference passes, strict passes, unexpected)."""
    by_problem: dict[str, list[CaseResult]] = {}
    for r in results:
        by_problem.setdefault(r.problem_id, []).append(r)
    total = ref = strict = bad = 0
    for pid in sorted(by_problem, key=int):
        rows = by_problem[pid]
        marks = " ".join(
            ("R" if r.verdict.reference else "r") + ("S" if r.verdict.strict else "s") + ("" if r.as_expected else "!")
            for r in rows
        )
        slowest = max(r.duration_s for r in rows)
        print(f"{pid:>4}  {marks}  ({slowest:.1f}s max)")
        for r in rows:
            if not r.as_expected:
                want = ", ".join(sorted(r.expected_fail)) or "nothing"
                print(f"        case {r.case}: UNEXPECTED (must fail: {want}): {r.verdict.detail}")
            elif r.expected_fail:
                listed = ", ".join(sorted(r.expected_fail))
                print(f"        case {r.case}: known issue ({listed}): {r.verdict.detail}")
        total += len(rows)
        ref += sum(r.verdict.reference for r in rows)
        strict += sum(r.verdict.strict for r in rows)
        bad += sum(not r.as_expected for r in rows)
    return total, ref, strict, bad


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="path to mtpb.jsonl (default: $CODEGEN_EVAL_DATA_DIR, then the cache)")
    parser.add_argument("--python", default=sys.executable, help="Python with numpy, pandas, sklearn")
    parser.add_argument("--ids", help="comma-separated problem ids (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="programs run in parallel (default 2)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per program (default 20)")
    parser.add_argument("--show", metavar="ID:CASE", help="print the assembled program of one case and exit")
    args = parser.parse_args(argv)

    data = find_data(args.data)
    if data is None or not data.is_file():
        print("mtpb_verify_reference: no MTPB data (--data, or CODEGEN_EVAL_DATA_DIR)", file=sys.stderr)
        return 2
    try:
        problems = load_problems(data)
        templates = load_templates()
        known = load_known_issues()
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"mtpb_verify_reference: {e}", file=sys.stderr)
        return 2

    if args.show:
        pid, _, index = args.show.partition(":")
        problem = next((p for p in problems if p["id"] == pid), None)
        if problem is None or pid not in templates:
            print(f"mtpb_verify_reference: no problem or no solution {pid!r}", file=sys.stderr)
            return 2
        prompts = problem["prompts"]
        assert isinstance(prompts, list)
        case, gold = cases_of(problem)[int(index or 0)]
        print(assemble(prompts, templates[pid], case), end="")
        print(f"# gold: {json.dumps(gold)}")
        return 0

    if args.ids:
        wanted = {i.strip() for i in args.ids.split(",") if i.strip()}
        problems = [p for p in problems if p["id"] in wanted]
    start = time.monotonic()
    results, errors = verify(problems, templates, known, python=args.python, jobs=args.jobs, timeout_s=args.timeout)
    total, ref, strict, bad = report(results)
    for e in errors:
        print(f"TEMPLATE ERROR {e}")
    print(
        f"{len(problems)} problems, {total} cases: reference {ref}/{total}, strict {strict}/{total}; "
        f"{bad} unexpected, {len(errors)} template errors; {time.monotonic() - start:.0f}s"
    )
    return 0 if bad == 0 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
