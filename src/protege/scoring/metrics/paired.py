"""Paired significance tests for two systems scored on the same items.

    mcnemar(correct_a, correct_b)          # per-item correctness of A and B -> b, c, statistic, p_value
    paired_bootstrap(accuracy, gold, pred_a, pred_b)   # delta = metric(A) - metric(B), 95% CI, p_value

McNemar looks only at the discordant items: b = A right and B wrong, c = A wrong and B right. With
b + c < 25 it uses the exact two-sided binomial test (statistic = min(b, c)); otherwise the
chi-square test with continuity correction, (|b - c| - 1)^2 / (b + c), left uncorrected when b == c
as R's mcnemar.test does. Both are computed here so scipy is not needed.

The paired bootstrap resamples items (keeping A's and B's predictions together) with `bootstrap_ci`,
so its interval and seed behave like every other interval in a report.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from protege.scoring.metrics.uncertainty import bootstrap_ci

EXACT_BELOW = 25


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """McNemar's test of whether A and B have the same accuracy on these items."""
    _check_lengths(correct_a, correct_b)
    b = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    n = b + c
    if n < EXACT_BELOW:
        statistic = float(min(b, c))
        p_value = min(1.0, 2 * binomial_cdf_half(min(b, c), n))
        method = "exact-binomial"
    else:
        correction = 1 if b != c else 0
        statistic = (abs(b - c) - correction) ** 2 / n
        p_value = chi2_1_sf(statistic)
        method = "chi-square-continuity-corrected"
    return {"b": b, "c": c, "statistic": statistic, "p_value": p_value, "method": method}


def binomial_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), computed exactly in integers."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def chi2_1_sf(x: float) -> float:
    """Survival function of the chi-square distribution with one degree of freedom."""
    return math.erfc(math.sqrt(x / 2)) if x > 0 else 1.0


def paired_bootstrap(
    metric: Callable[[list, list], float],
    gold: Sequence,
    pred_a: Sequence,
    pred_b: Sequence,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Bootstrap the difference metric(gold, pred_a) - metric(gold, pred_b) over items.

    p_value is two-sided: twice the fraction of resamples whose delta does not share the observed
    delta's sign (zero counts as not sharing), capped at 1; it is 1 when the observed delta is 0.
    """
    _check_lengths(gold, pred_a)
    _check_lengths(gold, pred_b)
    if len(gold) == 0:
        raise ValueError("no items to compare")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    gold = list(gold)
    delta = metric(gold, list(pred_a)) - metric(gold, list(pred_b))
    resampled: list[float] = []

    def paired_delta(g: list, pairs: list) -> float:
        d = metric(g, [a for a, _ in pairs]) - metric(g, [b for _, b in pairs])
        resampled.append(d)
        return d

    ci_low, ci_high = bootstrap_ci(
        paired_delta, gold, list(zip(pred_a, pred_b)), n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    if delta == 0:
        p_value = 1.0
    else:
        flips = sum(1 for d in resampled if d * delta <= 0)
        p_value = min(1.0, 2 * flips / len(resampled))
    return {"delta": delta, "ci_low": ci_low, "ci_high": ci_high, "p_value": p_value}


def _check_lengths(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same items on both sides, got {len(a)} and {len(b)}")
