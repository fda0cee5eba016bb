"""pass@k (unbiased estimator), pass rates per group and category, bootstrap CIs, paired tests and delta CIs."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from codegen_eval.records import Problem
from codegen_eval.rundir import ExecutionRecord
from codegen_eval.summaries import PRIMARY, RunSummary, ScoreBlock

log = logging.getLogger(__name__)


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k) in the stable product form (Chen et al., 2021). Requires 0 <= c <= n, 1 <= k <= n."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n} c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n} k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_exact(n: int, c: int, k: int) -> Fraction:
    """The same quantity as an exact fraction (for tests and audits)."""
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"need 1 <= k <= n and 0 <= c <= n, got n={n} c={c} k={k}")
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


@dataclass(frozen=True, slots=True)
class ItemCounts:
    problem_id: str
    group: str
    category: str
    n: int
    c: int


def bootstrap_ci(
    values: Sequence[float], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `values` (one value per problem group)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (float("nan"), float("nan"))
    if arr.size == 1:
        return (float(arr[0]), float(arr[0]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    means = arr[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def score_block(items: Sequence[ItemCounts], ks: Iterable[int]) -> ScoreBlock:
    """pass@k over items, and the pass rate: per group the mean over its items of c/n, then the mean over groups.

    For single-item groups (HumanEval) the pass rate equals the mean of c/n. A k larger than some item's n is
    omitted with a warning rather than reported wrong.
    """
    if not items:
        return ScoreBlock(items=0)
    groups: dict[str, list[ItemCounts]] = defaultdict(list)
    for it in items:
        groups[it.group].append(it)
    group_rates = [float(np.mean([it.c / it.n for it in g])) for g in groups.values()]
    pak: dict[str, float] = {}
    pak_ci: dict[str, tuple[float, float]] = {}
    min_n = min(it.n for it in items)
    for k in sorted(set(ks)):
        if k > min_n:
            short = sum(1 for it in items if it.n < k)
            log.warning("pass@%d omitted: %d item(s) have fewer than %d samples", k, short, k)
            continue
        # Average per item within a group first, then over groups, so multi-item groups weigh once.
        per_group = [float(np.mean([pass_at_k(it.n, it.c, k) for it in g])) for g in groups.values()]
        pak[f"pass@{k}"] = float(np.mean(per_group))
        pak_ci[f"pass@{k}"] = bootstrap_ci(per_group)
    return ScoreBlock(
        items=len(items),
        groups=len(groups),
        pass_rate=float(np.mean(group_rates)),
        pass_rate_ci95=bootstrap_ci(group_rates),
        pass_at_k=pak,
        pass_at_k_ci95=pak_ci,
    )


def summarize(
    items: Mapping[str, tuple[str, str]],
    verdicts: Iterable[tuple[str, bool, Mapping[str, bool], str]],
    ks: Iterable[int],
    subsets: Mapping[str, frozenset[str]] | None = None,
) -> RunSummary:
    """The scores of summary.json: outcome totals, a block per scorer, each scored item's group (the fields that
    say which run it is are left None).

    items: problem id -> (group, category) for every selected problem.
    verdicts: (problem id, passed, extra named scores, outcome) per judged sample.
    """
    ks = list(ks)
    n: Counter[str] = Counter()
    c: dict[str, Counter[str]] = {PRIMARY: Counter()}  # scorer -> item -> samples passed, in order of appearance
    outcomes: Counter[str] = Counter()
    for pid, passed, extra, outcome in verdicts:
        n[pid] += 1
        outcomes[outcome] += 1
        c[PRIMARY][pid] += int(passed)
        for name, ok in extra.items():
            c.setdefault(name, Counter())[pid] += int(ok)
    missing = [pid for pid in items if n[pid] == 0]
    if missing:
        log.warning("%d problem(s) have no judged samples and are left out of the scores", len(missing))
    blocks: dict[str, ScoreBlock] = {}
    for scorer in c:
        counts = [ItemCounts(pid, grp, cat, n[pid], c[scorer][pid]) for pid, (grp, cat) in items.items() if n[pid] > 0]
        categories = sorted({it.category for it in counts if it.category})
        by_category = {cat: score_block([it for it in counts if it.category == cat], ks) for cat in categories}
        subset_blocks = {
            name: score_block([it for it in counts if it.group in groups], ks)
            for name, groups in (subsets or {}).items()
        }
        blocks[scorer] = dataclasses.replace(
            score_block(counts, ks),
            by_category=by_category or None,
            subsets=subset_blocks or None,
            per_problem={it.problem_id: (it.n, it.c) for it in counts},
        )
    return RunSummary(
        outcomes=dict(sorted(outcomes.items())),
        scorers=blocks,
        # Which group and category each scored item belongs to, so a paired comparison can be made from two
        # summaries alone (compare/check pair problems by group; MTPB reports by category).
        item_groups={pid: (grp, cat) for pid, (grp, cat) in items.items() if n[pid] > 0},
    )


def summarize_run(
    problems: Sequence[Problem],
    records: Iterable[ExecutionRecord],
    ks: Iterable[int],
    subsets: Mapping[str, frozenset[str]] | None = None,
) -> RunSummary:
    """summarize() over a run's execution records, with the counts of problems, items and judged samples. Records
    of problems outside the selection are ignored; of two records for one (problem, index) the later counts (a
    duplicate left by a resume after a partial write counts once)."""
    by_id = {p.id for p in problems}
    unique = {(r.problem_id, r.index): r for r in records if r.problem_id in by_id}
    verdicts = ((r.problem_id, r.outcome.value == "passed", dict(r.scores), r.outcome.value) for r in unique.values())
    scores = summarize({p.id: (p.group, p.category) for p in problems}, verdicts, ks, subsets)
    return dataclasses.replace(
        scores, problems=len({p.group for p in problems}), items=len(problems), samples_judged=len(unique)
    )


# --------------------------------------------------------------------------------------------------------
# Paired comparison of two runs (docs/compare.md): McNemar, sign-flip permutation test, paired bootstrap of the delta

DELTA_RESAMPLES = 10_000  # paired bootstrap of the delta (percentile CI endpoints need more than 1,000)
EXACT_SIGN_FLIP_MAX = 16  # 2**16 sign patterns, enumerated, when the differences lie on no small grid
LATTICE_MAX_DENOMINATOR = 100_000  # per-problem scores c/n, means over cases, pass@k with C(n, k) <= this
LATTICE_MAX_WORK = 50_000_000  # problems x range of sums for the exact distribution
SIGN_FLIP_RESAMPLES = 20_000
_CHUNK = 1 << 15

MCNEMAR = "mcnemar-exact"
SIGN_FLIP_EXACT = "sign-flip-exact"
SIGN_FLIP_MC = "sign-flip-monte-carlo"
TEST_DESCRIPTIONS = {
    MCNEMAR: "McNemar exact test on per-problem outcomes (one sample per problem)",
    SIGN_FLIP_EXACT: "paired sign-flip permutation test on per-problem scores (exact)",
    SIGN_FLIP_MC: f"paired sign-flip permutation test on per-problem scores ({SIGN_FLIP_RESAMPLES:,} random flips)",
}

SIGN_FLIP_RULE = (
    "paired sign-flip permutation test on per-problem scores (exact; a Monte Carlo estimate with "
    f"{SIGN_FLIP_RESAMPLES:,} random flips only for scores on no small grid and more than {EXACT_SIGN_FLIP_MAX} "
    "differing problems)"
)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: 2 * P(X <= min) for X ~ Binomial(m, 1/2)."""
    if a_only < 0 or b_only < 0:
        raise ValueError("discordant counts must be non-negative")
    m = a_only + b_only
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(a_only, b_only) + 1))
    return min(1.0, float(Fraction(2 * tail, 2**m)))


def _lattice(d: np.ndarray[Any, Any]) -> list[int] | None:
    """d as integers on a common grid 1/L (pass rates c/n, MTPB case shares), or None when there is none small
    enough for the exact distribution to be cheap."""
    fractions = [Fraction(float(x)).limit_denominator(LATTICE_MAX_DENOMINATOR) for x in d]
    if any(abs(float(f) - float(x)) > 1e-12 for f, x in zip(fractions, d, strict=True)):
        return None
    scale = math.lcm(*(f.denominator for f in fractions))
    ints = [int(f * scale) for f in fractions]
    if len(ints) * (2 * sum(abs(i) for i in ints) + 1) > LATTICE_MAX_WORK:
        return None
    return ints


def _lattice_p(ints: Sequence[int]) -> float:
    """Exact two-sided p from the distribution of sum(±x_i) with fair independent signs (dynamic programming)."""
    total = sum(abs(v) for v in ints)
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0  # index = sum + total
    for v in (abs(v) for v in ints):
        shifted = np.zeros_like(dist)
        shifted[v:] += dist[: dist.size - v]
        shifted[: dist.size - v] += dist[v:]
        dist = 0.5 * shifted
    observed = abs(sum(ints))
    return min(1.0, float(dist[total + observed :].sum() + dist[: total - observed + 1].sum()))


def sign_flip_test(
    differences: Sequence[float] | np.ndarray[Any, Any],
    *,
    exact_max: int = EXACT_SIGN_FLIP_MAX,
    resamples: int = SIGN_FLIP_RESAMPLES,
    seed: int = 0,
    lattice: bool = True,
) -> tuple[float, str]:
    """Two-sided paired sign-flip test of mean(d) = 0. Returns (p, test name).

    Under the null each paired difference is as likely negated; the p-value is the share of the 2**m sign
    patterns whose |sum| reaches the observed |sum|. Zero differences change no sum, so they are dropped first.
    Exact when the differences lie on a small grid (pass rates always do: dynamic programming over the sums) or
    when at most `exact_max` remain (enumeration); otherwise a seeded Monte Carlo estimate.
    """
    d = np.asarray(differences, dtype=float)
    scale = float(np.abs(d).sum())
    d = d[np.abs(d) > 1e-12]
    m = int(d.size)
    if m == 0:
        return 1.0, SIGN_FLIP_EXACT
    if lattice and (ints := _lattice(d)) is not None:
        return _lattice_p(ints), SIGN_FLIP_EXACT
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(scale, 1.0)  # sums of the same floats in another order differ by rounding only
    if m <= exact_max:
        total = 1 << m
        hits = 0
        bits = np.arange(m, dtype=np.int64)
        for start in range(0, total, _CHUNK):
            codes = np.arange(start, min(total, start + _CHUNK), dtype=np.int64)
            signs = 1.0 - 2.0 * ((codes[:, None] >> bits) & 1)
            hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
        return hits / total, SIGN_FLIP_EXACT
    rng = np.random.default_rng(seed)
    hits = 0
    step = max(1, _CHUNK * 8 // max(m, 1))
    for done in range(0, resamples, step):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(step, resamples - done), m))
        hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
    # The observed pattern counts as one of the draws, so p is never 0 (Phipson & Smyth, 2010).
    return (hits + 1) / (resamples + 1), SIGN_FLIP_MC


def delta_ci(
    differences: Sequence[float] | np.ndarray[Any, Any], *, resamples: int = DELTA_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Paired percentile bootstrap 95% CI of mean(B - A): problems are resampled with their pair intact.

    Drawn in chunks so memory stays flat for thousands of problems and 10,000 resamples.
    """
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return (float("nan"), float("nan"))
    if d.size == 1:
        return (float(d[0]), float(d[0]))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, (1 << 22) // d.size)
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        means[start : start + size] = d[rng.integers(0, d.size, size=(size, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return (float(lo), float(hi))
