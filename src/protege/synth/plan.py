"""Every request of a generate stage, fixed before the first one is sent.

    plan = planned_requests(spec, cfg)   # [{"id", "prompt", "seed_ids", "conditioning"}, ...]

An id is a pure function of (label or "item", sample index) and the stage's seed decides what each id shows,
so a killed run, resumed, asks exactly the requests it had not finished and never one twice. Diversity comes
from rotating the seeds shown (a fresh sample per id), labels spread evenly, and optional topic and persona
conditioning (topics rotate with the index, personas are drawn per id).
"""
from __future__ import annotations

import random

from protege.config import GenerateConfig
from protege.tasks.spec import TaskSpec

# A whole item (passage + question + answer, a worked solution, code + tests) needs more room than one line.
# Reading-comprehension items carry their own passage, so they need the most.
DEFAULT_MAX_NEW_TOKENS = {"classification": 40, "qa": 96, "math": 256, "extraction": 80, "code": 384}
PASSAGE_QA_MAX_NEW_TOKENS = 320


def max_new_tokens(spec: TaskSpec, cfg: GenerateConfig) -> int:
    if cfg.max_new_tokens:
        return cfg.max_new_tokens
    if spec.kind == "qa" and any(s.context for s in spec.seed_examples()):
        return PASSAGE_QA_MAX_NEW_TOKENS
    return DEFAULT_MAX_NEW_TOKENS[spec.kind]


def stop_strings(spec: TaskSpec) -> list[str]:
    return ["\n"] if spec.kind == "classification" else []


def planned_requests(spec: TaskSpec, cfg: GenerateConfig) -> list[dict]:
    from protege.synth.teacher_formats import item_prompt
    from protege.tasks.prompts import generation_prompt

    seeds = spec.seed_examples()
    if spec.kind == "classification":
        groups = {label: [s for s in seeds if s.label == label] for label in spec.label_names}
    else:
        groups = {None: seeds}
    names = list(groups)
    requests = []
    for i in range(cfg.num_examples):
        label = names[i % len(names)]
        index = i // len(names)
        rng = random.Random(f"{cfg.seed}-{label or 'item'}-{index}")
        pool = groups[label]
        shown = rng.sample(pool, min(cfg.seeds_per_prompt, len(pool)))
        topic = cfg.topics[index % len(cfg.topics)] if cfg.topics else None
        persona = rng.choice(cfg.personas) if cfg.personas else None
        if label is None:
            prompt = item_prompt(spec, shown, topic, persona)
        else:
            prompt = generation_prompt(spec, label, shown, topic, persona)
        requests.append({"id": f"gen-{label}-{index}" if label else f"gen-{index}", "prompt": prompt,
                         "seed_ids": [s.id for s in shown],
                         "conditioning": {"label": label, "topic": topic, "persona": persona}})
    return requests
