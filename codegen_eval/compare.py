"""Paired comparison of runs: deltas with paired bootstrap CIs, McNemar and sign-flip tests, flips, the CI gate."""

# Statistics (docs/compare.md; the tests themselves are in metrics.py):
# - The unit of resampling and testing is the problem group (a HumanEval problem; an MTPB problem with its five
#   test cases), the same unit summary.json's bootstrap CIs use. Two runs are paired on the items present in both.
# - Per group, a metric is the mean over its items of pass@k(n, c, k); the run's score is the mean over groups, so
#   the delta B - A is the mean of per-group differences d_g and its CI is a percentile bootstrap of that mean.
# - Test: when every group is one item with one sample in both runs, per-problem outcomes are binary and the
#   McNemar exact test (two-sided binomial on the discordant pairs) applies. Otherwise a two-sided paired
#   sign-flip permutation test on d_g, exact whenever the d_g lie on a small grid (per-problem pass rates c/n and
#   means over test cases always do) or are few; a seeded Monte Carlo estimate otherwise. (On binary data the
#   exact sign-flip test and McNemar's exact test coincide.)

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codegen_eval.config import NON_RESULT_FIELDS
from codegen_eval.errors import UsageError
from codegen_eval.metrics import (
    DELTA_RESAMPLES,
    MCNEMAR,
    SIGN_FLIP_RULE,
    TEST_DESCRIPTIONS,
    bootstrap_ci,
    delta_ci,
    mcnemar_exact,
    pass_at_k,
    sign_flip_test,
)
from codegen_eval.records import Outcome
from codegen_eval.rundir import EXECUTIONS, RUN_JSON, SUMMARY, ExecutionRecord, RunDir
from codegen_eval.summaries import (
    PRIMARY,
    CategoryDelta,
    Comparison,
    ConfigDiff,
    CurvePoint,
    Flip,
    FlipSide,
    GateResult,
    MetricDelta,
    PairedTest,
    RunInfo,
    RunMeta,
    RunSummary,
    ScorerComparison,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------------
# Loading runs


@dataclass(frozen=True, slots=True)
class LoadedRun:
    """A finished run as read from its directory, or from a bare summary.json (then no config or outcomes)."""

    path: Path
    label: str
    bench: str
    benchmark_version: str
    model: str
    n: int
    ks: tuple[int, ...]
    config: Mapping[str, Any]  # run.json's config (RunConfig.to_dict()); {} for a bare summary
    meta: RunMeta  # run.json; RunMeta() (nothing recorded) for a bare summary
    summary: RunSummary
    counts: Mapping[str, Mapping[str, tuple[int, int]]]  # scorer -> item -> (n, c)
    groups: Mapping[str, tuple[str, str]]  # item -> (group, category)
    has_groups: bool  # False: an older summary without item_groups (each item is its own group)
    executions: Mapping[str, tuple[ExecutionRecord, ...]] | None  # item -> records by index; None: not available

    @property
    def turns(self) -> str:
        return str(self.config.get("turns", ""))

    @property
    def scorers(self) -> list[str]:
        return list(self.counts)

    def outcomes(self) -> Counter[str]:
        """Outcome totals over the run (summary.json keeps them, so a bare summary has them too)."""
        return Counter(self.summary.outcomes)


def _label(path: Path) -> str:
    if path.name in ("multi", "single", SUMMARY) and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return path.name or str(path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: malformed JSON ({e})") from None


def load_run(path: Path) -> LoadedRun:
    """A run directory (summary.json, run.json, executions.jsonl) or a summary.json file on its own."""
    meta = RunMeta()
    records: dict[str, dict[int, ExecutionRecord]] | None = None
    if path.is_dir():
        rundir = RunDir(path)
        if not (path / SUMMARY).exists():
            if (path / RUN_JSON).exists():
                recorded = rundir.read_meta().status
                status = "?" if recorded is None else recorded
                raise UsageError(f"{path}: no {SUMMARY} (run status: {status}; finish it with run --resume {path})")
            raise UsageError(f"{path} is not a run directory (no {SUMMARY})")
        summary = rundir.read_summary()
        if (path / RUN_JSON).exists():
            meta = rundir.read_meta()
        if (path / EXECUTIONS).exists():
            records = {}
            for r in rundir.executions():
                # A record per (problem, index); a duplicate left by a resume counts once, as in the summary.
                records.setdefault(r.problem_id, {})[r.index] = r
    elif path.is_file():
        data = _read_json(path)
        if not isinstance(data, dict):
            raise UsageError(f"{path}: not a codegen-eval summary")
        summary = RunSummary.from_json(data, path)
    else:
        raise UsageError(f"{path}: no such run directory or summary file")
    # scorer -> item -> (n, c); RunSummary.from_json has made sure every scorer has them
    counts = {name: dict(block.per_problem or {}) for name, block in summary.scorers.items()}
    item_groups = summary.item_groups or {}
    groups = {item: item_groups.get(item, (item, "")) for item in counts[PRIMARY]}
    config = meta.config or {}
    bench = str(summary.bench or config.get("bench") or "")
    if not bench:
        raise UsageError(f"{path}: the summary does not name its benchmark")
    executions = None
    if records is not None:
        executions = {
            item: tuple(records[item][i] for i in sorted(records[item])) for item in counts[PRIMARY] if item in records
        }
    return LoadedRun(
        path=path,
        label=_label(path),
        bench=bench,
        benchmark_version="" if summary.benchmark_version is None else summary.benchmark_version,
        model=str(config.get("model", "")) if summary.model is None else summary.model,
        n=summary.n or max(n for n, _ in counts[PRIMARY].values()),
        ks=summary.k or (1,),
        config=dict(config),
        meta=meta,
        summary=summary,
        counts=counts,
        groups=groups,
        has_groups=summary.item_groups is not None,
        executions=executions,
    )


# --------------------------------------------------------------------------------------------------------
# Pairing and deltas


@dataclass(frozen=True, slots=True)
class Pairing:
    """The items present in both runs, and the groups they form (in run A's order)."""

    items: tuple[str, ...]
    groups: tuple[str, ...]
    members: Mapping[str, tuple[str, ...]]  # group -> its paired items
    category: Mapping[str, str]  # group -> category ("" when unknown)
    only_a: int
    only_b: int
    binary: bool  # every group is one item with one sample in both runs (McNemar applies)


def pair(a: LoadedRun, b: LoadedRun) -> Pairing:
    if a.bench != b.bench:
        raise UsageError(f"cannot compare runs of different benchmarks: {a.label} is {a.bench}, {b.label} is {b.bench}")
    a_items, b_items = a.counts[PRIMARY], b.counts[PRIMARY]
    common = tuple(i for i in a_items if i in b_items)
    if not common:
        raise UsageError(f"{a.label} and {b.label} have no problems in common")
    members: dict[str, list[str]] = {}
    category: dict[str, str] = {}
    for item in common:
        group, cat = a.groups[item]
        if b.groups[item][0] != group and b.has_groups and a.has_groups:
            log.warning("%s is in group %s in %s but %s in %s", item, group, a.label, b.groups[item][0], b.label)
        members.setdefault(group, []).append(item)
        category.setdefault(group, cat or b.groups[item][1])
    return Pairing(
        items=common,
        groups=tuple(members),
        members={g: tuple(m) for g, m in members.items()},
        category=category,
        only_a=len(a_items) - len(common),
        only_b=len(b_items) - len(common),
        binary=all(len(m) == 1 and a_items[m[0]][0] == 1 and b_items[m[0]][0] == 1 for m in members.values()),
    )


def max_k(a: LoadedRun, b: LoadedRun, pairing: Pairing) -> int:
    """The largest k that pass@k can be computed for on every paired item of both runs."""
    return min(min(a.counts[PRIMARY][i][0], b.counts[PRIMARY][i][0]) for i in pairing.items)


def group_scores(run: LoadedRun, pairing: Pairing, scorer: str, k: int, groups: Sequence[str]) -> np.ndarray[Any, Any]:
    counts = run.counts[scorer]
    return np.array(
        [float(np.mean([pass_at_k(*counts[i], k) for i in pairing.members[g]])) for g in groups], dtype=float
    )


def metric_delta(
    a: LoadedRun, b: LoadedRun, pairing: Pairing, scorer: str, k: int, groups: Sequence[str] | None = None
) -> MetricDelta:
    chosen = list(pairing.groups if groups is None else groups)
    va = group_scores(a, pairing, scorer, k, chosen)
    vb = group_scores(b, pairing, scorer, k, chosen)
    d = vb - va
    a_better, b_better = int(np.count_nonzero(d < -1e-12)), int(np.count_nonzero(d > 1e-12))
    # One sample per problem in both runs: binary outcomes, McNemar's exact test; else the sign-flip test.
    p, name = (mcnemar_exact(a_better, b_better), MCNEMAR) if pairing.binary and k == 1 else sign_flip_test(d)
    return MetricDelta(
        metric=f"pass@{k}",
        groups=len(chosen),
        a=float(va.mean()),
        a_ci95=bootstrap_ci(list(va)),
        b=float(vb.mean()),
        b_ci95=bootstrap_ci(list(vb)),
        delta=float(d.mean()),
        delta_ci95=delta_ci(d),
        test=PairedTest(name, p, a_better, b_better),
    )


def _run_info(run: LoadedRun) -> RunInfo:
    config_hash = run.summary.config_hash if run.summary.config_hash is not None else run.meta.config_hash
    return RunInfo(
        label=run.label,
        path=str(run.path),
        bench=run.bench,
        model=run.model,
        n=run.n,
        turns=run.turns,
        config_hash=config_hash or "",
        status=run.meta.status or "",
        items=len(run.counts[PRIMARY]),
    )


def config_diff(a: LoadedRun, b: LoadedRun) -> list[ConfigDiff]:
    if a.config and b.config:
        keys = sorted((set(a.config) | set(b.config)) - NON_RESULT_FIELDS)
        candidates = [ConfigDiff(key, a.config.get(key), b.config.get(key)) for key in keys]
    else:
        # A bare summary has no config: compare what the summary records.
        candidates = [
            ConfigDiff("model", a.model, b.model),
            ConfigDiff("n", a.n, b.n),
            ConfigDiff("k", list(a.ks), list(b.ks)),
            ConfigDiff("config_hash", a.summary.config_hash, b.summary.config_hash),
        ]
    candidates.append(ConfigDiff("benchmark_version", a.benchmark_version, b.benchmark_version))
    sha_a = (a.meta.benchmark or {}).get("data_sha256")
    sha_b = (b.meta.benchmark or {}).get("data_sha256")
    if sha_a and sha_b:
        candidates.append(ConfigDiff("data_sha256", sha_a, sha_b))
    return [d for d in candidates if d.a != d.b]


def _flip_side(run: LoadedRun, item: str) -> FlipSide:
    n, c = run.counts[PRIMARY][item]
    records = (run.executions or {}).get(item, ())  # none: the run has no executions.jsonl
    counts = Counter(r.outcome.value for r in records)
    detail = next((r.detail for r in records if r.outcome is not Outcome.PASSED and r.detail), "")
    return FlipSide(n, c, dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), detail)


def _status_notes(*runs: LoadedRun) -> list[str]:
    """A summary.json next to a run.json that is not `completed` may be older than the run's records."""
    return [
        f"{r.label}: run status is {r.meta.status!r}, not 'completed'; its summary may not cover every sample"
        for r in runs
        if r.meta.status not in (None, "completed")
    ]


def compare_runs(a: LoadedRun, b: LoadedRun) -> Comparison:
    """B against A: pass@k for every k both can give, per scorer present in both, per category, and flips."""
    pairing = pair(a, b)
    top = max_k(a, b, pairing)
    ks = sorted({1, *(k for k in (*a.ks, *b.ks) if k <= top)})
    notes: list[str] = []
    dropped = sorted({k for k in (*a.ks, *b.ks) if k > top})
    if dropped:
        notes.append(f"pass@{', pass@'.join(map(str, dropped))} left out: some paired problem has fewer samples")
    if not (a.has_groups and b.has_groups):
        notes.append("a summary without item_groups: each item is treated as its own problem and has no category")
    if pairing.only_a or pairing.only_b:
        notes.append(
            f"{pairing.only_a} item(s) only in A and {pairing.only_b} only in B are left out of every paired number"
        )
    notes += _status_notes(a, b)
    scorers = [s for s in a.scorers if s in b.counts]
    missing = sorted(set(a.scorers) ^ set(b.scorers))
    if missing:
        notes.append(f"scorer(s) present in one run only, not compared: {', '.join(missing)}")
    categories = sorted({c for c in pairing.category.values() if c})
    members = {cat: [g for g in pairing.groups if pairing.category[g] == cat] for cat in categories}
    results = []
    for scorer in scorers:
        metrics = tuple(metric_delta(a, b, pairing, scorer, k) for k in ks)
        by_cat = tuple(CategoryDelta(cat, metric_delta(a, b, pairing, scorer, 1, gs)) for cat, gs in members.items())
        results.append(ScorerComparison(scorer, metrics, by_cat))
    flips = []
    a_counts, b_counts = a.counts[PRIMARY], b.counts[PRIMARY]
    for item in pairing.items:
        (na, ca), (nb, cb) = a_counts[item], b_counts[item]
        if ca * nb != cb * na:
            direction = "improved" if cb / nb > ca / na else "regressed"
            group, cat = a.groups[item]
            flips.append(Flip(item, group, cat, direction, _flip_side(a, item), _flip_side(b, item)))
    return Comparison(
        a=_run_info(a),
        b=_run_info(b),
        bench=a.bench,
        config_diff=tuple(config_diff(a, b)),
        paired_items=len(pairing.items),
        paired_groups=len(pairing.groups),
        only_a=pairing.only_a,
        only_b=pairing.only_b,
        test_rule=TEST_DESCRIPTIONS[MCNEMAR] if pairing.binary else SIGN_FLIP_RULE,
        ci_rule=f"paired percentile bootstrap over problems, {DELTA_RESAMPLES} resamples, 95%",
        scorers=tuple(results),
        flips=tuple(flips),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------------------
# The CI gate


def parse_metric(text: str) -> int:
    """ "pass@K" -> K; "pass_rate" (the mean of c/n, equal to pass@1) -> 1."""
    t = text.strip().lower()
    if t in ("pass_rate", "pass-rate", "passrate"):
        return 1
    if t.startswith("pass@") and t[5:].isdecimal() and int(t[5:]) >= 1:
        return int(t[5:])
    raise UsageError(f"--metric must be pass@K or pass_rate (got {text!r})")


def _pp(x: float) -> str:
    return f"{100 * x:.2f}"


def gate(
    run: LoadedRun,
    baseline: LoadedRun,
    *,
    metric: str = "pass@1",
    scorer: str = PRIMARY,
    max_drop: float = 0.02,
    alpha: float = 0.05,
) -> GateResult:
    """Fail when the run's metric is below the baseline's by more than max_drop AND the drop is significant."""
    if not 0 <= max_drop < 1:
        raise UsageError(f"--max-drop is a fraction in [0, 1) (0.02 = 2 points), got {max_drop}")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be in (0, 1), got {alpha}")
    k = parse_metric(metric)
    for r in (run, baseline):
        if scorer not in r.counts:
            raise UsageError(f"{r.label} has no scorer {scorer!r} (it has: {', '.join(r.scorers)})")
    pairing = pair(baseline, run)
    top = max_k(baseline, run, pairing)
    if k > top:
        raise UsageError(f"{metric} needs at least {k} samples per problem; the runs have {top} on some problem")
    d = metric_delta(baseline, run, pairing, scorer, k)
    drop = -d.delta
    failed = drop > max_drop and d.test.p_value < alpha
    name = metric if metric.startswith("pass@") else f"{metric} (pass@1)"
    test = TEST_DESCRIPTIONS[d.test.name]
    what = (
        f"{name} (scorer {scorer}) went from {_pp(d.a)}% in the baseline ({baseline.label}) to {_pp(d.b)}% in "
        f"{run.label} over {len(pairing.groups)} paired problems ({len(pairing.items)} items), a change of "
        f"{100 * d.delta:+.2f} points (95% CI {100 * d.delta_ci95[0]:+.2f} to {100 * d.delta_ci95[1]:+.2f}); "
        f"{d.test.a_better} problem(s) got worse and {d.test.b_better} got better ({test}: p = {d.test.p_value:.4g})."
    )
    allowed = f"{100 * max_drop:.2f} points"
    if failed:
        verdict = f"REGRESSION: {what} The drop exceeds the allowed {allowed} and is significant (p < alpha = {alpha})."
    elif drop > max_drop:
        verdict = (
            f"OK (not significant): {what} The drop exceeds the allowed {allowed} but is not significant at "
            f"alpha = {alpha}, so the gate passes; more problems or samples would settle it."
        )
    elif drop > 0:
        verdict = f"OK: {what} That drop is within the allowed {allowed}."
    else:
        verdict = f"OK: {what} No drop (allowed: {allowed})."
    for note in _status_notes(run, baseline):
        verdict += f" Note: {note}."
    if pairing.only_a or pairing.only_b:
        verdict += f" Left out: {pairing.only_b} item(s) only in the run, {pairing.only_a} only in the baseline."
    return GateResult(
        failed=failed,
        scorer=scorer,
        metric=metric,
        max_drop=max_drop,
        alpha=alpha,
        delta=d,
        paired_items=len(pairing.items),
        paired_groups=len(pairing.groups),
        explanation=verdict,
    )


# --------------------------------------------------------------------------------------------------------
# Curves and single/multi pairs (for the report)


def curve_ks(max_n: int, extra: Sequence[int] = ()) -> list[int]:
    """Every k up to 12, log-spaced beyond (k = 1, 2, 5, 10, 20, 50, 100, ...), plus the ks the run asked for."""
    if max_n <= 12:
        return list(range(1, max_n + 1))
    ks = {1, max_n, *(k for k in extra if 1 <= k <= max_n)}
    decade = 1
    while decade <= max_n:
        ks.update(m * decade for m in (1, 2, 5) if m * decade <= max_n)
        decade *= 10
    return sorted(ks)


def pass_at_k_curve(run: LoadedRun, scorer: str = PRIMARY) -> list[CurvePoint]:
    """pass@k for k = 1 .. min n with bootstrap CIs (the same estimator and unit as summary.json)."""
    counts = run.counts[scorer]
    members: dict[str, list[str]] = {}
    for item in counts:
        members.setdefault(run.groups[item][0], []).append(item)
    top = min(n for n, _ in counts.values())
    out = []
    for k in curve_ks(top, run.ks):
        per_group = [float(np.mean([pass_at_k(*counts[i], k) for i in m])) for m in members.values()]
        out.append(CurvePoint(k, float(np.mean(per_group)), bootstrap_ci(per_group)))
    return out


def turn_pairs(runs: Sequence[LoadedRun]) -> list[tuple[LoadedRun, LoadedRun]]:
    """(single, multi) pairs: for each single-turn run, the multi-turn run of the same benchmark whose config is
    equal but for turns, else one with the same model, else the only multi-turn run of that benchmark."""
    out: list[tuple[LoadedRun, LoadedRun]] = []
    used: set[int] = set()

    def key(r: LoadedRun) -> str:
        return json.dumps(
            {k: v for k, v in r.config.items() if k not in NON_RESULT_FIELDS and k != "turns"}, sort_keys=True
        )

    for s in (r for r in runs if r.turns == "single"):
        candidates = [m for m in runs if m.turns == "multi" and m.bench == s.bench and id(m) not in used]
        match = next((m for m in candidates if key(m) == key(s)), None)
        match = match or next((m for m in candidates if m.model == s.model), None)
        if match is None and len(candidates) == 1:
            match = candidates[0]
        if match is not None:
            used.add(id(match))
            out.append((s, match))
    return out
