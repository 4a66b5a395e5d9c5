"""Turn per-item records into metrics with 95% bootstrap intervals and cost figures.

    summarize(spec, records)      # every metric of the task's kind, each with a `<metric>_ci`, plus cost
    item_correct(spec, record)    # the right/wrong a McNemar test compares
    metric_fn(spec, "f1")         # records -> value, for bootstraps and paired tests

Each kind says how its records become metrics (protege.tasks.kinds, built from protege.scoring.summaries);
this adds the cost columns every row has.
"""
from __future__ import annotations

from protege.scoring.summaries import classification_summary, cost_summary
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec

__all__ = ["classification_summary", "cost_summary", "item_correct", "metric_fn", "summarize"]


def summarize(spec: TaskSpec, records: list[dict], resamples: int = 1000) -> dict:
    return {**kind_of(spec).summarize(spec, records, resamples), **cost_summary(records)}


def item_correct(spec: TaskSpec, record: dict) -> bool:
    """The per-item right/wrong a McNemar test compares (exact match where the headline is an F1)."""
    return kind_of(spec).item_correct(record)


def metric_fn(spec: TaskSpec, name: str):
    """records -> value of one metric (what bootstrap and paired tests resample)."""
    return kind_of(spec).metric_fn(spec, name)
