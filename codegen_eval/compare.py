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
    PRIMARY,
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
    config: Mapping[str, Any]  # run.json's config; {} for a bare summary
    meta: Mapping[str, Any]  # run.json; {} for a bare summary
    summary: Mapping[str, Any]
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

    @property
    def items(self) -> list[str]:
        return list(self.counts[PRIMARY])

    def outcome_counts(self, item: str) -> Counter[str] | None:
        if self.executions is None or item not in self.executions:
            return None
        return Counter(r.outcome.value for r in self.executions[item])

    def outcomes(self) -> Counter[str]:
        """Outcome totals over the run (summary.json keeps them, so a bare summary has them too)."""
        return Counter({str(k): int(v) for k, v in dict(self.summary.get("outcomes") or {}).items()})


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


def _parse_counts(summary: Mapping[str, Any], where: Path) -> dict[str, dict[str, tuple[int, int]]]:
    scorers = summary.get("scorers")
    if not isinstance(scorers, dict) or PRIMARY not in scorers:
        raise UsageError(f"{where}: not a codegen-eval summary (no scorers.{PRIMARY})")
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for name, block in scorers.items():
        per = block.get("per_problem") if isinstance(block, dict) else None
        if not isinstance(per, dict):
            raise UsageError(f"{where}: scorer {name!r} has no per_problem counts (summary too old to compare?)")
        counts: dict[str, tuple[int, int]] = {}
        for item, nc in per.items():
            ok = (
                isinstance(nc, list)
                and len(nc) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in nc)
            )
            if not ok or not 0 <= nc[1] <= nc[0] or nc[0] < 1:
                raise UsageError(f"{where}: scorer {name!r}, item {item!r}: per_problem must be [n, c] with 0<=c<=n")
            counts[str(item)] = (nc[0], nc[1])
        out[str(name)] = counts
    if not out[PRIMARY]:
        raise UsageError(f"{where}: the summary scores no problems")
    return out


def load_run(path: Path) -> LoadedRun:
    """A run directory (summary.json, run.json, executions.jsonl) or a summary.json file on its own."""
    meta: dict[str, Any] = {}
    records: dict[str, dict[int, ExecutionRecord]] | None = None
    if path.is_dir():
        rundir = RunDir(path)
        if not (path / SUMMARY).exists():
            if (path / RUN_JSON).exists():
                status = rundir.read_meta().get("status", "?")
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
        summary = _read_json(path)
        if not isinstance(summary, dict):
            raise UsageError(f"{path}: not a codegen-eval summary")
    else:
        raise UsageError(f"{path}: no such run directory or summary file")
    counts = _parse_counts(summary, path)
    raw_groups = summary.get("item_groups")
    has_groups = isinstance(raw_groups, dict)
    groups: dict[str, tuple[str, str]] = {}
    for item in counts[PRIMARY]:
        entry = raw_groups.get(item) if isinstance(raw_groups, dict) else None
        if isinstance(entry, list) and len(entry) == 2:
            groups[item] = (str(entry[0]), str(entry[1]))
        else:
            groups[item] = (item, "")
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    bench = str(summary.get("bench") or (config or {}).get("bench") or "")
    if not bench:
        raise UsageError(f"{path}: the summary does not name its benchmark")
    ks_raw = summary.get("k") or [1]
    executions = None
    if records is not None:
        executions = {
            item: tuple(records[item][i] for i in sorted(records[item])) for item in counts[PRIMARY] if item in records
        }
    return LoadedRun(
        path=path,
        label=_label(path),
        bench=bench,
        benchmark_version=str(summary.get("benchmark_version", "")),
        model=str(summary.get("model", (config or {}).get("model", ""))),
        n=int(summary.get("n") or max(n for n, _ in counts[PRIMARY].values())),
        ks=tuple(int(k) for k in ks_raw),
        config=dict(config or {}),
        meta=meta,
        summary=summary,
        counts=counts,
        groups=groups,
        has_groups=has_groups,
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
    binary = all(len(m) == 1 and a_items[m[0]][0] == 1 and b_items[m[0]][0] == 1 for m in members.values())
    return Pairing(
        items=common,
        groups=tuple(members),
        members={g: tuple(m) for g, m in members.items()},
        category=category,
        only_a=len(a_items) - len(common),
        only_b=len(b_items) - len(common),
        binary=binary,
    )


def max_k(a: LoadedRun, b: LoadedRun, pairing: Pairing) -> int:
    """The largest k that pass@k can be computed for on every paired item of both runs."""
    return min(min(a.counts[PRIMARY][i][0], b.counts[PRIMARY][i][0]) for i in pairing.items)


def group_scores(run: LoadedRun, pairing: Pairing, scorer: str, k: int, groups: Sequence[str]) -> np.ndarray[Any, Any]:
    counts = run.counts[scorer]
    return np.array(
        [float(np.mean([pass_at_k(*counts[i], k) for i in pairing.members[g]])) for g in groups], dtype=float
    )


@dataclass(frozen=True, slots=True)
class PairedTest:
    name: str  # MCNEMAR, SIGN_FLIP_EXACT or SIGN_FLIP_MC
    p_value: float
    a_better: int  # problems where A scored higher (McNemar: passed only in A)
    b_better: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "p_value": self.p_value, "a_better": self.a_better, "b_better": self.b_better}


@dataclass(frozen=True, slots=True)
class MetricDelta:
    """One metric of two runs on the paired problems: values, bootstrap CIs, B - A with its paired CI and test."""

    metric: str  # "pass@1", "pass@10"
    groups: int
    a: float
    a_ci95: tuple[float, float]
    b: float
    b_ci95: tuple[float, float]
    delta: float
    delta_ci95: tuple[float, float]
    test: PairedTest

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "groups": self.groups,
            "a": self.a,
            "a_ci95": list(self.a_ci95),
            "b": self.b,
            "b_ci95": list(self.b_ci95),
            "delta": self.delta,
            "delta_ci95": list(self.delta_ci95),
            "test": self.test.to_json(),
        }


def metric_delta(
    a: LoadedRun, b: LoadedRun, pairing: Pairing, scorer: str, k: int, groups: Sequence[str] | None = None
) -> MetricDelta:
    chosen = list(pairing.groups if groups is None else groups)
    va = group_scores(a, pairing, scorer, k, chosen)
    vb = group_scores(b, pairing, scorer, k, chosen)
    d = vb - va
    a_better, b_better = int(np.count_nonzero(d < -1e-12)), int(np.count_nonzero(d > 1e-12))
    if pairing.binary and k == 1:
        test = PairedTest(MCNEMAR, mcnemar_exact(a_better, b_better), a_better, b_better)
    else:
        p, name = sign_flip_test(d)
        test = PairedTest(name, p, a_better, b_better)
    return MetricDelta(
        metric=f"pass@{k}",
        groups=len(chosen),
        a=float(va.mean()),
        a_ci95=bootstrap_ci(list(va)),
        b=float(vb.mean()),
        b_ci95=bootstrap_ci(list(vb)),
        delta=float(d.mean()),
        delta_ci95=delta_ci(d),
        test=test,
    )


@dataclass(frozen=True, slots=True)
class CategoryDelta:
    category: str
    delta: MetricDelta  # pass@1, the pass rate


@dataclass(frozen=True, slots=True)
class ScorerComparison:
    scorer: str
    metrics: tuple[MetricDelta, ...]
    by_category: tuple[CategoryDelta, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": {m.metric: m.to_json() for m in self.metrics},
            "by_category": {c.category: c.delta.to_json() for c in self.by_category},
        }


@dataclass(frozen=True, slots=True)
class Flip:
    """An item whose primary-scorer pass fraction differs between the runs (with n = 1: a pass/fail flip)."""

    item: str
    group: str
    category: str
    a: tuple[int, int]  # (n, c)
    b: tuple[int, int]
    a_outcomes: tuple[tuple[str, int], ...]  # () when the run has no executions.jsonl
    b_outcomes: tuple[tuple[str, int], ...]
    a_detail: str
    b_detail: str

    @property
    def direction(self) -> str:
        return "improved" if self.b[1] / self.b[0] > self.a[1] / self.a[0] else "regressed"

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "group": self.group,
            "category": self.category,
            "direction": self.direction,
            "a": {"n": self.a[0], "c": self.a[1], "outcomes": dict(self.a_outcomes), "detail": self.a_detail},
            "b": {"n": self.b[0], "c": self.b[1], "outcomes": dict(self.b_outcomes), "detail": self.b_detail},
        }


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    key: str
    a: Any
    b: Any


@dataclass(frozen=True, slots=True)
class RunInfo:
    label: str
    path: str
    bench: str
    model: str
    n: int
    turns: str
    config_hash: str
    status: str
    items: int

    @staticmethod
    def of(run: LoadedRun) -> RunInfo:
        return RunInfo(
            label=run.label,
            path=str(run.path),
            bench=run.bench,
            model=run.model,
            n=run.n,
            turns=run.turns,
            config_hash=str(run.summary.get("config_hash", run.meta.get("config_hash", ""))),
            status=str(run.meta.get("status", "")),
            items=len(run.counts[PRIMARY]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "path": self.path,
            "bench": self.bench,
            "model": self.model,
            "n": self.n,
            "turns": self.turns,
            "config_hash": self.config_hash,
            "status": self.status,
            "items": self.items,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Run B against run A on the problems present in both. Deltas are B - A."""

    a: RunInfo
    b: RunInfo
    bench: str
    config_diff: tuple[ConfigDiff, ...]
    paired_items: int
    paired_groups: int
    only_a: int
    only_b: int
    test_rule: str  # which test the p-values come from, in words
    scorers: tuple[ScorerComparison, ...]
    flips: tuple[Flip, ...]
    notes: tuple[str, ...]

    def scorer(self, name: str) -> ScorerComparison | None:
        return next((s for s in self.scorers if s.scorer == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "bench": self.bench,
            "config_diff": [{"key": d.key, "a": d.a, "b": d.b} for d in self.config_diff],
            "paired": {
                "items": self.paired_items,
                "groups": self.paired_groups,
                "only_a": self.only_a,
                "only_b": self.only_b,
            },
            "test": self.test_rule,
            "delta": "b - a",
            "ci": f"paired percentile bootstrap over problems, {DELTA_RESAMPLES} resamples, 95%",
            "scorers": {s.scorer: s.to_json() for s in self.scorers},
            "flips": [f.to_json() for f in self.flips],
            "notes": list(self.notes),
        }


def config_diff(a: LoadedRun, b: LoadedRun) -> list[ConfigDiff]:
    out: list[ConfigDiff] = []
    if a.config and b.config:
        for key in sorted(set(a.config) | set(b.config)):
            if key in NON_RESULT_FIELDS:
                continue
            if a.config.get(key) != b.config.get(key):
                out.append(ConfigDiff(key, a.config.get(key), b.config.get(key)))
    else:
        # A bare summary has no config: compare what the summary records.
        for key, va, vb in (("model", a.model, b.model), ("n", a.n, b.n), ("k", list(a.ks), list(b.ks))):
            if va != vb:
                out.append(ConfigDiff(key, va, vb))
        ha, hb = a.summary.get("config_hash"), b.summary.get("config_hash")
        if ha != hb:
            out.append(ConfigDiff("config_hash", ha, hb))
    if a.benchmark_version != b.benchmark_version:
        out.append(ConfigDiff("benchmark_version", a.benchmark_version, b.benchmark_version))
    sha_a = dict(a.meta.get("benchmark") or {}).get("data_sha256")
    sha_b = dict(b.meta.get("benchmark") or {}).get("data_sha256")
    if sha_a and sha_b and sha_a != sha_b:
        out.append(ConfigDiff("data_sha256", sha_a, sha_b))
    return out


def _outcome_summary(run: LoadedRun, item: str) -> tuple[tuple[tuple[str, int], ...], str]:
    if run.executions is None or item not in run.executions:
        return (), ""
    records = run.executions[item]
    counts = Counter(r.outcome.value for r in records)
    detail = next((r.detail for r in records if r.outcome is not Outcome.PASSED and r.detail), "")
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), detail


def _status_notes(*runs: LoadedRun) -> list[str]:
    """A summary.json next to a run.json that is not `completed` may be older than the run's records."""
    return [
        f"{r.label}: run status is {r.meta['status']!r}, not 'completed'; its summary may not cover every sample"
        for r in runs
        if r.meta.get("status") not in (None, "completed")
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
    results = []
    for scorer in scorers:
        metrics = tuple(metric_delta(a, b, pairing, scorer, k) for k in ks)
        by_cat = tuple(
            CategoryDelta(
                cat, metric_delta(a, b, pairing, scorer, 1, [g for g in pairing.groups if pairing.category[g] == cat])
            )
            for cat in categories
        )
        results.append(ScorerComparison(scorer, metrics, by_cat))
    flips = []
    a_counts, b_counts = a.counts[PRIMARY], b.counts[PRIMARY]
    for item in pairing.items:
        (na, ca), (nb, cb) = a_counts[item], b_counts[item]
        if ca * nb != cb * na:
            ao, ad = _outcome_summary(a, item)
            bo, bd = _outcome_summary(b, item)
            group, cat = a.groups[item]
            flips.append(Flip(item, group, cat, (na, ca), (nb, cb), ao, bo, ad, bd))
    rule = TEST_DESCRIPTIONS[MCNEMAR] if pairing.binary else SIGN_FLIP_RULE
    return Comparison(
        a=RunInfo.of(a),
        b=RunInfo.of(b),
        bench=a.bench,
        config_diff=tuple(config_diff(a, b)),
        paired_items=len(pairing.items),
        paired_groups=len(pairing.groups),
        only_a=pairing.only_a,
        only_b=pairing.only_b,
        test_rule=rule,
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
    if t.startswith("pass@") and t[5:].isdigit() and int(t[5:]) >= 1:
        return int(t[5:])
    raise UsageError(f"--metric must be pass@K or pass_rate (got {text!r})")


@dataclass(frozen=True, slots=True)
class GateResult:
    failed: bool
    scorer: str
    metric: str  # as the user named it
    max_drop: float
    alpha: float
    delta: MetricDelta  # a = baseline, b = the run
    paired_items: int
    paired_groups: int
    only_run: int
    only_baseline: int
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "scorer": self.scorer,
            "metric": self.metric,
            "max_drop": self.max_drop,
            "alpha": self.alpha,
            "baseline": self.delta.a,
            "run": self.delta.b,
            "drop": -self.delta.delta,
            "delta_ci95": list(self.delta.delta_ci95),
            "test": self.delta.test.to_json(),
            "paired_items": self.paired_items,
            "paired_groups": self.paired_groups,
            "explanation": self.explanation,
        }


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
    significant = d.test.p_value < alpha
    failed = drop > max_drop and significant
    name = metric if metric.startswith("pass@") else f"{metric} (pass@1)"
    test = TEST_DESCRIPTIONS[d.test.name]
    what = (
        f"{name} (scorer {scorer}) went from {_pp(d.a)}% in the baseline ({baseline.label}) to {_pp(d.b)}% in "
        f"{run.label} over {len(pairing.groups)} paired problems ({len(pairing.items)} items), a change of "
        f"{100 * d.delta:+.2f} points (95% CI {100 * d.delta_ci95[0]:+.2f} to {100 * d.delta_ci95[1]:+.2f}); "
        f"{d.test.a_better} problem(s) got worse and {d.test.b_better} got better ({test}: p = {d.test.p_value:.4g})."
    )
    if failed:
        verdict = (
            f"REGRESSION: {what} The drop exceeds the allowed {100 * max_drop:.2f} points and is significant "
            f"(p < alpha = {alpha})."
        )
    elif drop > max_drop:
        verdict = (
            f"OK (not significant): {what} The drop exceeds the allowed {100 * max_drop:.2f} points but is not "
            f"significant at alpha = {alpha}, so the gate passes; more problems or samples would settle it."
        )
    elif drop > 0:
        verdict = f"OK: {what} That drop is within the allowed {100 * max_drop:.2f} points."
    else:
        verdict = f"OK: {what} No drop (allowed: {100 * max_drop:.2f} points)."
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
        only_run=pairing.only_b,
        only_baseline=pairing.only_a,
        explanation=verdict,
    )


# --------------------------------------------------------------------------------------------------------
# Curves and single/multi pairs (for the report)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    k: int
    value: float
    ci95: tuple[float, float]


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
