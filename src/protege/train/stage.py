"""Train stage: one method per run (train.method), each writing `adapter/` and `train_log.jsonl` into the stage.

    sft   LoRA SFT on the curated items' answers (train/sft.py)
    kd    the same tokens, with the teacher's logits too: (1 - alpha) CE + alpha T^2 KD (train/kd.py)
    dpo   the teacher's judged right vs wrong answers as preference pairs, then TRL's DPOTrainer (train/dpo.py)
    rl    GRPO against the task's own judge, stopped at a compute budget (train/rl.py)

The methods are listed in train/registry.py and share one signature (train/method.py). A method whose settings
say `start: sft` goes on from this run's SFT adapter, which the pipeline trains or reuses first and hands over.
Every method trains on the curated rows plus the seeds (train.include_seeds) and never sees the test set.
"""
from __future__ import annotations

from pathlib import Path

from protege.config import RunConfig
from protege.models.resolve import load_lm
from protege.store import StageDir
from protege.tasks.spec import TaskSpec
from protege.train.method import TrainJob
from protege.train.registry import method


def run_train_stage(spec: TaskSpec, cfg: RunConfig, stage: StageDir, rows: list[dict],
                    start_adapter: Path | None = None, progress: bool = True, echo=print) -> dict:
    job = TrainJob(spec, cfg, stage, load_lm(cfg.train.student), rows, start_adapter, progress, echo)
    return method(cfg.train.method).train(job)


def starts_from_sft(cfg: RunConfig) -> bool:
    """Whether train.method's own settings ask to go on from this run's SFT adapter (train.<method>.start)."""
    settings = getattr(cfg.train, cfg.train.method, None)
    return getattr(settings, "start", "base") == "sft"
