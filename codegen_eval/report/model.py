"""The multi-run report's model: runs, their per-turn pairs and paired comparisons, shared by every format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from codegen_eval.compare import LoadedRun, compare_runs, pass_at_k_curve, turn_pairs
from codegen_eval.errors import UsageError
from codegen_eval.plots import OUTCOME_ORDER
from codegen_eval.report.analyses import ReportAnalyses, build_analyses
from codegen_eval.rundir import SAMPLES, read_jsonl
from codegen_eval.summaries import PRIMARY, Comparison, CurvePoint, ScoreBlock


@dataclass(frozen=True, slots=True)
class TurnPair:
    single: int  # index into ReportModel.runs
    multi: int
    comparison: Comparison  # A = single-turn, B = multi-turn


@dataclass(frozen=True, slots=True)
class ReportModel:
    runs: tuple[LoadedRun, ...]
    labels: tuple[str, ...]  # unique display names
    curves: tuple[tuple[CurvePoint, ...], ...]
    comparisons: tuple[Comparison, ...]  # every other run of a benchmark against that benchmark's baseline
    turn_pairs: tuple[TurnPair, ...]
    generated_at: str
    benches: tuple[str, ...]  # in the order of their first run
    baselines: Mapping[str, int]  # benchmark -> index of its baseline run
    compared: tuple[tuple[int, int], ...]  # (A, B) run indices of each of `comparisons`
    not_compared: tuple[tuple[int, int, str], ...]  # (A, B, why) pairs that have no paired comparison
    turns: tuple[str, ...]  # per run: "single", "multi", or "—" for a benchmark whose problems have one turn
    analyses: ReportAnalyses = field(default_factory=ReportAnalyses)  # the paper's analyses the runs allow

    def runs_of(self, bench: str) -> list[int]:
        return [i for i, r in enumerate(self.runs) if r.bench == bench]


def _shown_turns(run: LoadedRun) -> str:
    """ "single" for a collapsed run; "multi" only when some sample has more than one turn (a benchmark with one
    turn per problem, as HumanEval, has no turns to speak of: "—"); the recorded value when there are no samples."""
    if run.turns == "single":
        return "single"
    samples = run.path / SAMPLES
    if not run.path.is_dir() or not samples.is_file():
        return run.turns or "—"
    for _, record in read_jsonl(samples):
        if isinstance(record, dict) and len(record.get("turns") or ()) > 1:
            return run.turns or "multi"
    return "—"


def with_baselines(runs: Sequence[LoadedRun], baselines: Sequence[LoadedRun]) -> tuple[list[LoadedRun], list[int]]:
    """The runs and the indices of the baselines among them: a baseline that is one of the runs (the same
    directory) is that run; another one joins them, first."""
    out = list(runs)
    chosen: list[int] = []
    for b in baselines:
        same = next((i for i, r in enumerate(out) if r.path.resolve() == b.path.resolve()), None)
        if same is None:
            out.insert(0, b)
            chosen = [i + 1 for i in chosen]
            same = 0
        chosen.append(same)
    return out, chosen


def resolve_baselines(runs: Sequence[LoadedRun], chosen: Sequence[int]) -> dict[str, int]:
    """benchmark -> baseline run index: the chosen run of that benchmark, else its first run."""
    out: dict[str, int] = {}
    for i in chosen:
        bench = runs[i].bench
        if bench in out and out[bench] != i:
            raise UsageError(
                f"--baseline: two baselines for {bench} ({runs[out[bench]].label} and {runs[i].label}); "
                "give at most one per benchmark"
            )
        out[bench] = i
    for i, r in enumerate(runs):
        out.setdefault(r.bench, i)
    return out


def build_report(runs: Sequence[LoadedRun], baselines: Sequence[int] = ()) -> ReportModel:
    """The report over `runs`; `baselines` are indices into them (at most one per benchmark). Every other run of a
    benchmark is compared with its baseline: the chosen one, else the benchmark's first run."""
    labels: list[str] = []
    for r in runs:
        label = r.label
        i = 2
        while label in labels:
            label = f"{r.label} ({i})"
            i += 1
        labels.append(label)
    base = resolve_baselines(runs, baselines)
    not_compared: list[tuple[int, int, str]] = []
    done: dict[tuple[int, int], Comparison] = {}  # (A, B) run indices -> their comparison
    for i, r in enumerate(runs):
        j = base[r.bench]
        if i == j:
            continue
        c = _compare(runs[j], r)
        if isinstance(c, str):
            not_compared.append((j, i, c))
            continue
        done[(j, i)] = c
    pairs = []
    index = {id(r): i for i, r in enumerate(runs)}
    for single, multi in turn_pairs(runs):
        si, mi = index[id(single)], index[id(multi)]
        pc = done.get((si, mi)) or _compare(single, multi)
        if isinstance(pc, str):
            if (si, mi) not in {(a, b) for a, b, _ in not_compared}:
                not_compared.append((si, mi, pc))
            continue
        pairs.append(TurnPair(si, mi, pc))
    return ReportModel(
        runs=tuple(runs),
        labels=tuple(labels),
        curves=tuple(tuple(pass_at_k_curve(r)) for r in runs),
        comparisons=tuple(done.values()),
        turn_pairs=tuple(pairs),
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        benches=tuple(dict.fromkeys(r.bench for r in runs)),
        baselines=base,
        compared=tuple(done),
        not_compared=tuple(not_compared),
        turns=tuple(_shown_turns(r) for r in runs),
        analyses=build_analyses(runs, labels),
    )


def _compare(a: LoadedRun, b: LoadedRun) -> Comparison | str:
    """The paired comparison, or why there is none (runs with no problem in common)."""
    try:
        return compare_runs(a, b)
    except UsageError as e:
        return str(e)


def score_rows(model: ReportModel, idx: Sequence[int]) -> list[tuple[int, str, ScoreBlock]]:
    """(run index, scorer or scorer+subset, score block) rows of the runs `idx`."""
    rows = []
    for i in idx:
        for scorer, block in model.runs[i].summary.scorers.items():
            rows.append((i, scorer, block))
            for sub, sblock in (block.subsets or {}).items():
                rows.append((i, f"{scorer} · {sub} ({sblock.groups or 0} problems)", sblock))
    return rows


def all_outcomes(model: ReportModel) -> list[str]:
    seen = {o for r in model.runs for o in r.outcomes()}
    return [o for o in OUTCOME_ORDER if o in seen] + sorted(seen - set(OUTCOME_ORDER))


def category_grid(
    model: ReportModel, idx: Sequence[int]
) -> tuple[list[int], list[tuple[str, list[ScoreBlock | None]]]]:
    """The runs among `idx` with categories (MTPB's, scorer pass), and per category each one's block."""
    by_category = {i: (model.runs[i].summary.scorers.get(PRIMARY) or ScoreBlock()).by_category or {} for i in idx}
    with_cats = [i for i in idx if by_category[i]]
    cats = sorted({c for i in with_cats for c in by_category[i]})
    return with_cats, [(cat, [by_category[i].get(cat) for i in with_cats]) for cat in cats]
