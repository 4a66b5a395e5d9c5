"""Question answering: a short answer, from the passage (SQuAD) or from memory (NQ-open); "" = unanswerable.

Scored exactly as the official SQuAD v2.0 script: normalised exact match and token F1, max over gold answers,
and an empty prediction is right only for an unanswerable question.
"""
from __future__ import annotations

import re

from protege.evaluate.metrics.squad import score_item
from protege.tasks.kinds import chat_with_shots, first_line
from protege.tasks.spec import Example, TaskSpec

MAX_NEW_TOKENS = 32
STOP: list[str] = ["\n"]
UNANSWERABLE = "unanswerable"
_NO_ANSWER = re.compile(r"^(unanswerable|no answer|cannot be answered|not (stated|mentioned|given|answerable))\b", re.I)


def render_input(item: Example) -> str:
    passage = f"Passage: {item.context}\n" if item.context else ""
    return f"{passage}Question: {item.text}"


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, spec.description, render_input, shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    return item.answers[0] if item.answers else UNANSWERABLE


def parse(spec: TaskSpec, output: str) -> str:
    answer = first_line(output)
    answer = re.sub(r"^(the )?answer( is)?\s*[:\-]?\s*", "", answer, flags=re.I).strip().rstrip(".").strip()
    return "" if _NO_ANSWER.match(answer) else answer


def score(spec: TaskSpec, item: Example, prediction: str) -> dict:
    exact, f1 = score_item(item.answers or [], prediction)
    return {"exact_match": float(exact), "f1": f1, "has_answer": bool(item.answers)}
