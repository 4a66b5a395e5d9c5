"""How a task's items become prompts, and how a model's text becomes a label.

The same prompt serves zero-shot scoring, few-shot scoring and fine-tuning, so a fine-tuned student is compared
with its own baseline on exactly the input it was trained on.
"""
from __future__ import annotations

import re
from typing import Sequence

from protege.tasks.spec import Example, TaskSpec


def classification_instruction(spec: TaskSpec) -> str:
    words = ", ".join(l.word for l in spec.labels or [])
    return f"{spec.description}\nAnswer with one of: {words}."


def classification_prompt(spec: TaskSpec, text: str, shots: Sequence[Example] = ()) -> list[dict]:
    """A chat whose assistant turn should be the label's verbalizer; shots are earlier user/assistant turns."""
    instruction = classification_instruction(spec)
    messages = []
    for i, shot in enumerate(shots):
        content = f"{instruction}\n\nText: {shot.text}" if i == 0 else f"Text: {shot.text}"
        messages += [{"role": "user", "content": content}, {"role": "assistant", "content": spec.label(shot.label).word}]
    content = f"{instruction}\n\nText: {text}" if not shots else f"Text: {text}"
    messages.append({"role": "user", "content": content})
    return messages


def parse_label(spec: TaskSpec, output: str) -> str | None:
    """Generate-then-parse: the label whose verbalizer appears first in the output (None if none does)."""
    lowered = output.lower()
    best, best_pos = None, len(lowered) + 1
    for label in spec.labels or []:
        m = re.search(rf"\b{re.escape(label.word.lower())}\b", lowered)
        if m and m.start() < best_pos:
            best, best_pos = label.name, m.start()
    return best


def generation_prompt(spec: TaskSpec, label: str, examples: Sequence[Example]) -> list[dict]:
    """Ask the teacher for one new input of the given label, showing a few seeds of that label."""
    lab = spec.label(label)
    what = f"{lab.word} ({lab.description})" if lab.description else lab.word
    shown = "\n".join(f"- {e.text}" for e in examples)
    content = (
        f"Task: {spec.description}\n"
        f"Here are examples labelled \"{what}\":\n{shown}\n\n"
        f"Write one new, different example labelled \"{lab.word}\". Reply with the example only, on one line."
    )
    return [{"role": "user", "content": content}]


def parse_generated_text(raw: str) -> str | None:
    """The first non-empty line without list markers or quotes; None when nothing usable is left."""
    for line in raw.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)]|example:|new example:)\s*", "", line.strip(), flags=re.I)
        line = line.strip().strip('"').strip("'").strip()
        if line:
            return line
    return None
