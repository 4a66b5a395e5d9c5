"""Turn per-item records into metrics with 95% bootstrap intervals and cost figures."""
from __future__ import annotations

import numpy as np

from protege.evaluate.metrics.classification import accuracy, macro_f1
from protege.evaluate.metrics.uncertainty import bootstrap_ci


def classification_summary(records: list[dict], labels: list[str], resamples: int = 1000) -> dict:
    gold = [r["gold"] for r in records]
    pred = [r["prediction"] for r in records]
    f1 = lambda g, p: macro_f1(g, p, labels)  # noqa: E731 - fixed label set, also for resamples
    seconds = np.array([r["seconds"] for r in records]) if records else np.zeros(1)
    return {
        "n": len(records),
        "accuracy": accuracy(gold, pred),
        "accuracy_ci": bootstrap_ci(accuracy, gold, pred, n_resamples=resamples),
        "macro_f1": f1(gold, pred),
        "macro_f1_ci": bootstrap_ci(f1, gold, pred, n_resamples=resamples),
        "seconds_p50": float(np.percentile(seconds, 50)),
        "seconds_p95": float(np.percentile(seconds, 95)),
        "tokens_in_mean": float(np.mean([r["tokens_in"] for r in records])) if records else 0.0,
    }
