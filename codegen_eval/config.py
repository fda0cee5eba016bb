"""RunConfig: YAML + flags + `-B key=value` backend args, validated; config_hash() over what affects results."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from codegen_eval.errors import UsageError

MAX_TIMEOUT_S = 86_400.0  # a day per program: anything longer is a typo, and inf/nan mean nothing here
MAX_MEMORY_MB = 1 << 20  # 1 TiB; 0 means no address-space limit
# Fields that do not change any number in the run: they may differ on --resume.
# `executor` (where programs run: here or on a Ray cluster) changes no verdict (tested), so it is one of them.
NON_RESULT_FIELDS = frozenset({"output_dir", "workers", "progress", "gen_chunk", "record_programs", "executor"})

# Backend options that change how texts are obtained, not which: where the server is, how hard to push it, how
# long to wait. They may differ on --resume (a server restarted on another port, a smaller batch after an OOM).
# Batch size and prefix reuse qualify because batched greedy output equals one-prompt output (tested).
OPERATIONAL_BACKEND_OPTIONS: Mapping[str, frozenset[str]] = {
    "openai": frozenset(
        {"base_url", "api_key_env", "check_model", "concurrency"}  # where the server is, how hard to push it
        | {"timeout", "connect_timeout", "retries", "backoff", "max_backoff"}  # how long to wait
    ),
    # ray_*: where the (identical) actors run; sharding changes no output (tests/backends/test_hf_ray.py)
    "hf": frozenset({"batch_size", "prefix_cache_mb", "ray_actors", "ray_address"}),
}


@dataclasses.dataclass(frozen=True, slots=True)
class RunConfig:
    bench: str = "humaneval"
    model: str = "reference"
    backend_options: tuple[tuple[str, str], ...] = ()
    bench_options: tuple[tuple[str, str], ...] = ()
    n: int = 1
    k: tuple[int, ...] = (1,)
    temperature: float | None = None  # None: the benchmark's default for this n
    top_p: float | None = None
    top_k: int = 0
    seed: int = 1234
    max_new_tokens: int | None = None  # None: the benchmark's per-turn budget
    limit: int | None = None  # first N problem groups
    problems: str | None = None  # selection: "1-10,57" or full ids, comma-separated
    turns: str = "multi"  # multi | single: the benchmark as it is, or collapsed (benchmarks/transforms.py)
    data_dir: str | None = None
    postprocess: bool = True
    sandbox: str = "process"
    workers: int = 0  # 0: one per core
    timeout: float | None = None  # per program; None: the benchmark's default
    memory_mb: int = 4096
    allow_unsandboxed: bool = False
    output_dir: str | None = None  # the run directory; None: runs/<utc>_<bench>_<model>_<hash8>
    gen_chunk: int = 64  # trajectories generated between two appends to samples.jsonl
    record_programs: bool = False  # keep every executed program's text in <run>/programs/<sha256>.py
    # Where programs run (codegen_eval/executors): () is this machine; (("kind", "ray"), ("address", ...), ...)
    executor: tuple[tuple[str, str], ...] = ()

    def validate(self) -> RunConfig:
        if self.n < 1:
            raise UsageError(f"-n must be at least 1 (got {self.n})")
        if not self.k or any(k < 1 for k in self.k):
            raise UsageError(f"-k values must be positive integers (got {list(self.k)})")
        too_big = [k for k in self.k if k > self.n]
        if too_big:
            raise UsageError(
                f"k={too_big[0]} is larger than the number of samples n={self.n}; "
                f"pass@k needs k <= n (use -n {max(self.k)} or smaller -k)"
            )
        if self.turns not in ("multi", "single"):
            raise UsageError(f"--turns must be 'multi' or 'single' (got {self.turns!r})")
        if self.temperature is not None and self.temperature < 0:
            raise UsageError(f"--temperature must be >= 0 (got {self.temperature})")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError(f"--top-p must be in (0, 1] (got {self.top_p})")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1 (got {self.limit})")
        if self.timeout is not None and not (0 < self.timeout <= MAX_TIMEOUT_S):  # False for nan as well
            raise UsageError(f"--timeout must be a number of seconds in (0, {MAX_TIMEOUT_S:g}] (got {self.timeout})")
        if not 0 <= self.memory_mb <= MAX_MEMORY_MB:
            raise UsageError(f"--memory-mb must be between 0 (no limit) and {MAX_MEMORY_MB} MiB (got {self.memory_mb})")
        if self.workers < 0:
            raise UsageError(f"--workers must be >= 0 (got {self.workers})")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens must be at least 1 (got {self.max_new_tokens})")
        if self.gen_chunk < 1:
            raise UsageError(f"gen_chunk must be at least 1 (got {self.gen_chunk})")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["backend_options"] = dict(self.backend_options)
        d["bench_options"] = dict(self.bench_options)
        d["k"] = list(self.k)
        if self.executor:
            d["executor"] = dict(self.executor)
        else:  # a local run's run.json stays as it was before executors existed
            del d["executor"]
        return d

    def operational_options(self) -> frozenset[str]:
        """Names of this config's backend options that cannot change a result (OPERATIONAL_BACKEND_OPTIONS)."""
        from codegen_eval.backends import resolve_model

        try:
            backend = resolve_model(self.model)[0]
        except UsageError:  # an unknown backend has no operational options (and is refused elsewhere)
            return frozenset()
        return OPERATIONAL_BACKEND_OPTIONS.get(backend, frozenset())

    def result_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.to_dict().items() if k not in NON_RESULT_FIELDS}
        operational = self.operational_options()
        d["backend_options"] = {k: v for k, v in d["backend_options"].items() if k not in operational}
        return d

    def config_hash(self) -> str:
        blob = json.dumps(self.result_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def differences(self, other: RunConfig) -> list[str]:
        a, b = self.result_dict(), other.result_dict()
        return [f"{key}: {a[key]!r} != {b[key]!r}" for key in sorted(a) if a[key] != b.get(key)]


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def from_mapping(values: Mapping[str, Any], source: str) -> RunConfig:
    """Build a config from a mapping (YAML or run.json); unknown keys and wrong types are UsageErrors."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise UsageError(f"{source}: unknown config key(s): {', '.join(hints)}")
    return RunConfig(**{key: _convert(key, value, source) for key, value in values.items()})


def _convert(key: str, value: Any, source: str) -> Any:
    if key in ("backend_options", "bench_options"):
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            raise UsageError(f"{source}: '{key}' must be a mapping of option: value")
        return tuple(sorted((str(k), _option_str(v)) for k, v in value.items()))
    if key == "executor":
        return parse_executor(value, source)
    if key == "k":
        return parse_k(value, source)
    default = FIELDS[key].default
    if value is None:
        return None
    expected: type = type(default) if default is not None else _optional_type(key)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise UsageError(f"{source}: '{key}' must be {expected.__name__}, got {value!r}")
    return value


def _option_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _optional_type(key: str) -> type:
    """The type of a field whose default is None: the one that is not None in its annotation."""
    hint = typing.get_type_hints(RunConfig)[key]
    return next(t for t in typing.get_args(hint) if t is not type(None))  # type: ignore[no-any-return]


def parse_executor(value: Any, source: str = "--executor") -> tuple[tuple[str, str], ...]:
    """`executor: ray`, `executor: {kind: ray, address: auto}` or None (local) as sorted (key, value) pairs."""
    if value is None or value == "local" or value == {"kind": "local"}:
        return ()
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping) or "kind" not in value:
        raise UsageError(f"{source}: 'executor' must be a kind (local, ray) or a mapping with a 'kind'")
    return tuple(sorted((str(k), _option_str(v)) for k, v in value.items()))


def parse_k(value: Any, source: str = "-k") -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    items: list[Any]
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise UsageError(f"{source}: k must be a list of integers, got {value!r}")
    try:
        return tuple(sorted({int(v) for v in items}))
    except (TypeError, ValueError):
        raise UsageError(f"{source}: k must be integers, got {value!r}") from None


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the config must be a mapping of key: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def parse_kv(pairs: tuple[str, ...], flag: str) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip()] = value
    return tuple(sorted(out.items()))
