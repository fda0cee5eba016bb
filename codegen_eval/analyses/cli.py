"""`codegen-eval analyze`: the CodeGen paper's analyses, `difficulty` over finished runs and the `perplexity` pass
(the one analysis that runs a model). Parses flags; the work is in the sibling modules."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

_FORMATS = click.Choice(["markdown", "json"])


def _show(
    result: Any,
    notes: Sequence[str],
    markdown: Callable[[Any], str],
    plot: Callable[[Any], bytes],
    fmt: str,
    png: Path | None,
    output: Path | None,
) -> None:
    """An analysis's table (markdown or JSON) to `output` or stdout, its plot to `png`, then its caveats: JSON
    carries its notes inside; the statistical caveat is also said on stderr, where a reader sees it."""
    if png is not None:
        png.write_bytes(plot(result))
        click.echo(f"wrote {png}", err=True)
    from codegen_eval.cli import emit  # codegen_eval.cli imports this module last, so not at the top

    emit(markdown(result) if fmt == "markdown" else json.dumps(result.to_json(), indent=2) + "\n", output)
    if fmt == "json":
        for note in notes:
            if note.startswith("caveat:"):
                click.echo(note, err=True)


@click.group()
def analyze() -> None:
    """The CodeGen paper's analyses: difficulty split, prompt perplexity, scaling (docs/analyses.md)."""


@analyze.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=_FORMATS, default="markdown", show_default=True)
@click.option("--png", type=click.Path(path_type=Path), default=None, help="Also draw the split as a PNG here.")
@click.option("--scorer", default="pass", show_default=True, help="Scorer (MTPB also has reference, strict).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
def difficulty(runs: tuple[Path, ...], fmt: str, png: Path | None, scorer: str, output: Path | None) -> None:
    """Bucket MTPB problems easy / medium / hard by their mean pass rate over RUNS, then single- vs multi-turn
    pass rate per bucket for each single-turn run and its multi-turn run, with bootstrap CIs."""
    from codegen_eval.analyses.difficulty import difficulty_markdown, difficulty_split
    from codegen_eval.analyses.plots import difficulty_plot
    from codegen_eval.compare import load_run

    split = difficulty_split([load_run(p) for p in runs], scorer)
    _show(split, split.notes, difficulty_markdown, difficulty_plot, fmt, png, output)


@analyze.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=_FORMATS, default="markdown", show_default=True)
@click.option("--png", type=click.Path(path_type=Path), default=None, help="Also plot pass rate against size here.")
@click.option("--scorer", default="pass", show_default=True, help="Scorer (MTPB also has reference, strict).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
def scaling(runs: tuple[Path, ...], fmt: str, png: Path | None, scorer: str, output: Path | None) -> None:
    """Pass rate (HumanEval pass@k, MTPB multi and single) of RUNS against model size, the parameter count
    recorded in each run's provenance (runs without it: listed as size unknown, not plotted)."""
    from codegen_eval.analyses.plots import scaling_plot
    from codegen_eval.analyses.scaling import scaling as scaling_analysis
    from codegen_eval.analyses.scaling import scaling_markdown
    from codegen_eval.compare import load_run

    result = scaling_analysis([load_run(p) for p in runs], scorer)
    _show(result, result.notes, scaling_markdown, scaling_plot, fmt, png, output)


@analyze.command()
@click.option("--model", required=True, help="hf:PATH_OR_HUB_ID | an alias such as smollm2-135m | openai:NAME.")
@click.option("-B", "--backend-opt", "backend_opt", multiple=True, metavar="KEY=VALUE", help="Backend option.")
@click.option("--base-url", default=None, metavar="URL", help="OpenAI-compatible server (openai:NAME).")
@click.option("--bench", default="mtpb", show_default=True)
@click.option("-O", "--bench-opt", "bench_opt", multiple=True, metavar="KEY=VALUE", help="Benchmark option.")
@click.option("--data-dir", default=None, help="Directory holding benchmark data files.")
@click.option("--problems", default=None, help='Selection, e.g. "1-10,57" or "mtpb/3/0".')
@click.option("--limit", type=int, default=None, help="Only the first N problem groups.")
@click.option("--items-per-group", type=int, default=None, help="Only the first N test cases of each problem.")
@click.option(
    "--history",
    type=click.Path(path_type=Path),
    default=None,
    help="Multi-turn run whose sample 0 is the code between turns (default: the reference solutions).",
)
@click.option("--format", "fmt", type=_FORMATS, default="markdown", show_default=True)
@click.option("--png", type=click.Path(path_type=Path), default=None, help="Also plot single vs multi per problem.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
def perplexity(
    model: str,
    backend_opt: tuple[str, ...],
    base_url: str | None,
    bench_opt: tuple[str, ...],
    data_dir: str | None,
    fmt: str,
    png: Path | None,
    output: Path | None,
    **selection: Any,
) -> None:
    """The model's perplexity of the turn instructions under the multi-turn history vs in the single-turn
    concatenation, per problem and averaged (the paper's prompt perplexity)."""
    from codegen_eval.analyses.perplexity import make_scorer, measure, perplexity_markdown
    from codegen_eval.analyses.plots import perplexity_plot
    from codegen_eval.benchmarks.base import BenchmarkSettings
    from codegen_eval.config import parse_kv

    options = dict(parse_kv(backend_opt, "-B"))
    if base_url:
        options["base_url"] = base_url
    settings = BenchmarkSettings(data_dir=Path(data_dir) if data_dir else None, options=dict(parse_kv(bench_opt, "-O")))
    result = measure(settings=settings, scorer=make_scorer(model, options), model=model, **selection)
    _show(result, result.notes(), perplexity_markdown, perplexity_plot, fmt, png, output)
