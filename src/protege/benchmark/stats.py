"""Ranks, mean-rank intervals, plasticity and gap closed for a benchmark score table.

A score table is `scores[model][task] -> float`, higher is better, with every model scored on every
task (a missing or non-finite cell is an error naming the model and the task). Pure functions, no I/O:

    ranks = ranks_per_task(scores)               # {task: {model: rank}}, 1 = best, ties averaged
    mean_rank_ci(ranks)                          # {model: (mean, low, high)}, t-interval over tasks
    mean_rank_ci(ranks, method="bootstrap")      # percentile bootstrap over tasks, seeded
    plasticity(tuned, base)                      # {model: {task: tuned - base}}
    plasticity_ranks(tuned, base)                # ranks_per_task of the plasticity table
    gap_closed(tuned, base, teacher)             # (tuned - base) / (teacher - base), None if teacher == base

Friedman, Nemenyi and per-item paired tests live in rank_tests.py.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import stats as sps

Table = Mapping[str, Mapping[str, float]]
Ranks = dict[str, dict[str, float]]


def table_matrix(scores: Table, name: str = "scores") -> tuple[list[str], list[str], np.ndarray]:
    """Check a score table and return (models, tasks, matrix[task, model]) in first-seen order.

    Every problem (missing cell, non-number, NaN/inf) is reported at once in one ValueError.
    """
    models = list(scores)
    if not models:
        raise ValueError(f"{name}: the table has no models")
    tasks = list(dict.fromkeys(t for m in models for t in scores[m]))
    if not tasks:
        raise ValueError(f"{name}: the table has no tasks")
    problems = []
    matrix = np.empty((len(tasks), len(models)))
    for j, model in enumerate(models):
        row = scores[model]
        for i, task in enumerate(tasks):
            if task not in row:
                problems.append(f"model {model!r} has no score for task {task!r}")
                continue
            value = row[task]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                problems.append(f"model {model!r}, task {task!r}: score must be a number, got {value!r}")
            elif not math.isfinite(value):
                problems.append(f"model {model!r}, task {task!r}: score must be finite, got {value!r}")
            else:
                matrix[i, j] = value
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        lines = "\n".join(f"  - {p}" for p in shown)
        raise ValueError(
            f"{name}: {len(problems)} problem(s); every model needs a finite score on every task:\n{lines}"
        )
    return models, tasks, matrix


def ranks_per_task(scores: Table) -> Ranks:
    """Rank the models within each task: 1 = highest score, tied models share the average of their ranks."""
    models, tasks, matrix = table_matrix(scores)
    ranked = sps.rankdata(-matrix, method="average", axis=1)
    return {task: {m: float(r) for m, r in zip(models, ranked[i])} for i, task in enumerate(tasks)}


def rank_matrix(ranks: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[str], np.ndarray]:
    """(models, tasks, matrix[task, model]) of a ranks table; every task must rank the same models."""
    tasks = list(ranks)
    if not tasks:
        raise ValueError("ranks: no tasks")
    models = list(ranks[tasks[0]])
    for task in tasks[1:]:
        if set(ranks[task]) != set(models):
            missing = sorted(set(models) - set(ranks[task]))
            extra = sorted(set(ranks[task]) - set(models))
            raise ValueError(
                f"ranks: task {task!r} ranks different models than task {tasks[0]!r} "
                f"(missing {missing}, extra {extra}); rank every model on every task"
            )
    matrix = np.array([[float(ranks[t][m]) for m in models] for t in tasks])
    return models, tasks, matrix


def mean_ranks(ranks: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each model's rank averaged over tasks."""
    models, _, matrix = rank_matrix(ranks)
    return {m: float(v) for m, v in zip(models, matrix.mean(axis=0))}


def mean_rank_ci(
    ranks: Mapping[str, Mapping[str, float]],
    level: float = 0.95,
    method: str = "t",
    resamples: int = 10000,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """Interval for each model's mean rank over tasks: {model: (mean, low, high)}.

    The tasks are the sample: the interval says how the mean rank might move on other tasks like these.
    - method="t": mean +- t_{n-1, (1+level)/2} * sd / sqrt(n), sd with ddof=1, n = number of tasks.
    - method="bootstrap": percentile bootstrap. Each resample draws n tasks with replacement (the same
      tasks for every model, so the models stay paired) and takes each model's mean of its existing
      ranks on them; ranks are not recomputed because a task's ranks do not depend on other tasks.
      low/high are the (1-level)/2 and (1+level)/2 quantiles (numpy's linear interpolation) of the
      resampled means. `resamples` and `seed` are used only here; the same seed gives the same interval.
    With a single task no spread can be estimated, so low and high are nan for either method.
    A model with the same rank on every task gets the degenerate interval (mean, mean, mean).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    if method == "bootstrap" and resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    models, _, matrix = rank_matrix(ranks)
    n = matrix.shape[0]
    means = matrix.mean(axis=0)
    if n == 1:
        return {m: (float(v), math.nan, math.nan) for m, v in zip(models, means)}
    if method == "t":
        half = sps.t.ppf((1 + level) / 2, n - 1) * matrix.std(axis=0, ddof=1) / math.sqrt(n)
        low, high = means - half, means + half
    else:
        # Multinomial counts of how often each task was drawn: the same resampling as drawing indices,
        # without a resamples x tasks x models array.
        counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=resamples)
        boot = counts @ matrix / n
        low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {m: (float(means[j]), float(low[j]), float(high[j])) for j, m in enumerate(models)}


def plasticity(tuned: Table, base: Table) -> dict[str, dict[str, float]]:
    """How much tuning moved each model on each task: {model: {task: tuned - base}}.

    Both tables must hold the same models and tasks; a difference is an error, not silently dropped.
    """
    models, tasks, after = table_matrix(tuned, "tuned")
    base_models, base_tasks, before = table_matrix(base, "base")
    if set(models) != set(base_models) or set(tasks) != set(base_tasks):
        raise ValueError(
            "tuned and base must score the same models on the same tasks: "
            f"models only in tuned {sorted(set(models) - set(base_models))}, "
            f"only in base {sorted(set(base_models) - set(models))}; "
            f"tasks only in tuned {sorted(set(tasks) - set(base_tasks))}, "
            f"only in base {sorted(set(base_tasks) - set(tasks))}"
        )
    return {m: {t: float(tuned[m][t]) - float(base[m][t]) for t in tasks} for m in models}


def plasticity_ranks(tuned: Table, base: Table) -> Ranks:
    """Rank models by plasticity within each task: 1 = gained most from tuning."""
    return ranks_per_task(plasticity(tuned, base))


def gap_closed(tuned: float, base: float, teacher: float) -> float | None:
    """Fraction of the base-to-teacher gap that tuning closed: (tuned - base) / (teacher - base).

    1 = reached the teacher, 0 = no change, < 0 = moved away from the teacher, > 1 = went past it.
    The sign follows the teacher's direction: with a teacher below the base, falling counts as closing.
    None when teacher == base exactly: there is no gap, and None keeps an undefined ratio out of
    averages instead of an inf or nan.
    """
    if teacher == base:
        return None
    return (tuned - base) / (teacher - base)
