"""Judge model answers against their items: one number in [0, 1] per answer, for preference pairs and RL rewards.

    scores = judge(spec, items, raw_outputs)                            # classification, qa, math, extraction
    scores = judge(spec, items, raw_outputs, allow_code_execution=True)  # code: runs each answer's tests

Each raw output is parsed and scored by its kind exactly as evaluation does (`score_items`), then reduced to the
task's headline metric (`spec.headline_metric`) for one item:

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
    from protege.evaluate.generative import score_items

    if len(items) != len(raw_outputs):
        raise ValueError(f"judge: {len(items)} items but {len(raw_outputs)} outputs; pass one output per item")
    if spec.kind == "code" and not allow_code_execution:
        from protege.evaluate.sandbox import CodeExecutionNotAllowed

        raise CodeExecutionNotAllowed()
    if not items:
        return []
    kind = kind_of(spec)
    predictions = [kind.parse(spec, text) for text in raw_outputs]
    scores = score_items(spec, items, predictions, allow_code_execution=allow_code_execution)
    return [item_score(spec, s) for s in scores]


def item_score(spec: TaskSpec, scores: dict) -> float:
    """One item's kind scores (as `kind.score` returns them) reduced to its headline metric."""
    metric = spec.headline_metric
    if spec.kind == "classification":
        return float(scores["accuracy"])
    if spec.kind == "extraction":
        tp, fp, fn = scores["tp"], scores["fp"], scores["fn"]
        return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return float(scores[metric])  # math: number_match; qa: f1 or exact_match; code: pass@1
