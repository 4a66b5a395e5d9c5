"""Load the generate stage's teacher: a local model, or an OpenAI-compatible endpoint with the run's limits.

An HTTP teacher gets the endpoint section's settings and whatever is left of the cost budget after the
records already in samples.jsonl (a resumed run does not get its budget back).
"""
from __future__ import annotations

from protege.config import RunConfig, TeacherRole
from protege.store import SAMPLES, JsonlLog, StageDir


def spent_so_far(cfg: RunConfig, stage: StageDir) -> tuple[int, float]:
    """(tokens, money) already spent by the records in this stage's samples.jsonl."""
    records = JsonlLog(stage / SAMPLES).read()
    tokens_in = sum(r.get("tokens_in", 0) for r in records)
    tokens_out = sum(r.get("tokens_out", 0) for r in records)
    money = tokens_in / 1e6 * cfg.cost.price_in_per_m + tokens_out / 1e6 * cfg.cost.price_out_per_m
    return tokens_in + tokens_out, money


def load_teacher(cfg: RunConfig, stage: StageDir, role: TeacherRole = "items"):
    """The teacher of `role` (RunConfig.teacher_for); an endpoint gets what is left of the run's budget."""
    from protege.models.resolve import load_lm

    name = cfg.teacher_for(role)
    if not name.startswith("openai:"):
        return load_lm(name, batch_size=cfg.generate.batch_size, quantize=cfg.generate.quantize)
    tokens, money = spent_so_far(cfg, stage)
    c = cfg.cost
    # EndpointConfig's fields are OpenAILM's keyword arguments of the same names.
    return load_lm(name, **cfg.endpoint.model_dump(), price_in_per_m=c.price_in_per_m,
                   price_out_per_m=c.price_out_per_m, budget=None if c.budget is None else max(0.0, c.budget - money),
                   token_budget=None if c.token_budget is None else max(0, c.token_budget - tokens))
