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


def shown_names(rows: list[dict]) -> dict[str, str | None]:
    """The name a report prints for each stored row name, by how the row was prompted; None: left out.

    results.json keeps the stored names (so runs written earlier read the same); a report names rows by their
    shots: a few-shot row shown no examples is the zero-shot row again (the same samples) and is left out, and a
    teacher shown none is "teacher (zero-shot)".
    """
    return {r["row"]: shown_name(r["row"], r.get("shots")) for r in rows}


def shown_name(name: str, shots: int | None) -> str | None:
    """The name one row goes by, given how many examples it was shown (see `shown_names`); the test-access log's
    "who" uses it too, so a zero-shot teacher's reads are not logged as a few-shot teacher's."""
    if name == Row.FEW_SHOT and shots == 0:
        return None
    if name == Row.TEACHER and shots == 0:
        return "teacher (zero-shot)"
    return str(name)


def shown_rows(rows: list[dict]) -> list[dict]:
    """The rows a report prints, renamed by `shown_names` (copies; the stored rows are not changed)."""
    names = shown_names(rows)
    return [dict(r, row=names[r["row"]]) for r in rows if names[r["row"]] is not None]
