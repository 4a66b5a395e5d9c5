"""The rows of an eval stage's results: which model, prompted how. Their values are what results.json and the
report show, so runs written before this enum read the same.

    Row.FINE_TUNED == "fine-tuned";  {r["row"]: r for r in results["rows"]}[Row.TEACHER]
"""
from __future__ import annotations

from enum import Enum


class Row(str, Enum):
    ZERO_SHOT = "baseline (zero-shot)"  # the student before training, no examples
    FEW_SHOT = "baseline (few-shot)"  # the student before training, eval.few_shot_per_label seeds shown
    FINE_TUNED = "fine-tuned"  # the trained student (its adapter), no examples
    TEACHER = "teacher (few-shot)"  # the answers teacher, prompted as the few-shot row (eval.teacher_shots: other)

    __str__ = str.__str__  # "fine-tuned" in f-strings and str(), on every Python version
