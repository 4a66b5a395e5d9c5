"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

    pass_at_k(n=20, c=3, k=5)                           # one problem: 20 samples, 3 correct
    mean_pass_at_k([(20, 3), (20, 0), (20, 20)], ks=(1, 5, 10))   # {"pass@1": ..., "pass@5": ..., ...}

pass@k = 1 - C(n-c, k) / C(n, k), the chance that k samples drawn without replacement from the n
generated include a correct one. The ratio is evaluated as a product of n-c+1..n terms so it neither
overflows nor loses precision for large n.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `n` samples of which `c` are correct."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"correct count c={c} must lie between 0 and the number of samples n={n}")
    if k > n:
        raise ValueError(
            f"pass@{k} needs at least {k} samples per problem but this one has n={n}; "
            f"report pass@k only for k <= n, or generate more samples"
        )
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(results: Iterable[tuple[int, int]], ks: Sequence[int]) -> dict[str, float]:
    """Mean pass@k over problems given as (n, c) pairs, keyed "pass@k".

    Only the k with k <= the smallest n are reported, as in the HumanEval harness: a larger k would
    be undefined for some problem.
    """
    results = list(results)
    if not results:
        raise ValueError("no (n, c) results to average")
    min_n = min(n for n, _ in results)
    return {
        f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in results) / len(results)
        for k in ks
        if k <= min_n
    }
