"""pass@k against an exact-rational reference on random (n, c, k), and its edge cases."""
import math
import random
from fractions import Fraction

import pytest

from protege.scoring.metrics.passk import mean_pass_at_k, pass_at_k


def exact_pass_at_k(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def test_matches_exact_combinatorics_on_random_triples():
    rng = random.Random(0)
    for _ in range(2000):
        n = rng.randint(1, 300)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(float(exact_pass_at_k(n, c, k)), rel=1e-12, abs=1e-15)


def test_known_values():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 1, 5) == 1.0  # every sample drawn: n - c < k
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)


def test_large_n_stays_finite_and_exact():
    assert pass_at_k(100_000, 7, 1000) == pytest.approx(float(exact_pass_at_k(100_000, 7, 1000)), rel=1e-10)


def test_k_above_n_raises():
    with pytest.raises(ValueError, match=r"pass@6 needs at least 6 samples .* n=5"):
        pass_at_k(5, 2, 6)
    with pytest.raises(ValueError, match="between 0"):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError, match="at least 1"):
        pass_at_k(5, 1, 0)


def test_mean_reports_only_k_up_to_smallest_n():
    results = [(10, 3), (5, 0), (20, 20)]
    out = mean_pass_at_k(results, ks=(1, 5, 10))
    assert set(out) == {"pass@1", "pass@5"}
    assert out["pass@1"] == pytest.approx((0.3 + 0.0 + 1.0) / 3)
    assert out["pass@5"] == pytest.approx(float(sum(exact_pass_at_k(n, c, 5) for n, c in results)) / 3)
    with pytest.raises(ValueError, match="no"):
        mean_pass_at_k([], ks=(1,))
