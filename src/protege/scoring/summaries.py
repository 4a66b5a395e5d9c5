"""Per-item records -> metrics with 95% bootstrap intervals: the building blocks each task kind's `summarize`
uses (protege.tasks.kinds), and the cost columns every row gets.

    mean_metric("exact_match", records, resamples)   # {"exact_match": 0.61, "exact_match_ci": (0.55, 0.66)}
    classification_summary(records, labels)          # accuracy, macro-F1 (intervals), per-class report
    micro_f1(records)                                # slot F1 pooled over the items' tp/fp/fn counts

Metrics are fractions in [0, 1]. Slot F1 is micro-averaged over (slot, value) pairs, so its interval resamples
items and recomputes the pooled counts; the other metrics are means of per-item values.
"""
from __future__ import annotations

import numpy as np

from protege.scoring.metrics.classification import accuracy, macro_f1, per_class_report
from protege.scoring.metrics.uncertainty import bootstrap_ci, bootstrap_mean_ci


def metric_with_ci(name: str, fn, records: list[dict], resamples: int) -> dict:
    """`fn(records, records)` and its bootstrap interval over items, as {name, name_ci}."""
    return {name: fn(records, records), f"{name}_ci": bootstrap_ci(fn, records, records, n_resamples=resamples)}


def mean_of(key: str):
    """records, _ -> the mean of one per-item value (0 for no records)."""
    return lambda records, _: float(np.mean([r[key] for r in records])) if records else 0.0


def mean_metric(name: str, records: list[dict], resamples: int) -> dict:
    """The mean of one per-item value and its bootstrap interval (metric_with_ci's, computed in numpy)."""
    return {name: mean_of(name)(records, records),
            f"{name}_ci": bootstrap_mean_ci([r[name] for r in records], n_resamples=resamples)}


def micro_f1(records: list[dict], _=None) -> float:
    tp = sum(r["tp"] for r in records)
    fp = sum(r["fp"] for r in records)
    fn = sum(r["fn"] for r in records)
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)


def item_f1(record: dict) -> float:
    """One item's own slot F1, 2tp / (2tp + fp + fn); 1 when there is nothing to find and nothing found."""
    tp, fp, fn = record["tp"], record["fp"], record["fn"]
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def classification_summary(records: list[dict], labels: list[str], resamples: int = 1000) -> dict:
    gold = [r["gold"] for r in records]
    pred = [r["prediction"] for r in records]
    f1 = lambda g, p: macro_f1(g, p, labels)  # noqa: E731 - fixed label set, also for resamples
    return {
        "n": len(records),
        "accuracy": accuracy(gold, pred),
        "accuracy_ci": bootstrap_ci(accuracy, gold, pred, n_resamples=resamples),
        "macro_f1": f1(gold, pred),
        "macro_f1_ci": bootstrap_ci(f1, gold, pred, n_resamples=resamples),
        "per_class": per_class_report(gold, pred, labels),
        "predicted": {label: sum(1 for p in pred if p == label) for label in labels},
        **cost_summary(records),
    }


def cost_summary(records: list[dict]) -> dict:
    seconds = np.array([r.get("seconds", 0.0) for r in records]) if records else np.zeros(1)
    return {
        "seconds_p50": float(np.percentile(seconds, 50)),
        "seconds_p95": float(np.percentile(seconds, 95)),
        "tokens_in_mean": float(np.mean([r.get("tokens_in", 0) for r in records])) if records else 0.0,
        "tokens_out_mean": float(np.mean([r.get("tokens_out", 0) for r in records])) if records else 0.0,
    }
