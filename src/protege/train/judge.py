"""Judge model answers against their items: one number in [0, 1] per answer, for preference pairs and RL rewards.

    scores = judge(spec, items, raw_outputs)                            # classification, qa, math, extraction
    scores = judge(spec, items, raw_outputs, allow_code_execution=True)  # code: runs each answer's tests

Each raw output is parsed and scored by its kind exactly as evaluation does (`kind.score_items`), then reduced
to the task's headline metric (`spec.headline_metric`) for one item by the kind's `item_score`:

    classification  1 if the parsed label is the gold label (macro_f1 has no per-item form: accuracy stands in)
    math            number_match: the final number equals the gold number
    qa              the headline metric, f1 by default (SQuAD token F1, partial credit), exact_match if the spec
                    names it; an unanswerable item scores 1 only for an empty (unanswerable) answer
    extraction      slot F1 of the item, 2tp / (2tp + fp + fn); 1 when there is nothing to find and nothing found
    code            pass@1: the answer passes the item's tests in the sandbox; refused without the opt-in
"""
from __future__ import annotations

from typing import Sequence

from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec


def judge(spec: TaskSpec, items: Sequence[Example], raw_outputs: Sequence[str],
          allow_code_execution: bool = False) -> list[float]:
    """The headline score in [0, 1] of each raw model output for its item (outputs follow `items`)."""
    if len(items) != len(raw_outputs):
        raise ValueError(f"judge: {len(items)} items but {len(raw_outputs)} outputs; pass one output per item")
    kind = kind_of(spec)
    if kind.EXECUTES_CODE and not allow_code_execution:
        from protege.scoring.sandbox import CodeExecutionNotAllowed

        raise CodeExecutionNotAllowed()
    if not items:
        return []
    predictions = [kind.parse(spec, text) for text in raw_outputs]
    scores = kind.score_items(spec, items, predictions, allow_code_execution)
    return [kind.item_score(spec.headline_metric, {"gold": it.label, "prediction": p, **s})
            for it, p, s in zip(items, predictions, scores)]
