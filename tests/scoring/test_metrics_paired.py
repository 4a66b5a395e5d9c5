"""McNemar against hand-computed values (and scipy when present); paired bootstrap sanity."""
import math

import pytest

from protege.scoring.metrics.classification import accuracy
from protege.scoring.metrics.paired import binomial_cdf_half, chi2_1_sf, mcnemar, paired_bootstrap
from protege.scoring.metrics.uncertainty import bootstrap_ci


def _pairs(b: int, c: int, both: int = 5, neither: int = 3):
    a = [True] * b + [False] * c + [True] * both + [False] * neither
    bb = [False] * b + [True] * c + [True] * both + [False] * neither
    return a, bb


def test_exact_binomial_b10_c2():
    out = mcnemar(*_pairs(10, 2))
    # P(X <= 2), X ~ Bin(12, 1/2) = (1 + 12 + 66) / 4096
    assert (out["b"], out["c"], out["statistic"], out["method"]) == (10, 2, 2.0, "exact-binomial")
    assert out["p_value"] == pytest.approx(2 * 79 / 4096)
    assert mcnemar(*_pairs(2, 10))["p_value"] == out["p_value"]


def test_exact_edge_cases():
    assert mcnemar([True, False], [True, False]) == {
        "b": 0, "c": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact-binomial"}
    assert mcnemar(*_pairs(3, 3))["p_value"] == 1.0
    assert mcnemar(*_pairs(5, 0))["p_value"] == pytest.approx(2 / 32)


def test_chi_square_with_continuity_correction():
    out = mcnemar(*_pairs(20, 10))
    assert out["method"] == "chi-square-continuity-corrected"
    assert out["statistic"] == pytest.approx(81 / 30)
    assert out["p_value"] == pytest.approx(0.10035, abs=1e-5)  # chi2(1) tail at 2.7
    assert mcnemar(*_pairs(15, 15))["statistic"] == 0.0
    assert mcnemar(*_pairs(15, 15))["p_value"] == 1.0


def test_tails_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for n in range(0, 25):
        for k in range(0, n + 1):
            assert binomial_cdf_half(k, n) == pytest.approx(stats.binom.cdf(k, n, 0.5), rel=1e-12)
    for b, c in [(1, 7), (4, 9), (0, 12)]:
        assert mcnemar(*_pairs(b, c))["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
    for x in [0.01, 0.5, 1.0, 3.84, 10.0, 40.0]:
        assert chi2_1_sf(x) == pytest.approx(stats.chi2.sf(x, 1), rel=1e-10)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="same items"):
        mcnemar([True], [True, False])


GOLD = ["x", "y"] * 50


def test_bootstrap_identical_predictions():
    pred = ["x"] * 100
    out = paired_bootstrap(accuracy, GOLD, pred, list(pred), n_resamples=200)
    assert out == {"delta": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}


def test_bootstrap_clear_winner():
    out = paired_bootstrap(accuracy, GOLD, GOLD, ["x"] * 100, n_resamples=300, seed=1)
    assert out["delta"] == pytest.approx(0.5)
    assert 0 < out["ci_low"] < 0.5 < out["ci_high"] < 1
    assert out["p_value"] == 0.0
    flipped = paired_bootstrap(accuracy, GOLD, ["x"] * 100, GOLD, n_resamples=300, seed=1)
    assert flipped["delta"] == pytest.approx(-0.5) and flipped["ci_high"] < 0 and flipped["p_value"] == 0.0


def test_bootstrap_small_difference_is_not_significant_and_uses_bootstrap_ci():
    pred_a = list(GOLD)
    pred_b = list(GOLD)
    for i in range(0, 100, 10):
        pred_a[i] = "z"
    for i in range(5, 100, 10):
        pred_b[i] = "z"
    pred_b[1] = "z"
    out = paired_bootstrap(accuracy, GOLD, pred_b, pred_a, n_resamples=500, seed=3)
    assert out["delta"] == pytest.approx(-0.01)
    assert out["p_value"] > 0.5 and out["ci_low"] < 0 < out["ci_high"]

    def delta(g, pairs):
        return accuracy(g, [p for p, _ in pairs]) - accuracy(g, [q for _, q in pairs])

    ci = bootstrap_ci(delta, GOLD, list(zip(pred_b, pred_a)), n_resamples=500, seed=3)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(ci)
    assert math.isfinite(out["p_value"])


def test_the_mean_bootstrap_in_numpy_gives_bootstrap_cis_interval_to_the_last_bit():
    """Stored CIs stay as they were: per-item F1s (floats), 0/1 and booleans, an odd size, another seed."""
    import random

    import numpy as np

    from protege.scoring.metrics.uncertainty import bootstrap_mean_ci

    def mean(g, _):
        return float(np.mean(g)) if g else 0.0

    rng = random.Random(7)
    for values in ([rng.random() for _ in range(333)], [rng.random() < 0.3 for _ in range(500)],
                   [float(rng.randint(0, 1)) for _ in range(41)], [0.25]):
        for seed in (0, 5):
            assert bootstrap_mean_ci(values, n_resamples=300, seed=seed) == bootstrap_ci(mean, values, values,
                                                                                         n_resamples=300, seed=seed)
    assert bootstrap_mean_ci([]) == (0.0, 0.0)
