"""Significance tests for a benchmark: Friedman over models x tasks, Nemenyi critical difference, paired items.

    friedman(scores)                   # do the models' ranks differ at all? chi-square (+ Iman-Davenport F)
    cd = nemenyi_cd(k, n, alpha=0.05)  # mean ranks further apart than cd differ (Demsar 2006, sec. 3.2.2)
    nemenyi_groups(mean_ranks, cd)     # cliques of models not significantly different, for a CD diagram
    paired_test(student, teacher)      # one task, per-item scores: exact McNemar or Wilcoxon signed-rank

`scores` is the score table of stats.py (`scores[model][task]`, higher is better).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as sps

from protege.benchmark.stats import Table, rank_matrix, ranks_per_task
from protege.scoring.metrics.paired import mcnemar


def friedman(scores: Table) -> dict:
    """Friedman test that all models have the same mean rank over the tasks (tasks are the blocks).

    statistic = 12N/(k(k+1)) * (sum_j R_j^2 - k(k+1)^2/4) / C, with R_j the mean ranks, N tasks, k models,
    and C = 1 - sum over tie groups (t^3 - t) / (N k (k^2 - 1)) the tie correction scipy's
    friedmanchisquare applies (C = 1 without ties, giving Demsar's formula exactly). p_value is the
    chi-square(k - 1) tail. When every task ties all models, C = 0 and there is nothing to test:
    statistic 0, p_value 1 (scipy returns nan there).
    The Iman-Davenport F = (N-1) chi2 / (N(k-1) - chi2) with (k-1, (k-1)(N-1)) degrees of freedom is
    less conservative; it is nan with one task, and inf (p 0) when the models rank the same on every task.
    """
    ranks = ranks_per_task(scores)
    models, _, matrix = rank_matrix(ranks)
    n, k = matrix.shape
    if k < 2:
        raise ValueError(f"friedman needs at least 2 models, got {k}")
    mean = matrix.mean(axis=0)
    ties = sum(float(t**3 - t) for row in matrix for t in np.unique(row, return_counts=True)[1])
    correction = 1 - ties / (n * k * (k * k - 1))
    if correction <= 0:
        chi2 = 0.0
    else:
        chi2 = 12 * n / (k * (k + 1)) * (float(np.sum(mean**2)) - k * (k + 1) ** 2 / 4) / correction
        chi2 = max(chi2, 0.0)  # rounding can leave -1e-15 when all mean ranks are equal
    df = k - 1
    if n < 2:
        f, f_p = math.nan, math.nan
    elif n * df - chi2 <= 1e-12 * n * df:
        f, f_p = math.inf, 0.0
    else:
        f = (n - 1) * chi2 / (n * df - chi2)
        f_p = float(sps.f.sf(f, df, df * (n - 1)))
    return {
        "statistic": chi2,
        "p_value": float(sps.chi2.sf(chi2, df)),
        "df": df,
        "n_tasks": n,
        "n_models": k,
        "mean_ranks": {m: float(r) for m, r in zip(models, mean)},
        "iman_davenport_f": f,
        "iman_davenport_p": f_p,
        "iman_davenport_df": (df, df * (n - 1)),
    }


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Nemenyi's q_alpha: the studentized range quantile for k groups and infinite df, over sqrt(2)."""
    return float(sps.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Critical difference CD = q_alpha * sqrt(k(k+1) / (6N)) for k models ranked on n tasks.

    Two models whose mean ranks differ by at least CD differ significantly (all pairs at once, level alpha).
    scipy's quantiles differ from Demsar's Table 5 by up to 0.001 (e.g. 2.3437 for k=3, printed 2.343).
    """
    if k < 2:
        raise ValueError(f"nemenyi_cd needs at least 2 models, got k={k}")
    if n < 1:
        raise ValueError(f"nemenyi_cd needs at least 1 task, got n={n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha}")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n))


def nemenyi_groups(mean_ranks: Mapping[str, float], cd: float) -> list[list[str]]:
    """Maximal runs of models (sorted by mean rank, best first) whose mean ranks span less than cd.

    Each group is one bar of a CD diagram: no two models in it differ significantly. Groups contained
    in an earlier group are dropped; a model that differs from every other forms a group of its own,
    so every model appears at least once (drop singletons to draw only the bars).
    """
    order = sorted(mean_ranks, key=lambda m: mean_ranks[m])
    groups: list[list[str]] = []
    last_end = -1
    for i, model in enumerate(order):
        end = i
        while end + 1 < len(order) and mean_ranks[order[end + 1]] - mean_ranks[model] < cd:
            end += 1
        if end > last_end:  # otherwise this run sits inside the previous one
            groups.append(order[i : end + 1])
            last_end = end
    return groups


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict:
    """Two-sided test that two systems (e.g. student a, teacher b) score the same on the same items.

    Items whose scores are all 0/1 on both sides get the exact McNemar test: b, c are the discordant
    counts from evaluate.metrics.paired.mcnemar, statistic = min(b, c), p_value = exact two-sided
    binomial(b + c, 1/2) tail, at any size (mcnemar itself switches to chi-square from 25 discordant
    pairs). Other scores get scipy's Wilcoxon signed-rank test, which drops zero differences; if all
    differences are zero, statistic 0 and p_value 1.
    Returns statistic, p_value, method, n (items) and mean_difference = mean(a) - mean(b), which gives
    the direction the two-sided p_value does not; the binary case adds b and c.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_test needs the same items on both sides, got {len(a)} and {len(b)}")
    if len(a) == 0:
        raise ValueError("paired_test: no items to compare")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("paired_test: scores must be finite numbers")
    out = {"n": len(x), "mean_difference": float(x.mean() - y.mean())}
    if np.all(np.isin(x, (0.0, 1.0))) and np.all(np.isin(y, (0.0, 1.0))):
        counts = mcnemar([v == 1 for v in x], [v == 1 for v in y])
        low, discordant = min(counts["b"], counts["c"]), counts["b"] + counts["c"]
        # binomtest rather than mcnemar's integer sum: that sum takes ~40 s at 20k discordant pairs.
        p = float(sps.binomtest(low, discordant, 0.5).pvalue) if discordant else 1.0
        return out | {"statistic": float(low), "p_value": p, "method": "mcnemar-exact",
                      "b": counts["b"], "c": counts["c"]}
    if np.all(x == y):
        return out | {"statistic": 0.0, "p_value": 1.0, "method": "wilcoxon-signed-rank"}
    result = sps.wilcoxon(x, y)
    return out | {"statistic": float(result.statistic), "p_value": float(result.pvalue),
                  "method": "wilcoxon-signed-rank"}
