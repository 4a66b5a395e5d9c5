"""Classification metrics: accuracy, macro-F1 and a per-class report.

Pure functions over lists of gold and predicted labels; no model, no I/O.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Fraction of items whose prediction equals the gold label (0.0 for no items)."""
    _check_lengths(gold, pred)
    return sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else 0.0


def per_class_report(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> dict:
    """Precision, recall, F1 and support per label; labels default to those seen in gold."""
    _check_lengths(gold, pred)
    labels = list(labels) if labels is not None else sorted(set(gold))
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    report = {}
    for label in labels:
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp[label] + fn[label]}
    return report


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-class F1 over `labels` (default: the labels present in gold, as scikit-learn
    does when given the gold label set)."""
    report = per_class_report(gold, pred, labels)
    return sum(r["f1"] for r in report.values()) / len(report) if report else 0.0


def _check_lengths(gold: Sequence, pred: Sequence) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items but predictions have {len(pred)}: score aligned lists")
