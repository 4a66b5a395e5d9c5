"""Generate-then-score evaluation of one model in one prompting mode, for every kind; resumable per item.

    records = evaluate_generative(lm, spec, items, shots, log, allow_code_execution=True)

Greedy decoding, the kind's own prompt, parser and scorer (protege.tasks.kinds). Code answers run in the
sandbox (scoring/sandbox), which refuses unless `allow_code_execution` is set. Each record carries the item id,
hashes of prompt and target, the raw output, the parsed prediction, per-item scores, time and tokens.
"""
from __future__ import annotations

import time
from typing import Sequence

from protege.evaluate.resumable import evaluate_in_chunks
from protege.models.base import GenerationConfig, prompt_text
from protege.store import JsonlLog, text_hash
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec


def evaluate_generative(lm, spec: TaskSpec, items: Sequence[Example], shots: Sequence[Example], log: JsonlLog,
                        desc: str = "eval", progress: bool = True, chunk: int = 32,
                        allow_code_execution: bool = False, max_new_tokens: int | None = None) -> list[dict]:
    kind = kind_of(spec)
    if kind.EXECUTES_CODE and not allow_code_execution:
        from protege.scoring.sandbox import CodeExecutionNotAllowed

        raise CodeExecutionNotAllowed()
    config = GenerationConfig(max_new_tokens=max_new_tokens or kind.MAX_NEW_TOKENS, temperature=0.0,
                              stop=list(kind.STOP), stop_pattern=kind.STOP_PATTERN)

    def score_chunk(batch: list[Example]) -> list[dict]:
        prompts = [kind.prompt(spec, it, shots) for it in batch]
        began = time.perf_counter()
        gens = lm.generate(prompts, config)
        per_item = (time.perf_counter() - began) / len(batch)  # items in a chunk share batched passes
        preds = [kind.parse(spec, g.text) for g in gens]
        scores = score_items(spec, batch, preds, allow_code_execution=True)
        records = []
        for item, prompt, gen, pred, item_scores in zip(batch, prompts, gens, preds, scores):
            rendered = prompt_text(lm, prompt)
            records.append({"id": item.id, "prompt_hash": text_hash(rendered),
                            "target_hash": text_hash(kind.target(spec, item)), "gold": _gold(item), "raw": gen.text,
                            "prediction": pred, **item_scores, "seconds": per_item,
                            "tokens_in": gen.tokens_in, "tokens_out": gen.tokens_out})
        return records

    return evaluate_in_chunks(items, log, chunk, score_chunk, desc=desc, progress=progress)


def score_items(spec: TaskSpec, items: Sequence[Example], predictions: list, allow_code_execution: bool) -> list[dict]:
    """Per-item scores of parsed predictions; code runs in the sandbox (in parallel), which needs the opt-in."""
    return kind_of(spec).score_items(spec, items, predictions, allow_code_execution)


def _gold(item: Example):
    """What the record shows as the reference (code items are judged by their tests, not shown here)."""
    if item.label is not None:
        return item.label
    if item.answers is not None:
        return item.answers
    return item.spans
