"""Percentile bootstrap confidence intervals for any per-item metric.

`bootstrap_ci(metric, gold, pred)` resamples items with replacement (fixed seed, so a report is reproducible)
and returns the 2.5th and 97.5th percentiles of the metric for a 95% interval.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def bootstrap_ci(
    metric: Callable[[list, list], float],
    gold: Sequence,
    pred: Sequence,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric(gold, pred)` over items."""
    n = len(gold)
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    gold, pred = list(gold), list(pred)
    stats = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        stats.append(metric([gold[i] for i in idx], [pred[i] for i in idx]))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)
