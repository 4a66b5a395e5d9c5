"""Slot extraction: the assistant writes a JSON object of slot -> value copied from the text ({} if none)."""
from __future__ import annotations

import json
import re

from protege.evaluate.metrics.spans import span_counts
from protege.tasks.kinds import chat_with_shots
from protege.tasks.spec import Example, TaskSpec

MAX_NEW_TOKENS = 48
STOP: list[str] = []


def instruction(spec: TaskSpec) -> str:
    slots = "\n".join(f"- {s.name}: {s.description}" if s.description else f"- {s.name}" for s in spec.slots or [])
    return (f"{spec.description}\nSlots:\n{slots}\nReply with a JSON object mapping each slot that is present to "
            "the exact words from the message; reply {} when none is present.")


def render_input(item: Example) -> str:
    asked = f"(The assistant had just asked for: {item.context}.)\n" if item.context else ""
    return f"{asked}Message: {item.text}"


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, instruction(spec), render_input, shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    return json.dumps({slot: value for slot, value in item.spans or []})


def parse(spec: TaskSpec, output: str) -> list[list[str]]:
    """(slot, value) pairs for known slots: the first JSON object in the output, else `slot: value` lines."""
    known = set(spec.slot_names)
    match = re.search(r"\{.*?\}", output, flags=re.S)
    pairs: list[list[str]] = []
    if match:
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            for slot, value in obj.items():
                if slot in known and isinstance(value, (str, int, float)) and str(value).strip():
                    pairs.append([slot, str(value)])
            return pairs
    for line in output.splitlines():
        slot, sep, value = line.partition(":")
        slot = slot.strip().strip('"-* ')
        if sep and slot in known and value.strip().strip('",'):
            pairs.append([slot, value.strip().strip('",')])
    return pairs


def score(spec: TaskSpec, item: Example, prediction) -> dict:
    tp, fp, fn = span_counts([tuple(p) for p in item.spans or []], [tuple(p) for p in prediction])
    return {"tp": tp, "fp": fp, "fn": fn, "exact_match": float(fp == 0 and fn == 0)}
