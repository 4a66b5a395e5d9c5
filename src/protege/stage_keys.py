"""What a stage key holds of a settings model: its fields, nested ones included, less the settings added after runs
already existed while they hold the value that reproduces those runs (so those runs keep their keys and are reused).

    key_dump(cfg.train.onpolicy)   # {"teacher": ..., "beta": 0.5, ...}, micro_batch_tokens left out while None

A new setting that changes what a stage computes gets its old behaviour's value here.
"""
from __future__ import annotations

from pydantic import BaseModel

# Settings added after runs already existed, each with the value that reproduces those runs. A setting that
# holds that value stays out of its stage's key, so the runs made before it keep their keys and are reused.
LATER_SETTINGS: dict[str, object] = {
    "GenerateConfig.quantize": None,
    "GenerateConfig.prompts_from": None,
    "GenerateConfig.precision": None,
    "CurateConfig.decontaminate_against": [],
    "TrainConfig.max_examples": None,
    "TrainConfig.micro_batch_tokens": None,
    "KDConfig.cross_tokenizer": "auto",
    "KDConfig.align": "start",
    "OnPolicyConfig.align": "start",
    "OnPolicyConfig.micro_batch_tokens": None,
    "CooperativeConfig.answer_instruction": None,
    "CooperativeConfig.handoff": "word",
    "DPOConfig.start": "base",
    "RLConfig.start": "base",
    "RLConfig.micro_batch_rows": None,
    "EvalConfig.teacher_shots": None,
}
_ABSENT = object()


def key_dump(model: BaseModel, exclude: set[str] | frozenset[str] = frozenset()) -> dict:
    """`model.model_dump(exclude=exclude)` for a stage key: nested settings included, and the LATER_SETTINGS
    that hold their old value left out."""
    out = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name in exclude or LATER_SETTINGS.get(f"{type(model).__name__}.{name}", _ABSENT) == value:
            continue
        out[name] = key_dump(value) if isinstance(value, BaseModel) else model.model_dump(include={name})[name]
    return out
