"""Classification: the assistant writes one label word (its verbalizer)."""
from __future__ import annotations

import re

from protege.tasks.kinds import chat_with_shots
from protege.tasks.spec import Example, TaskSpec

MAX_NEW_TOKENS = 8
STOP: list[str] = ["\n"]


def instruction(spec: TaskSpec) -> str:
    words = ", ".join(l.word for l in spec.labels or [])
    return f"{spec.description}\nAnswer with one of: {words}."


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, instruction(spec), lambda ex: f"Text: {ex.text}", shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    return spec.label(item.label).word


def parse(spec: TaskSpec, output: str) -> str | None:
    """Generate-then-parse: the label whose verbalizer appears first in the output (None if none does)."""
    lowered = output.lower()
    best, best_pos = None, len(lowered) + 1
    for label in spec.labels or []:
        m = re.search(rf"\b{re.escape(label.word.lower())}\b", lowered)
        if m and m.start() < best_pos:
            best, best_pos = label.name, m.start()
    return best


def score(spec: TaskSpec, item: Example, prediction) -> dict:
    return {"accuracy": float(prediction == item.label)}
