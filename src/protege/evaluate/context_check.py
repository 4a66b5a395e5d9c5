"""Refuse, before the first item runs, a test set whose prompts do not fit the model's context.

    check_context(lm, spec, items, shots, answer_tokens=kind.MAX_NEW_TOKENS)   # raises ConfigError

A causal LM given more positions than it was built for does not fail: its scores past the context are
meaningless, and a score computed on them would be reported as if it were the model's. So an item whose prompt
(with the shots and the chat template) plus the room the answer needs exceeds the model's context
(`max_position_embeddings`) stops the evaluation with the ids, their lengths and the ways out. Endpoints are
not checked here: the server knows its context and answers such a request with an error.
"""
from __future__ import annotations

from typing import Sequence

from protege.errors import ConfigError
from protege.models.base import prompt_text
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec


def model_context(lm) -> int | None:
    """The positions a local model was built for, or None where it cannot be read (endpoints)."""
    config = getattr(getattr(lm, "model", None), "config", None)
    context = getattr(config, "max_position_embeddings", None)
    return context if isinstance(context, int) and context > 0 else None


def check_context(lm, spec: TaskSpec, items: Sequence[Example], shots: Sequence[Example],
                  answer_tokens: int) -> None:
    context = model_context(lm)
    if context is None or not hasattr(lm, "count_tokens"):
        return
    kind = kind_of(spec)
    over = []
    for item in items:
        n = lm.count_tokens(prompt_text(lm, kind.prompt(spec, item, shots)))
        if n + answer_tokens > context:
            over.append((item.id, n))
    if not over:
        return
    listed = ", ".join(f"{item_id} ({n} tokens)" for item_id, n in over[:5]) + (", ..." if len(over) > 5 else "")
    fixes = ["evaluate a model with a longer context"]
    if shots:
        fixes.append(f"use fewer shots (now {len(shots)})")
    fixes.append("or leave those items out of the test set (the task spec's test.rows / skip_rows) and say so "
                 "beside the score")
    raise ConfigError(f"task {spec.name}, test set", [
        f"{len(over)} of {len(items)} test prompts do not fit {getattr(lm, 'name', 'the model')}'s context of "
        f"{context} tokens with {answer_tokens} for the answer: {listed}. A score on them would not be the "
        f"model's; {'; '.join(fixes)}"])
