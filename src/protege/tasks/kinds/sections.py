"""The labelled-section format in which the teacher writes whole new items (every kind but classification).

    messages = item_request(spec, ["Question", "Answer"], "a factual question and its short answer", show,
                            shown_seeds, topic="sport", persona="a nurse")
    got = sections(teacher_reply, ["Question", "Answer"])    # {"question": "...", "answer": "..."}
    need(got, "Answer")                                      # the value, or raises Missing("no 'Answer:' section")

The teacher sees each seed in the kind's section format (Passage/Question/Answer, Problem/Solution/Final
answer, Message/Slots, Problem/Solution/Tests) and answers in the same format; a kind's `read_generated` turns
a `Missing` into (None, reason) so the generate stage records it with the raw text instead of crashing.
"""
from __future__ import annotations

import re
from typing import Callable, Optional, Sequence

from protege.tasks.spec import Example, TaskSpec


class Missing(ValueError):
    """A teacher reply lacks a section, or a section is unusable; the message says which."""


def item_request(spec: TaskSpec, headers: Sequence[str], what: str, show: Callable[[Example], str],
                 shown: Sequence[Example], topic: Optional[str] = None, persona: Optional[str] = None) -> list[dict]:
    """Ask the teacher for one new item in the section format.

    The seeds are earlier assistant turns answering the same request, so even a small instruct model
    continues the pattern instead of chatting about it; the last request carries the topic and persona.
    """
    ask = (f"Task: {spec.description}\nWrite one new example: {what}. "
           f"Use exactly this format ({', '.join(h + ':' for h in headers)}) and nothing else.")
    again = "Write another new example, different from the ones before, in the same format."
    messages: list[dict] = []
    for i, example in enumerate(shown):
        messages += [{"role": "user", "content": ask if i == 0 else again},
                     {"role": "assistant", "content": show(example)}]
    steer = (f" It should be about {topic}." if topic else "") + (f" Write it as {persona} would." if persona else "")
    messages.append({"role": "user", "content": (again if shown else ask) + steer})
    return messages


def sections(raw: str, names: Sequence[str]) -> dict[str, str]:
    """`Name: value` sections (values may span lines) keyed by lower-case name; markdown bold tolerated."""
    pattern = re.compile(r"^[ \t]*\**(%s)\**[ \t]*:\**[ \t]*" % "|".join(re.escape(n) for n in names), re.I | re.M)
    marks = list(pattern.finditer(raw))
    found: dict[str, str] = {}
    for mark, nxt in zip(marks, marks[1:] + [None]):
        name = mark.group(1).lower()
        if name not in found:  # a teacher that runs on into a second example keeps only its first
            found[name] = raw[mark.end() : nxt.start() if nxt else len(raw)].strip()
    return found


def need(got: dict, name: str) -> str:
    value = got.get(name.lower(), "").strip()
    if not value:
        raise Missing(f"no '{name}:' section")
    return value


def read_sections(raw: str, headers: Sequence[str],
                  read: Callable[[dict], dict]) -> tuple[Optional[dict], Optional[str]]:
    """`read(sections)` as (fields, None), or (None, why) when it raises Missing."""
    try:
        return read(sections(raw, headers)), None
    except Missing as e:
        return None, str(e)
