"""pass@k (unbiased estimator), pass rates per group and category, bootstrap confidence intervals."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PRIMARY = "pass"  # the scorer that is "outcome == passed"; benchmarks may add named scorers


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
    from math import comb

    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"need 1 <= k <= n and 0 <= c <= n, got n={n} c={c} k={k}")
    return 1 - Fraction(comb(n - c, k), comb(n, k))


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


def score_block(items: Sequence[ItemCounts], ks: Iterable[int]) -> dict[str, Any]:
    """pass@k over items, and the pass rate: per group the mean over its items of c/n, then the mean over groups.

    For single-item groups (HumanEval) the pass rate equals the mean of c/n. A k larger than some item's n is
    omitted with a warning rather than reported wrong.
    """
    out: dict[str, Any] = {"items": len(items)}
    if not items:
        return out
    groups: dict[str, list[ItemCounts]] = defaultdict(list)
    for it in items:
        groups[it.group].append(it)
    group_rates = [float(np.mean([it.c / it.n for it in g])) for g in groups.values()]
    out["groups"] = len(groups)
    out["pass_rate"] = float(np.mean(group_rates))
    out["pass_rate_ci95"] = list(bootstrap_ci(group_rates))
    pak: dict[str, float] = {}
    pak_ci: dict[str, list[float]] = {}
    min_n = min(it.n for it in items)
    for k in sorted(set(ks)):
        if k > min_n:
            short = sum(1 for it in items if it.n < k)
            log.warning("pass@%d omitted: %d item(s) have fewer than %d samples", k, short, k)
            continue
        # Average per item within a group first, then over groups, so multi-item groups weigh once.
        per_group = [float(np.mean([pass_at_k(it.n, it.c, k) for it in g])) for g in groups.values()]
        pak[f"pass@{k}"] = float(np.mean(per_group))
        pak_ci[f"pass@{k}"] = list(bootstrap_ci(per_group))
    out["pass_at_k"] = pak
    out["pass_at_k_ci95"] = pak_ci
    return out


def summarize(
    items: Mapping[str, tuple[str, str]],
    verdicts: Iterable[tuple[str, bool, Mapping[str, bool], str]],
    ks: Iterable[int],
    subsets: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    """Build the summary block of summary.json.

    items: problem id -> (group, category) for every selected problem.
    verdicts: (problem id, passed, extra named scores, outcome) per judged sample.
    """
    ks = list(ks)
    n: Counter[str] = Counter()
    c: dict[str, Counter[str]] = defaultdict(Counter)
    outcomes: Counter[str] = Counter()
    scorers = [PRIMARY]
    for pid, passed, extra, outcome in verdicts:
        n[pid] += 1
        outcomes[outcome] += 1
        c[PRIMARY][pid] += int(passed)
        for name, ok in extra.items():
            if name not in scorers:
                scorers.append(name)
            c[name][pid] += int(ok)
    missing = [pid for pid in items if n[pid] == 0]
    if missing:
        log.warning("%d problem(s) have no judged samples and are left out of the scores", len(missing))
    result: dict[str, Any] = {"outcomes": dict(sorted(outcomes.items())), "scorers": {}}
    for scorer in scorers:
        counts = [ItemCounts(pid, grp, cat, n[pid], c[scorer][pid]) for pid, (grp, cat) in items.items() if n[pid] > 0]
        block = score_block(counts, ks)
        categories = sorted({it.category for it in counts if it.category})
        if categories:
            block["by_category"] = {
                cat: score_block([it for it in counts if it.category == cat], ks) for cat in categories
            }
        for name, groups in (subsets or {}).items():
            block.setdefault("subsets", {})[name] = score_block([it for it in counts if it.group in groups], ks)
        block["per_problem"] = {it.problem_id: [it.n, it.c] for it in counts}
        result["scorers"][scorer] = block
    return result
