"""Maths word problems (GSM8K): the assistant reasons, then writes `#### <number>`; the number is scored."""
from __future__ import annotations

from protege.evaluate.metrics.gsm8k import extract_number
from protege.tasks.kinds import chat_with_shots
from protege.tasks.spec import Example, TaskSpec

MAX_NEW_TOKENS = 256
STOP: list[str] = []


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, spec.description, lambda ex: f"Problem: {ex.text}", shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    # Worked GSM8K solutions carry calculator annotations <<a*b=c>>; they are noise to a student.
    import re

    if item.reference:
        return re.sub(r"<<[^>]*>>", "", item.reference)
    return f"#### {item.answers[0]}"


def parse(spec: TaskSpec, output: str) -> str | None:
    value = extract_number(output)
    if value is None:
        return None
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def score(spec: TaskSpec, item: Example, prediction) -> dict:
    gold = extract_number(item.answers[0])
    ok = prediction is not None and extract_number(prediction) == gold
    return {"number_match": float(ok)}
