"""Difficulty split (MTPB): problem groups bucketed easy / medium / hard by their mean pass rate over a set of runs,
then single- vs multi-turn pass rate per bucket, with bootstrap CIs, for each (single, multi) pair of runs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codegen_eval.analyses import record_from_json, record_json
from codegen_eval.compare import LoadedRun, turn_pairs
from codegen_eval.errors import UsageError
from codegen_eval.metrics import bootstrap_ci, delta_ci
from codegen_eval.summaries import PRIMARY

BUCKETS = ("easy", "medium", "hard")
RULE = (
    "per problem group, its pass rate in each run (the mean over its items of passed/samples), averaged over all "
    "the runs given (single- and multi-turn alike; groups present in every run); groups sorted by that average, "
    "highest first, ties by id, and cut into three parts as equal in size as possible (easy, medium, hard; the "
    "first parts take the remainder)"
)
FEW_GROUPS = 20  # a bucket with fewer problem groups than this prints the caveat


def _pair(value: Any) -> tuple[float, float]:
    lo, hi = value
    return float(lo), float(hi)


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    groups: tuple[str, ...]
    lo: float  # the lowest and highest mean pass rate of its groups
    hi: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "groups": list(self.groups), "mean_pass_rate_range": [self.lo, self.hi]}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Bucket:
        return Bucket(str(d["name"]), tuple(str(g) for g in d["groups"]), *_pair(d["mean_pass_rate_range"]))


@dataclass(frozen=True, slots=True)
class BucketScore:
    """One bucket in one (single, multi) pair: pass rates over its groups with 95% bootstrap CIs, and the
    multi-turn gain with a paired bootstrap CI."""

    bucket: str
    groups: int
    single: float
    single_ci95: tuple[float, float]
    multi: float
    multi_ci95: tuple[float, float]
    gain: float  # multi - single
    gain_ci95: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class PairSplit:
    single: str  # run labels
    multi: str
    single_model: str
    multi_model: str
    buckets: tuple[BucketScore, ...]

    @property
    def title(self) -> str:
        names = f"{self.single} vs {self.multi}"
        return f"{self.multi_model}: {names}" if self.single_model == self.multi_model else names

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class DifficultySplit:
    bench: str
    runs: tuple[str, ...]  # labels of every run that set the difficulty
    rule: str
    buckets: tuple[Bucket, ...]
    pairs: tuple[PairSplit, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"analysis": "difficulty_split", **record_json(self)}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> DifficultySplit:
        try:
            return record_from_json(DifficultySplit, d)
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"not a difficulty-split record ({e!r})") from None


# --------------------------------------------------------------------------------------------------------
# The analysis


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """ "mtpb/9" before "mtpb/10"."""
    return tuple((0, int(part)) if part.isdecimal() else (1, part) for part in re.split(r"(\d+)", text) if part)


def group_rates(run: LoadedRun, scorer: str = PRIMARY) -> dict[str, float]:
    """Problem group -> its pass rate in `run`: the mean over its items of c/n (as summary.json's pass rate)."""
    items: dict[str, list[float]] = {}
    for item, (n, c) in run.counts[scorer].items():
        items.setdefault(run.groups[item][0], []).append(c / n if n else 0.0)
    return {g: float(np.mean(v)) for g, v in items.items()}


def assign_buckets(scores: Mapping[str, float]) -> tuple[Bucket, ...]:
    """The RULE: by score, highest first, ties by natural id; three parts as equal as possible."""
    if len(scores) < len(BUCKETS):
        raise UsageError(f"a difficulty split needs at least {len(BUCKETS)} problem groups, not {len(scores)}")
    order = sorted(scores, key=lambda g: (-scores[g], natural_key(g)))
    parts = np.array_split(np.arange(len(order)), len(BUCKETS))
    out = []
    for name, part in zip(BUCKETS, parts, strict=True):
        groups = tuple(order[i] for i in part)
        values = [scores[g] for g in groups]
        out.append(Bucket(name, groups, min(values), max(values)))
    return tuple(out)


def _labels(runs: Sequence[LoadedRun]) -> dict[int, str]:
    labels = [r.label for r in runs]
    return {id(r): (r.label if labels.count(r.label) == 1 else str(r.path)) for r in runs}


def pair_turns(runs: Sequence[LoadedRun]) -> list[tuple[LoadedRun, LoadedRun]]:
    """(single, multi) pairs: `run --turns both`'s layout first (DIR/single with DIR/multi), then the rest as
    `report` pairs them (compare.turn_pairs: equal configs but for turns, else the same model)."""
    pairs: list[tuple[LoadedRun, LoadedRun]] = []
    by_dir = {(r.path.resolve().parent, r.turns): r for r in runs if r.path.is_dir() and r.path.name == r.turns}
    for (parent, turns), single in by_dir.items():
        multi = by_dir.get((parent, "multi"))
        if turns == "single" and multi is not None:
            pairs.append((single, multi))
    paired = {id(r) for pair in pairs for r in pair}
    return pairs + turn_pairs([r for r in runs if id(r) not in paired])


def difficulty_split(runs: Sequence[LoadedRun], scorer: str = PRIMARY) -> DifficultySplit:
    if not runs:
        raise UsageError("a difficulty split needs runs")
    benches = sorted({r.bench for r in runs})
    if len(benches) > 1:
        raise UsageError(f"a difficulty split takes runs of one benchmark, not {', '.join(benches)}")
    for r in runs:
        if scorer not in r.counts:
            raise UsageError(f"{r.label} has no scorer {scorer!r} (it has {', '.join(r.counts)})")
    pairs = pair_turns(runs)
    if not pairs:
        raise UsageError(
            "a difficulty split needs a single-turn run and its multi-turn run (e.g. from run --turns both)"
        )
    labels = _labels(runs)
    rates = {id(r): group_rates(r, scorer) for r in runs}
    common = set.intersection(*(set(v) for v in rates.values()))
    if not common:
        raise UsageError("the runs have no problem group in common")
    every = set.union(*(set(v) for v in rates.values()))
    scores = {g: float(np.mean([rates[id(r)][g] for r in runs])) for g in common}
    buckets = assign_buckets(scores)
    notes = []
    if len(every) > len(common):
        notes.append(f"{len(every) - len(common)} problem group(s) not in every run are left out")
    for upper, lower in itertools.pairwise(buckets):
        if upper.lo == lower.hi:  # a tie straddles the cut
            tied = sum(1 for v in scores.values() if v == upper.lo)
            notes.append(
                f"the {upper.name}/{lower.name} cut falls inside a tie: {tied} groups have mean pass rate "
                f"{100 * upper.lo:.1f}%; they are split by id"
            )
    smallest = min(len(b.groups) for b in buckets)
    if smallest < FEW_GROUPS:
        notes.append(
            f"caveat: buckets of only {smallest}-{max(len(b.groups) for b in buckets)} problem groups; the CIs are "
            "wide, and few runs make the bucket of a problem itself noisy"
        )
    notes.append(
        "the buckets are set by the same runs they score: part of any difference between buckets is selection "
        "(regression to the mean), the gain within a bucket is what to read"
    )
    splits = []
    for single, multi in pairs:
        s_rates, m_rates = rates[id(single)], rates[id(multi)]
        scored = []
        for bucket in buckets:
            s = [s_rates[g] for g in bucket.groups]
            m = [m_rates[g] for g in bucket.groups]
            scored.append(
                BucketScore(
                    bucket=bucket.name,
                    groups=len(bucket.groups),
                    single=float(np.mean(s)),
                    single_ci95=bootstrap_ci(s),
                    multi=float(np.mean(m)),
                    multi_ci95=bootstrap_ci(m),
                    gain=float(np.mean(m) - np.mean(s)),
                    gain_ci95=delta_ci([b - a for a, b in zip(s, m, strict=True)]),
                )
            )
        splits.append(PairSplit(labels[id(single)], labels[id(multi)], single.model, multi.model, tuple(scored)))
    return DifficultySplit(
        bench=benches[0],
        runs=tuple(labels[id(r)] for r in runs),
        rule=RULE,
        buckets=buckets,
        pairs=tuple(splits),
        notes=tuple(notes),
    )


def _pct(value: float, ci: tuple[float, float]) -> str:
    return f"{100 * value:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def difficulty_markdown(split: DifficultySplit) -> str:
    lines = [
        f"## Difficulty split: {split.bench}, {len(split.runs)} runs",
        "",
        f"Buckets: {split.rule}.",
        "",
        "| bucket | groups | mean pass rate of its groups |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {b.name} | {len(b.groups)} | {100 * b.lo:.1f}–{100 * b.hi:.1f}% |" for b in split.buckets]
    for pair in split.pairs:
        lines += [
            "",
            f"### {pair.title}",
            "",
            "| bucket | groups | single-turn % [95% CI] | multi-turn % [95% CI] | multi − single (pp) [95% CI] |",
            "| --- | ---: | --- | --- | --- |",
        ]
        for b in pair.buckets:
            gain = f"{100 * b.gain:+.1f} [{100 * b.gain_ci95[0]:+.1f}, {100 * b.gain_ci95[1]:+.1f}]"
            lines.append(
                f"| {b.bucket} | {b.groups} | {_pct(b.single, b.single_ci95)} | {_pct(b.multi, b.multi_ci95)} "
                f"| {gain} |"
            )
    lines += ["", *(f"- {note}" for note in split.notes)]
    return "\n".join(lines) + "\n"
