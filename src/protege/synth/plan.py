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
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec


def max_new_tokens(spec: TaskSpec, cfg: GenerateConfig) -> int:
    """generate.max_new_tokens, else the kind's room for one new item."""
    return cfg.max_new_tokens or kind_of(spec).generation_max_new_tokens(spec)


def stop_strings(spec: TaskSpec) -> list[str]:
    """Labelled kinds ask for one line; a whole item spans several."""
    return ["\n"] if kind_of(spec).LABELLED else []


def planned_requests(spec: TaskSpec, cfg: GenerateConfig) -> list[dict]:
    kind = kind_of(spec)
    groups = kind.generation_groups(spec, spec.seed_examples())
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
        prompt = kind.generation_prompt(spec, label, shown, topic, persona)
        requests.append({"id": f"gen-{label}-{index}" if label else f"gen-{index}", "prompt": prompt,
                         "seed_ids": [s.id for s in shown],
                         "conditioning": {"label": label, "topic": topic, "persona": persona}})
    return requests
