"""Slot/span F1 for extraction tasks, micro-averaged over (slot, value) pairs.

    span_prf([("city", "Paris"), ("date", "May 3")], [("city", " paris ")])
    micro_span_prf(gold_items, pred_items)    # one list of pairs per item, counts summed over items

A predicted pair is a true positive when the same item has a gold pair with the same slot name and
the same value after `normalize_value`. Pairs are multisets: a gold pair listed twice needs two
matching predictions, and a repeated prediction beyond the gold count is a false positive. Matching
never crosses items. When an item (or corpus) has no gold and no predicted pairs, precision, recall
and F1 are all 1.0; otherwise an empty denominator gives 0.0.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

Pair = tuple[str, str]


def normalize_value(value: str) -> str:
    """Lowercase, strip and collapse internal whitespace; slot names are compared as given."""
    if not isinstance(value, str):
        raise TypeError(f"slot values must be strings, got {type(value).__name__} {value!r}; convert them first")
    return " ".join(value.lower().split())


def span_counts(gold: Sequence[Pair], pred: Sequence[Pair]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one item."""
    gold_bag = Counter((slot, normalize_value(value)) for slot, value in gold)
    pred_bag = Counter((slot, normalize_value(value)) for slot, value in pred)
    tp = sum((gold_bag & pred_bag).values())
    return tp, sum(pred_bag.values()) - tp, sum(gold_bag.values()) - tp


def span_prf(gold: Sequence[Pair], pred: Sequence[Pair]) -> dict:
    """precision, recall, f1, tp, fp, fn of one item's predicted pairs."""
    return _prf(*span_counts(gold, pred))


def micro_span_prf(gold_items: Sequence[Sequence[Pair]], pred_items: Sequence[Sequence[Pair]]) -> dict:
    """Micro precision, recall, f1 (plus tp, fp, fn) with counts summed over aligned items."""
    if len(gold_items) != len(pred_items):
        raise ValueError(
            f"gold has {len(gold_items)} items but predictions have {len(pred_items)}: score aligned lists"
        )
    tp = fp = fn = 0
    for gold, pred in zip(gold_items, pred_items):
        t, p, n = span_counts(gold, pred)
        tp, fp, fn = tp + t, fp + p, fn + n
    return _prf(tp, fp, fn)


def _prf(tp: int, fp: int, fn: int) -> dict:
    if tp + fp + fn == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 0, "fp": 0, "fn": 0}
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
