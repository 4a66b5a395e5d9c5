"""Run configuration: one pydantic model per stage, loaded from YAML, overridden from the command line.

    cfg = load_config("configs/demo-trec6.yaml", ["train.epochs=2", "generate.num_examples=60"])

Unknown keys are rejected and every problem is reported at once, each naming its field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from protege.errors import ConfigError, pydantic_problems
from protege.models.resolve import DEFAULT_MODEL


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateConfig(Strict):
    teacher: str = DEFAULT_MODEL
    num_examples: int = 480  # spread evenly over the labels
    seeds_per_prompt: int = 4  # seeds shown in each request, rotated per request for diversity
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: Optional[int] = None  # None: 40 for a one-line classification input, more for whole items
    batch_size: int = 32  # requests per batch (local) and per append to samples.jsonl
    seed: int = 0
    # Diversity: each request is steered to one topic and/or written in one persona, rotated by request index.
    topics: list[str] = []
    personas: list[str] = []


class CurateConfig(Strict):
    min_chars: int = 10
    max_chars: int = 300
    dedup: bool = True
    decontaminate: bool = True  # drop items whose normalised text equals a test or validation item


class TrainConfig(Strict):
    student: str = DEFAULT_MODEL
    method: Literal["lora"] = "lora"
    lora_rank: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.0
    lr: float = 5e-5
    lr_schedule: Literal["linear", "constant"] = "linear"
    warmup_steps: int = 0
    epochs: int = 3
    batch_size: int = 8
    max_seq_len: int = 256
    include_seeds: bool = True
    checkpoint_every: int = 20  # steps between resumable checkpoints
    seed: int = 0


class ForgettingConfig(Strict):
    """A fixed general regression suite, measured on the student before and after training."""

    tasks: list[str] = ["gsm8k", "mbpp", "nq_open"]  # built-in names or spec paths; the target task is skipped
    items: int = 50  # the first N test items of each
    # Largest allowed drop, in points (0-100) of a task's headline metric: {gsm8k: 5}, or {gsm8k.number_match: 5}.
    # A drop beyond it marks the run failed and the command exits non-zero. Tasks not named are reported only.
    max_drop: dict[str, float] = {}


class EvalConfig(Strict):
    scoring: Literal["likelihood", "generate"] = "likelihood"  # classification: label likelihood or parse
    few_shot_per_label: int = 1  # shots drawn from the seeds (never from the test set); per label or in all
    max_test_items: Optional[int] = None  # None: the whole test set
    bootstrap_resamples: int = 1000
    evaluate_teacher: bool = True
    allow_code_execution: bool = False  # run generated code in the sandbox (code tasks, code in the suite)
    forgetting: ForgettingConfig = ForgettingConfig()


class CostConfig(Strict):
    """Prices for HTTP teachers, in money per million tokens (a local model costs time, not money).
    Not part of any stage key: changing a price never reruns anything."""

    price_in_per_m: float = 0.0
    price_out_per_m: float = 0.0
    budget: Optional[float] = None  # stop generation cleanly once this much money is spent (HTTP teachers)
    token_budget: Optional[int] = None  # or once this many tokens (in + out) are spent


class EndpointConfig(Strict):
    """How protege talks to an OpenAI-compatible teacher (`openai:<model>@<base_url>`). Not part of any stage
    key: these settings change how requests are sent, never what is asked."""

    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key (unset: no key sent)
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 6


class TeacherGateConfig(Strict):
    """Score the teacher on validation items (else the seeds) before generating; refuse below min_score.
    Not part of any stage key."""

    min_score: Optional[float] = None  # in points (0-100) of the task's headline metric; None: no gate
    items: int = 32
    shots: int = 1  # few-shot examples from the seeds (per label for classification), never the item itself
    force: bool = False  # generate anyway when the teacher scores below min_score


class RunConfig(Strict):
    task: str = "trec6"
    runs_dir: str = "runs"
    generate: GenerateConfig = GenerateConfig()
    curate: CurateConfig = CurateConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    cost: CostConfig = CostConfig()
    endpoint: EndpointConfig = EndpointConfig()
    teacher_gate: TeacherGateConfig = TeacherGateConfig()

    @model_validator(mode="after")
    def _cross_field(self):
        if self.generate.num_examples < 1:
            raise ValueError("generate.num_examples must be at least 1")
        if self.train.epochs < 1:
            raise ValueError("train.epochs must be at least 1")
        return self


def apply_override(raw: dict, override: str) -> None:
    """Apply `a.b.c=value` (value parsed as YAML, so numbers and booleans keep their types)."""
    if "=" not in override:
        raise ConfigError("command line", [f"{override!r}: overrides look like key.path=value"])
    key, value = override.split("=", 1)
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError("command line", [f"{key}: {part} is not a section"])
    node[parts[-1]] = yaml.safe_load(value)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    source = str(path) if path else "command line"
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(source, ["file not found; pass the path of a run config YAML (see configs/)"])
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(source, [f"not valid YAML: {e}"]) from None
        if not isinstance(raw, dict):
            raise ConfigError(source, ["(top level): a run config is a mapping of sections"])
    for o in overrides:
        apply_override(raw, o)
    try:
        return RunConfig(**raw)
    except ValidationError as e:
        raise ConfigError(source, pydantic_problems(e)) from None
