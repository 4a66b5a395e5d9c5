"""Pieces the kinds share to ask for and read answers: the few-shot chat, the first line of a reply, the first
seeds as shots.

    messages = chat_with_shots(spec, instruction, render_input, shots, item)
"""
from __future__ import annotations

from typing import Callable, Sequence

from protege.tasks.spec import Example, TaskSpec


def chat_with_shots(spec: TaskSpec, instruction: str, render_input: Callable[[Example], str],
                    shots: Sequence[Example], item: Example) -> list[dict]:
    """The instruction heads the first user turn; each shot is a user turn and its target answer."""
    from protege.tasks.kinds.registry import kind_of

    messages = []
    for i, shot in enumerate(shots):
        content = render_input(shot)
        messages += [{"role": "user", "content": f"{instruction}\n\n{content}" if i == 0 else content},
                     {"role": "assistant", "content": kind_of(spec).target(spec, shot)}]
    content = render_input(item)
    messages.append({"role": "user", "content": f"{instruction}\n\n{content}" if not shots else content})
    return messages


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def first_seeds(spec: TaskSpec, shots: int) -> list[Example]:
    """The first `shots` seeds (the few-shot examples of every unlabelled kind)."""
    return spec.seed_examples()[:shots] if shots > 0 else []


def as_is(spec: TaskSpec, row: dict) -> tuple[dict, None]:
    """`read_row` of a kind whose data rows need no rewriting."""
    return row, None
