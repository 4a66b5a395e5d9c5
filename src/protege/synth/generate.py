"""Generate stage: the teacher writes labelled examples from the seeds, appended to samples.jsonl.

Every request has a deterministic id (`gen-<label>-<index>`), so a killed run resumes by generating only the
ids not yet in the file. Output the teacher mangles is kept with its raw text and `ok: false`, and counted.
"""
from __future__ import annotations

import random
from collections import Counter

from protege.config import GenerateConfig
from protege.models.base import GenerationConfig
from protege.store import JsonlLog, StageDir, text_hash
from protege.tasks.prompts import generation_prompt, parse_generated_text
from protege.tasks.spec import TaskSpec


def planned_requests(spec: TaskSpec, cfg: GenerateConfig) -> list[dict]:
    """All requests of this stage: id, label and the seeds shown, spread evenly over labels."""
    if spec.kind != "classification":
        raise NotImplementedError(f"task {spec.name}: generation for kind {spec.kind!r} is not built yet")
    seeds = spec.seed_examples()
    by_label = {l: [s for s in seeds if s.label == l] for l in spec.label_names}
    labels = spec.label_names
    requests = []
    for i in range(cfg.num_examples):
        label = labels[i % len(labels)]
        index = i // len(labels)
        pool = by_label[label]
        rng = random.Random(f"{cfg.seed}-{label}-{index}")
        shown = rng.sample(pool, min(cfg.seeds_per_prompt, len(pool)))
        requests.append({"id": f"gen-{label}-{index}", "label": label, "seed_ids": [s.id for s in shown],
                         "prompt": generation_prompt(spec, label, shown)})
    return requests


def run_generate(spec: TaskSpec, cfg: GenerateConfig, stage: StageDir, lm, progress: bool = True) -> dict:
    log = JsonlLog(stage / "samples.jsonl")
    done = log.ids()
    todo = [r for r in planned_requests(spec, cfg) if r["id"] not in done]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"generate ({lm.name})", disable=not progress, unit="example")
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start : start + cfg.batch_size]
        outs = lm.generate([r["prompt"] for r in batch], decoding_config(cfg, batch[0]["id"]))
        records = []
        for req, out in zip(batch, outs):
            text = parse_generated_text(out.text)
            records.append({"id": req["id"], "label": req["label"], "text": text, "raw": out.text,
                            "ok": text is not None, "seed_ids": req["seed_ids"], "teacher": lm.name,
                            "tokens_in": out.tokens_in, "tokens_out": out.tokens_out})
        log.append(records)
        bar.update(len(batch))
    bar.close()
    records = log.read()
    return {"records": len(records), "malformed": sum(not r["ok"] for r in records),
            "per_label": dict(Counter(r["label"] for r in records)),
            "tokens_out": sum(r["tokens_out"] for r in records)}


def decoding_config(cfg: GenerateConfig, first_id: str) -> GenerationConfig:
    """Decoding settings of the batch starting with request `first_id`: seeded from that id, so a resumed run
    samples exactly as an unbroken one would (and a dry-run calibration reproduces the first batch)."""
    return GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                            seed=cfg.seed + hash_id(first_id), stop=["\n"])


def hash_id(text: str) -> int:
    """A stable 32-bit integer from a request id (the first 8 hex digits of its sha256)."""
    return int(text_hash(text)[:8], 16)
