"""How the teacher is asked for new examples, and how its reply becomes one.

(Prompts for answering a task's items live in protege.tasks.kinds, one module per kind.)
"""
from __future__ import annotations

import re
from typing import Sequence

from protege.tasks.spec import Example, TaskSpec


def generation_prompt(spec: TaskSpec, label: str, examples: Sequence[Example], topic: str | None = None,
                      persona: str | None = None) -> list[dict]:
    """Ask the teacher for one new input of the given label, showing a few seeds of that label, optionally
    steered to a topic and written as a persona would."""
    lab = spec.label(label)
    what = f"{lab.word} ({lab.description})" if lab.description else lab.word
    shown = "\n".join(f"- {e.text}" for e in examples)
    steer = (f" It should be about {topic}." if topic else "") + (f" Write it as {persona} would." if persona else "")
    content = (
        f"Task: {spec.description}\n"
        f"Here are examples labelled \"{what}\":\n{shown}\n\n"
        f"Write one new, different example labelled \"{lab.word}\".{steer} "
        "Reply with the example only, on one line."
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
