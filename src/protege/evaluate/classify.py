"""Classification evaluation of one model in one prompting mode, resumable per item.

    records = evaluate_classification(lm, spec, items, shots, log, scoring="likelihood")

`likelihood` scores every label's verbalizer after the prompt and picks the most likely (constrained);
`generate` lets the model write freely and parses the first label word (unparseable counts as wrong).
Each record carries the item id and hashes of prompt and target, plus time and tokens for cost columns.
"""
from __future__ import annotations

import time
from typing import Sequence

from protege.evaluate.resumable import evaluate_in_chunks
from protege.models.base import GenerationConfig, prompt_text
from protege.store import JsonlLog, text_hash
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec


def evaluate_classification(lm, spec: TaskSpec, items: Sequence[Example], shots: Sequence[Example], log: JsonlLog,
                            scoring: str = "likelihood", desc: str = "eval", progress: bool = True,
                            chunk: int = 8) -> list[dict]:
    words = [l.word for l in spec.labels or []]
    kind = kind_of(spec)

    def score_chunk(batch: list[Example]) -> list[dict]:
        prompts = [kind.prompt(spec, it, shots) for it in batch]
        rendered = [prompt_text(lm, p) for p in prompts]
        began = time.perf_counter()
        if scoring == "likelihood":
            scores = lm.score_many(prompts, words)
            preds = [spec.label_names[max(range(len(s)), key=s.__getitem__)] for s in scores]
            raws, outs = [None] * len(batch), [0] * len(batch)
            ins = None  # counted below, outside the timed pass
        else:
            gens = lm.generate(prompts, GenerationConfig(max_new_tokens=8))
            preds = [kind.parse(spec, g.text) for g in gens]
            raws, outs = [g.text for g in gens], [g.tokens_out for g in gens]
            ins = [g.tokens_in for g in gens]  # as the model counted them (a remote one's usage)
        per_item = (time.perf_counter() - began) / len(batch)  # items in a chunk share one batched pass
        if ins is None:
            ins = [lm.count_tokens(text) for text in rendered]
        records = []
        for item, text, pred, raw, tokens_out, tokens_in in zip(batch, rendered, preds, raws, outs, ins):
            records.append({"id": item.id, "prompt_hash": text_hash(text),
                            "target_hash": text_hash(item.label or ""), "gold": item.label, "prediction": pred,
                            "raw": raw, "correct": pred == item.label, "seconds": per_item,
                            "tokens_in": tokens_in, "tokens_out": tokens_out})
        return records

    return evaluate_in_chunks(items, log, chunk, score_chunk, desc=desc, progress=progress)

