"""Classification evaluation of one model in one prompting mode, resumable per item.

    records = evaluate_classification(lm, spec, items, shots, log, scoring="likelihood")

`likelihood` scores every label's verbalizer after the prompt and picks the most likely (constrained);
`generate` lets the model write freely and parses the first label word (unparseable counts as wrong).
Each record carries the item id and hashes of prompt and target, plus time and tokens for cost columns.
"""
from __future__ import annotations

import time
from typing import Sequence

from tqdm.auto import tqdm

from protege.models.base import GenerationConfig
from protege.store import JsonlLog, text_hash
from protege.tasks.prompts import classification_prompt, parse_label
from protege.tasks.spec import Example, TaskSpec


def evaluate_classification(lm, spec: TaskSpec, items: Sequence[Example], shots: Sequence[Example], log: JsonlLog,
                            scoring: str = "likelihood", desc: str = "eval", progress: bool = True) -> list[dict]:
    done = log.ids()
    words = [l.word for l in spec.labels or []]
    pending = [it for it in items if it.id not in done]
    bar = tqdm(pending, desc=desc, disable=not progress, unit="item")
    buffer = []
    for item in bar:
        prompt = classification_prompt(spec, item.text, shots)
        rendered = lm.render(prompt)
        start = time.perf_counter()
        if scoring == "likelihood":
            scores = lm.score_continuations(prompt, words)
            pred = spec.label_names[max(range(len(scores)), key=scores.__getitem__)]
            tokens_out, raw = 0, None
        else:
            gen = lm.generate([prompt], GenerationConfig(max_new_tokens=8))[0]
            pred, tokens_out, raw = parse_label(spec, gen.text), gen.tokens_out, gen.text
        buffer.append({"id": item.id, "prompt_hash": text_hash(rendered), "target_hash": text_hash(item.label or ""),
                       "gold": item.label, "prediction": pred, "raw": raw, "correct": pred == item.label,
                       "seconds": time.perf_counter() - start, "tokens_in": lm.count_tokens(rendered),
                       "tokens_out": tokens_out})
        if len(buffer) >= 25:
            log.append(buffer)
            buffer = []
    log.append(buffer)
    by_id = {r["id"]: r for r in log.read()}
    return [by_id[it.id] for it in items]


def few_shot_examples(spec: TaskSpec, per_label: int) -> list[Example]:
    """Shots from the seeds only (never the test set), interleaved across labels in a fixed order."""
    seeds = spec.seed_examples()
    picked = []
    for k in range(per_label):
        for label in spec.label_names:
            of_label = [s for s in seeds if s.label == label]
            if k < len(of_label):
                picked.append(of_label[k])
    return picked
