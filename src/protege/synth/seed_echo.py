"""Seed echo: how many generated items repeat a seed's passage or input word for word.

A teacher shown seeds in its prompt may copy them instead of writing new items: the Qwen2.5-Coder 0.5B, asked for
SQuAD 2.0 items, reused one of two seed passages in 409 of 448 well-formed items (bench real-teachers, session 32),
and curation then dropped nearly all of them as duplicates or contamination. The curate stage counts this and,
when it is common, says what to change, so a user sees the cause and not only a small yield:

    echo = seed_echo(spec, generated)   # {"field": "context", "items": 448, "copies": 409, "seeds": 2, ...}
    echo["notice"]                      # present when at least ECHO_SHARE of the items copy a seed

Tests: tests/test_seed_echo.py.
"""
from __future__ import annotations

from protege.tasks.spec import TaskSpec
from protege.tasks.text import normalise

ECHO_SHARE = 0.25  # a quarter of the items copying a seed is a prompt problem, not chance
FIELDS = {"context": "passage", "text": "input"}


def seed_echo(spec: TaskSpec, generated: list[dict]) -> dict | None:
    """The field (passage or input) that generated items copy from the seeds most often, with the counts; a
    "notice" saying what to change when at least ECHO_SHARE of the items that have that field copy one. None when
    no item repeats a seed."""
    seeds = spec.seed_examples()
    worst = None
    for field, label in FIELDS.items():
        seen = {normalise(getattr(s, field, None)) for s in seeds} - {""}
        values = [normalise(r.get(field)) for r in generated if r.get("ok", True)]
        values = [v for v in values if v]
        copied = [v for v in values if v in seen]
        if copied and (worst is None or len(copied) / len(values) > worst["copies"] / worst["items"]):
            worst = {"field": field, "label": label, "items": len(values), "copies": len(copied),
                     "seeds": len(set(copied))}
    if worst is None:
        return None
    if worst["copies"] >= ECHO_SHARE * worst["items"]:
        n_seeds = f"{worst['seeds']} seed{'s' * (worst['seeds'] != 1)}"
        worst["notice"] = (
            f"{worst['copies']} of {worst['items']} generated items repeat the {worst['label']} of one of "
            f"{n_seeds} word for word: the teacher copies what its prompt shows instead of writing new ones, and "
            "curation drops such copies as duplicates or contamination. Give the task seeds from several sources "
            "(the spec's seeds), or set generate.topics so that each item asks for a new subject.")
    return worst
