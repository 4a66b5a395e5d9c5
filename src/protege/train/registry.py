"""The training methods, by the name `train.method` takes. Adding one: a module with a class that meets
train/method.py's TrainMethod (`name`, `train(job) -> summary`) and its settings section in config.py if it has
settings, plus one line here. Everything that lists methods (the config's choices, the bench's, the CLI's help)
reads this table.

The table names each class by "module:Class" and imports it only when the method runs, so config.py can read
the names without importing torch or TRL.
"""
from __future__ import annotations

import importlib

METHODS: dict[str, tuple[str, str]] = {
    # name: (the class, what it learns from; the CLI's help)
    "sft": ("protege.train.sft:SFT", "the teacher's text"),
    "kd": ("protege.train.kd:KD", "the teacher's logits too (train.kd)"),
    "dpo": ("protege.train.dpo:DPO", "the teacher's right vs wrong answers (train.dpo)"),
    "rl": ("protege.train.rl:RL", "GRPO on the task's own judge at a compute budget (train.rl)"),
    "onpolicy": ("protege.train.onpolicy:OnPolicy",
                 "the teacher's logits on the student's own samples (train.onpolicy)"),
}


def method(name: str):
    """The TrainMethod registered as `name`."""
    if name not in METHODS:
        raise ValueError(f"train.method: {name!r} is not a training method; choose one of {', '.join(METHODS)}")
    module, _, cls = METHODS[name][0].partition(":")
    return getattr(importlib.import_module(module), cls)()


def help_text() -> str:
    return "; ".join(f"{name}: {about}" for name, (_, about) in METHODS.items())
