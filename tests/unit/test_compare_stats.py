"""Paired statistics of compare/check against known values and synthetic cases with a known truth."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from codegen_eval.compare import compare_runs, curve_ks, gate, load_run, metric_delta, pair, parse_metric
from codegen_eval.errors import UsageError
from codegen_eval.metrics import (
    MCNEMAR,
    SIGN_FLIP_EXACT,
    SIGN_FLIP_MC,
    delta_ci,
    mcnemar_exact,
    sign_flip_test,
    summarize,
)


def write_summary(
    path: Path,
    results: Mapping[str, Sequence[bool]],
    *,
    bench: str = "humaneval",
    groups: Mapping[str, tuple[str, str]] | None = None,
    ks: Sequence[int] = (1,),
) -> Path:
    """A summary.json made by the real metrics code from per-item sample verdicts."""
    items = dict(groups) if groups else {i: (i, "") for i in results}
    verdicts = [(i, ok, {}, "passed" if ok else "failed") for i, oks in results.items() for ok in oks]
    n = max(len(v) for v in results.values())
    summary = {"bench": bench, "benchmark_version": f"{bench}-1", "model": path.stem, "n": n, "k": list(ks)}
    summary |= summarize(items, verdicts, ks).to_json()
    path.write_text(json.dumps(summary))
    return path


# -- McNemar ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a_only", "b_only", "expected"),
    [
        (0, 0, Fraction(1)),
        (0, 1, Fraction(1)),  # 2 * 1/2, capped at 1
        (1, 6, Fraction(2 * (1 + 7), 2**7)),  # 0.125
        (0, 5, Fraction(2, 2**5)),  # 0.0625
        (2, 10, Fraction(2 * (1 + 12 + 66), 2**12)),  # 0.03857...
        (5, 5, Fraction(1)),
        (3, 9, Fraction(2 * (1 + 12 + 66 + 220), 2**12)),  # 0.1460
    ],
)
def test_mcnemar_exact_known_values(a_only: int, b_only: int, expected: Fraction) -> None:
    assert mcnemar_exact(a_only, b_only) == pytest.approx(float(min(expected, Fraction(1))), abs=1e-15)
    assert mcnemar_exact(b_only, a_only) == mcnemar_exact(a_only, b_only)


def test_mcnemar_larger_case() -> None:
    # 25 discordant pairs split 20/5: 2 * (1 + 25 + 300 + 2300 + 12650 + 53130) / 2**25; scipy's
    # binomtest(5, 25).pvalue gives the same 0.004077315330505371.
    assert mcnemar_exact(20, 5) == pytest.approx(0.004077315330505371, rel=1e-12)


def test_mcnemar_refuses_negative_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


# -- sign-flip -------------------------------------------------------------------------------------------------


def test_sign_flip_known_values() -> None:
    assert sign_flip_test([1.0] * 5) == (pytest.approx(2 / 32), SIGN_FLIP_EXACT)
    assert sign_flip_test([0.5, -0.5])[0] == 1.0
    assert sign_flip_test([])[0] == 1.0
    assert sign_flip_test([0.0, 0.0, 0.0])[0] == 1.0
    # |±1 ± 2 ± 3| >= 6 only for all-plus and all-minus: 2 of 8 patterns
    assert sign_flip_test([1.0, 2.0, 3.0])[0] == pytest.approx(0.25)
    # zeros are dropped: they change no sum
    assert sign_flip_test([1.0, 2.0, 3.0, 0.0, 0.0])[0] == pytest.approx(0.25)


@pytest.mark.parametrize(("a_only", "b_only"), [(0, 7), (1, 6), (3, 9), (4, 4), (2, 0)])
def test_exact_sign_flip_equals_mcnemar_on_binary_outcomes(a_only: int, b_only: int) -> None:
    d = [-1.0] * a_only + [1.0] * b_only + [0.0] * 10  # ties (both pass or both fail) are zeros
    p, name = sign_flip_test(d)
    assert name == SIGN_FLIP_EXACT
    assert p == pytest.approx(mcnemar_exact(a_only, b_only), abs=1e-12)


def _brute_force(d: Sequence[float]) -> float:
    observed = abs(sum(d))
    hits = sum(abs(float(np.dot(s, d))) >= observed - 1e-12 for s in product([-1.0, 1.0], repeat=len(d)))
    return hits / 2 ** len(d)


def test_exact_enumeration_matches_brute_force() -> None:
    d = list(np.random.default_rng(3).normal(0.1, 1.0, size=9))  # on no small grid: enumerated
    assert sign_flip_test(d)[0] == pytest.approx(_brute_force(d), abs=1e-12)


def test_lattice_distribution_matches_brute_force() -> None:
    # Per-problem pass-rate differences of MTPB-like data (multiples of 1/5) and of n = 3 samples (1/3):
    # the dynamic-programming distribution gives the same p as enumerating all 2**m sign patterns.
    rng = np.random.default_rng(4)
    for denominator in (5, 3, 15):
        d = [float(x) / denominator for x in rng.integers(-denominator, denominator + 1, size=13)]
        p, name = sign_flip_test(d)
        assert name == SIGN_FLIP_EXACT
        assert p == pytest.approx(_brute_force([x for x in d if x != 0]), abs=1e-12)
        assert p == pytest.approx(sign_flip_test(d, lattice=False)[0], abs=1e-12)


def test_lattice_is_exact_for_many_problems() -> None:
    d = [0.2] * 60 + [-0.2] * 40  # 100 differing problems: far beyond enumeration, still exact
    p, name = sign_flip_test(d)
    assert name == SIGN_FLIP_EXACT
    assert p == pytest.approx(mcnemar_exact(40, 60), rel=1e-9)  # equal magnitudes: the sign test


def test_monte_carlo_agrees_with_exact() -> None:
    rng = np.random.default_rng(7)
    d = rng.normal(0.25, 1.0, size=18)
    exact, name = sign_flip_test(d, exact_max=18)
    assert name == SIGN_FLIP_EXACT
    mc, name = sign_flip_test(d, exact_max=10, resamples=20_000)
    assert name == SIGN_FLIP_MC
    assert abs(mc - exact) < 0.015  # MC standard error at p ~ 0.3 is ~0.003
    assert 0.0 < exact < 1.0


def test_monte_carlo_p_is_never_zero() -> None:
    p, name = sign_flip_test([1.0] * 40, resamples=1000, lattice=False)
    assert name == SIGN_FLIP_MC
    assert p == pytest.approx(1 / 1001)


# -- paired bootstrap CI -----------------------------------------------------------------------------------------


def test_delta_ci_contains_true_delta_in_a_large_synthetic_case() -> None:
    rng = np.random.default_rng(11)
    difficulty = rng.uniform(0.05, 0.85, size=1000)
    a = rng.random(1000) < difficulty
    b = rng.random(1000) < difficulty + 0.1  # true delta of the pass probabilities: +0.10
    lo, hi = delta_ci(b.astype(float) - a.astype(float))
    assert lo < 0.10 < hi
    assert lo > 0 and hi - lo < 0.08  # and it is informative: excludes 0 and is not wide


def test_delta_ci_coverage_is_near_95_percent() -> None:
    rng = np.random.default_rng(5)
    true_delta, groups, trials, covered = 0.08, 120, 200, 0
    for _ in range(trials):
        difficulty = rng.uniform(0.1, 0.8, size=groups)
        a = (rng.random(groups) < difficulty).astype(float)
        b = (rng.random(groups) < difficulty + true_delta).astype(float)
        lo, hi = delta_ci(b - a, resamples=2000)
        covered += lo <= true_delta <= hi
    assert 0.88 <= covered / trials <= 0.99


# -- pairing, deltas and the gate on real summaries --------------------------------------------------------------


def test_metric_delta_is_the_difference_of_the_summaries(tmp_path: Path) -> None:
    a_results = {f"P/{i}": [i % 2 == 0, i % 3 == 0, True] for i in range(12)}
    b_results = {f"P/{i}": [True, i % 3 == 0, i % 4 != 1] for i in range(12)}
    a = load_run(write_summary(tmp_path / "a.json", a_results, ks=(1, 2)))
    b = load_run(write_summary(tmp_path / "b.json", b_results, ks=(1, 2)))
    pairing = pair(a, b)
    assert not pairing.binary  # n = 3
    for k in (1, 2, 3):
        d = metric_delta(a, b, pairing, "pass", k)
        if k in (1, 2):
            sa = a.summary.to_json()["scorers"]["pass"]["pass_at_k"][f"pass@{k}"]
            sb = b.summary.to_json()["scorers"]["pass"]["pass_at_k"][f"pass@{k}"]
            assert d.a == pytest.approx(sa) and d.b == pytest.approx(sb)
            assert list(d.a_ci95) == pytest.approx(
                a.summary.to_json()["scorers"]["pass"]["pass_at_k_ci95"][f"pass@{k}"]
            )
        assert d.delta == pytest.approx(d.b - d.a)
        assert d.delta_ci95[0] <= d.delta <= d.delta_ci95[1]
        assert d.test.name in (SIGN_FLIP_EXACT, SIGN_FLIP_MC)


def test_mcnemar_is_used_for_single_sample_single_item_problems(tmp_path: Path) -> None:
    a = load_run(write_summary(tmp_path / "a.json", {f"P/{i}": [True] for i in range(20)}))
    b = load_run(write_summary(tmp_path / "b.json", {f"P/{i}": [i not in (1, 2, 3, 4, 5, 6)] for i in range(20)}))
    c = compare_runs(a, b)
    m = c.scorers[0].metrics[0]
    assert m.test.name == MCNEMAR and (m.test.a_better, m.test.b_better) == (6, 0)
    assert m.test.p_value == pytest.approx(2 / 64)
    assert m.delta == pytest.approx(-0.3)
    assert [f.item for f in c.flips] == [f"P/{i}" for i in range(1, 7)]
    assert all(f.direction == "regressed" for f in c.flips)


def test_groups_are_the_unit_for_multi_item_problems(tmp_path: Path) -> None:
    groups = {f"mtpb/{g}/{c}": (f"mtpb/{g}", "math" if g < 3 else "string") for g in range(6) for c in range(5)}
    a = load_run(write_summary(tmp_path / "a.json", {i: [False] for i in groups}, bench="mtpb", groups=groups))
    b_res = {i: [i.endswith(("/0", "/1"))] for i in groups}  # every problem: 2 of 5 cases pass
    b = load_run(write_summary(tmp_path / "b.json", b_res, bench="mtpb", groups=groups))
    c = compare_runs(a, b)
    assert (c.paired_groups, c.paired_items) == (6, 30)
    m = c.scorers[0].metrics[0]
    assert m.test.name == SIGN_FLIP_EXACT  # n = 1 but 5 items per problem: not binary per problem
    assert m.delta == pytest.approx(0.4)
    assert m.test.p_value == pytest.approx(2 / 64)  # 6 equal positive differences
    assert [(cd.category, cd.delta.groups) for cd in c.scorers[0].by_category] == [("math", 3), ("string", 3)]
    assert c.scorers[0].by_category[0].delta.test.p_value == pytest.approx(2 / 8)


def test_only_common_items_are_paired(tmp_path: Path) -> None:
    a = load_run(write_summary(tmp_path / "a.json", {f"P/{i}": [True] for i in range(10)}))
    b = load_run(write_summary(tmp_path / "b.json", {f"P/{i}": [False] for i in range(5, 13)}))
    c = compare_runs(a, b)
    assert (c.paired_items, c.only_a, c.only_b) == (5, 5, 3)
    assert c.scorers[0].metrics[0].a == 1.0 and c.scorers[0].metrics[0].b == 0.0
    assert any("only in A" in note for note in c.notes)


def test_pairing_refuses_other_benchmarks_and_disjoint_runs(tmp_path: Path) -> None:
    a = load_run(write_summary(tmp_path / "a.json", {"P/1": [True]}))
    m = load_run(write_summary(tmp_path / "m.json", {"P/1": [True]}, bench="mtpb"))
    with pytest.raises(UsageError, match=r"different benchmarks: a\.json is humaneval, m\.json is mtpb"):
        pair(a, m)
    d = load_run(write_summary(tmp_path / "d.json", {"P/2": [True]}))
    with pytest.raises(UsageError, match="no problems in common"):
        pair(a, d)


def _gate_runs(tmp_path: Path, regressions: int, problems: int = 40) -> tuple[Path, Path]:
    base = write_summary(tmp_path / "base.json", {f"P/{i}": [True] for i in range(problems)})
    run = write_summary(tmp_path / f"run{regressions}.json", {f"P/{i}": [i >= regressions] for i in range(problems)})
    return base, run


def test_gate_fails_on_a_significant_drop_beyond_the_threshold(tmp_path: Path) -> None:
    base, run = _gate_runs(tmp_path, regressions=8)  # 20-point drop, McNemar p = 2/256
    result = gate(load_run(run), load_run(base), max_drop=0.02, alpha=0.05)
    assert result.failed
    assert result.delta.test.p_value == pytest.approx(2 / 256)
    assert result.explanation.startswith("REGRESSION: pass@1 (scorer pass) went from 100.00%")
    assert "-20.00 points" in result.explanation and "McNemar" in result.explanation


def test_gate_passes_a_drop_that_is_not_significant(tmp_path: Path) -> None:
    base, run = _gate_runs(tmp_path, regressions=2)  # 5-point drop, p = 0.5
    result = gate(load_run(run), load_run(base), max_drop=0.02)
    assert not result.failed
    assert result.explanation.startswith("OK (not significant)")


def test_gate_passes_a_significant_drop_within_the_threshold(tmp_path: Path) -> None:
    base, run = _gate_runs(tmp_path, regressions=8)
    result = gate(load_run(run), load_run(base), max_drop=0.25)
    assert not result.failed
    assert "That drop is within the allowed 25.00 points." in result.explanation


def test_gate_alpha_decides_significance(tmp_path: Path) -> None:
    base, run = _gate_runs(tmp_path, regressions=5)  # p = 2/32 = 0.0625
    assert not gate(load_run(run), load_run(base), alpha=0.05).failed
    assert gate(load_run(run), load_run(base), alpha=0.1).failed


def test_gate_rejects_bad_arguments(tmp_path: Path) -> None:
    base, run = _gate_runs(tmp_path, regressions=1)
    r, b = load_run(run), load_run(base)
    for kwargs, message in (
        ({"max_drop": -0.1}, "--max-drop"),
        ({"alpha": 1.5}, "--alpha"),
        ({"metric": "pass@2"}, "needs at least 2 samples"),
        ({"metric": "accuracy"}, "--metric must be"),
        ({"scorer": "strict"}, "has no scorer 'strict'"),
    ):
        with pytest.raises(UsageError, match=message):
            gate(r, b, **kwargs)  # type: ignore[arg-type]


def test_parse_metric() -> None:
    assert parse_metric("pass@1") == 1
    assert parse_metric("pass@10") == 10
    assert parse_metric("pass_rate") == 1
    for bad in ("pass@0", "pass@", "pass@x", "pass@²", "rate"):
        with pytest.raises(UsageError):
            parse_metric(bad)


def test_curve_ks() -> None:
    assert curve_ks(1) == [1]
    assert curve_ks(5) == [1, 2, 3, 4, 5]
    assert curve_ks(200, [1, 10, 100]) == [1, 2, 5, 10, 20, 50, 100, 200]
    assert curve_ks(30, [25]) == [1, 2, 5, 10, 20, 25, 30]


# -- loading -------------------------------------------------------------------------------------------------------


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such run directory or summary file"):
        load_run(tmp_path / "missing")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="malformed JSON"):
        load_run(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(UsageError, match="not a codegen-eval summary"):
        load_run(other)
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"bench": "humaneval", "scorers": {"pass": {"per_problem": {"P/1": [1, 2]}}}}))
    with pytest.raises(UsageError, match=r"\[n, c\]"):
        load_run(counts)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps({"status": "interrupted"}))
    with pytest.raises(UsageError, match=r"no summary\.json \(run status: interrupted"):
        load_run(unfinished)
    with pytest.raises(UsageError, match="is not a run directory"):
        load_run(tmp_path)


def test_an_old_summary_without_item_groups_pairs_items_as_problems(tmp_path: Path) -> None:
    path = write_summary(tmp_path / "old.json", {"P/1": [True], "P/2": [False]})
    data = json.loads(path.read_text())
    del data["item_groups"]
    path.write_text(json.dumps(data))
    run = load_run(path)
    assert not run.has_groups and run.groups["P/1"] == ("P/1", "")
    c = compare_runs(run, run)
    assert c.paired_groups == 2 and any("item_groups" in n for n in c.notes)
