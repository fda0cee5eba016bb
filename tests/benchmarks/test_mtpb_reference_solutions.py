"""MTPB reference solutions and known issues: well-formed, truncation-proof, and (slow) really passing."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "benchmarks" / "mtpb"


def _load_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mtpb_verify_reference", REPO / "bench" / "mtpb_verify_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


verifier = _load_verifier()


@pytest.fixture(scope="module")
def problems(data_dir: Path) -> list[dict[str, object]]:
    return verifier.load_problems(data_dir / "mtpb" / "mtpb.jsonl")  # type: ignore[no-any-return]


def test_truncate_matches_the_protocol_examples() -> None:
    assert verifier.truncate("x = 1\nprint(x)\nprint(x+1)\n") == "x = 1\nprint(x)\n"
    assert verifier.truncate("x=1\n\n\ny=2") == "x=1"
    assert verifier.truncate("# comment\nx = 1") == ""
    assert verifier.truncate("def f():\n    pass\ndef g():\n    pass") == "def f():\n    pass\n"
    assert verifier.truncate("x = 1\n    # indented comment\n    print(x)\nprinter = 2") == (
        "x = 1\n    # indented comment\n    print(x)\nprinter = 2"
    )
    assert verifier.truncate("x = 1\n'''doc'''") == "x = 1\n"


def test_every_problem_has_truncation_proof_templates(problems: list[dict[str, object]]) -> None:
    templates = verifier.load_templates()
    assert sorted(templates, key=int) == [str(i) for i in range(1, 116)]
    errors = [e for p in problems for e in verifier.template_problems(p, templates[str(p["id"])])]
    assert errors == []


def test_template_check_catches_what_truncation_would_cut(problems: list[dict[str, object]]) -> None:
    problem = next(p for p in problems if p["id"] == "3")
    good = verifier.load_templates()["3"]
    assert verifier.template_problems(problem, good) == []
    two_prints = [good[0], good[1], "print(1)\nprint(2)"]
    assert any("truncation" in e for e in verifier.template_problems(problem, two_prints))
    comment = [good[0], "# helper\n" + good[1], good[2]]
    assert any("truncation" in e for e in verifier.template_problems(problem, comment))
    assert any("cannot fill" in e for e in verifier.template_problems(problem, [good[0], good[1], "{nope}"]))
    assert verifier.template_problems(problem, good[:2]) == ["3: 2 code turns for 3 prompts"]


def test_known_issues_are_well_formed(problems: list[dict[str, object]]) -> None:
    ids = {str(p["id"]) for p in problems}
    issues = json.loads((ASSETS / "known_issues.json").read_text(encoding="utf-8"))
    for issue in issues:
        assert set(issue) == {"id", "cases", "reason", "scorers"}, issue
        assert issue["id"] in ids
        assert issue["cases"] == "all" or (issue["cases"] and set(issue["cases"]) <= set(range(5)))
        assert issue["scorers"] and set(issue["scorers"]) <= {"reference", "strict"}
        assert len(issue["reason"]) > 20
    known = verifier.load_known_issues()
    # The defects the protocol lists, as they behave without the authors' reliability guard.
    assert known[("41", 1)] == known[("41", 4)] == {"reference"}
    assert all(known[("89", c)] >= {"reference"} for c in range(5))
    assert all(known[(pid, c)] == {"reference", "strict"} for pid in ("38", "46") for c in range(5))
    assert ("14", 0) not in known  # scikit-learn imports fine here


def test_assets_ship_provenance_and_license() -> None:
    assert (ASSETS / "LICENSE").read_text(encoding="utf-8").startswith("BSD 3-Clause License")
    provenance = (ASSETS / "PROVENANCE.md").read_text(encoding="utf-8")
    assert "6f09e495f41e006375055239e4bcb18539f3a38b" in provenance
    assert verifier.DATA_SHA256 in provenance
    # The authors' data ships beside its licence, byte for byte.
    assert hashlib.sha256((ASSETS / "mtpb.jsonl").read_bytes()).hexdigest() == verifier.DATA_SHA256


@pytest.mark.slow
def test_every_reference_solution_scores_as_expected(problems: list[dict[str, object]]) -> None:
    """All 575 programs really run: outside known_issues.json both scorers pass, inside the listed ones fail."""
    pytest.importorskip("pandas", reason="MTPB programs need pandas (the 'mtpb' extra)")
    pytest.importorskip("sklearn", reason="MTPB programs need scikit-learn (the 'mtpb' extra)")
    results, errors = verifier.verify(
        problems, verifier.load_templates(), verifier.load_known_issues(), python=sys.executable, jobs=2
    )
    assert errors == []
    assert len(results) == 575
    unexpected = [(r.problem_id, r.case, r.verdict) for r in results if not r.as_expected]
    assert unexpected == []
