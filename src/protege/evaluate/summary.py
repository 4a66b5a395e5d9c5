"""Turn per-item records into metrics with 95% bootstrap intervals and cost figures.

    summarize(spec, records)      # every metric of the task's kind, each with a `<metric>_ci`, plus cost

Metrics are fractions in [0, 1]. Slot F1 is micro-averaged over (slot, value) pairs, so its interval resamples
items and recomputes the pooled counts; the other metrics are means of per-item values.
"""
from __future__ import annotations

import numpy as np

from protege.evaluate.metrics.classification import accuracy, macro_f1, per_class_report
from protege.evaluate.metrics.uncertainty import bootstrap_ci
from protege.tasks.spec import TaskSpec


def summarize(spec: TaskSpec, records: list[dict], resamples: int = 1000) -> dict:
    if spec.kind == "classification":
        return classification_summary(records, spec.label_names, resamples)
    out: dict = {"n": len(records)}
    if spec.kind == "extraction":
        out.update(_metric("slot_f1", _micro_f1, records, resamples))
        out.update(_metric("exact_match", _mean("exact_match"), records, resamples))
    elif spec.kind == "qa":
        for name in ("exact_match", "f1"):
            out.update(_metric(name, _mean(name), records, resamples))
        answerable = [r for r in records if r["has_answer"]]
        if 0 < len(answerable) < len(records):  # SQuAD 2.0's HasAns / NoAns split
            unanswerable = [r for r in records if not r["has_answer"]]
            for prefix, subset in (("has_answer", answerable), ("no_answer", unanswerable)):
                out[f"{prefix}_n"] = len(subset)
                out[f"{prefix}_exact_match"] = _mean("exact_match")(subset, subset)
                out[f"{prefix}_f1"] = _mean("f1")(subset, subset)
    else:
        name = spec.headline_metric
        out.update(_metric(name, _mean(name), records, resamples))
        if spec.kind == "code":
            out["statuses"] = {s: sum(1 for r in records if r["status"] == s) for s in
                               sorted({r["status"] for r in records})}
    return {**out, **cost_summary(records)}


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


def item_correct(spec: TaskSpec, record: dict) -> bool:
    """The per-item right/wrong a McNemar test compares (exact match where the headline is an F1)."""
    if spec.kind == "classification":
        return record["prediction"] == record["gold"]
    key = {"extraction": "exact_match", "qa": "exact_match"}.get(spec.kind, spec.headline_metric)
    return bool(record[key])


def metric_fn(spec: TaskSpec, name: str):
    """records -> value of one metric (what bootstrap and paired tests resample)."""
    if name == "slot_f1":
        return lambda records: _micro_f1(records, None)
    if name == "macro_f1":
        return lambda records: macro_f1([r["gold"] for r in records], [r["prediction"] for r in records],
                                        spec.label_names)
    if name == "accuracy" and spec.kind == "classification":
        return lambda records: float(np.mean([r["prediction"] == r["gold"] for r in records])) if records else 0.0
    return lambda records: _mean(name)(records, None)


def _metric(name: str, fn, records: list[dict], resamples: int) -> dict:
    return {name: fn(records, records), f"{name}_ci": bootstrap_ci(fn, records, records, n_resamples=resamples)}


def _mean(key: str):
    return lambda records, _: float(np.mean([r[key] for r in records])) if records else 0.0


def _micro_f1(records: list[dict], _) -> float:
    tp = sum(r["tp"] for r in records)
    fp = sum(r["fp"] for r in records)
    fn = sum(r["fn"] for r in records)
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)
