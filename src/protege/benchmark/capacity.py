"""Capacity-match diagnostic, measured before training: how far a teacher's curated data is from the student.

    summary = run_capacity(cfg)    # cfg: a cell's run config; its curate stage must be complete

The student's mean per-token negative log-likelihood (nats) of the answer tokens of the teacher's curated
training rows, rendered exactly as SFT renders them (train/sft.py `build_examples`: prompt through the
student's chat template, answer = target + end of turn, truncated to train.max_seq_len) and scored as
`answer_loss` scores them, on the untouched student. Lower = the teacher writes closer to how the student
already would, which is one reason a student learns more from one teacher than another. The seeds that
training adds (train.include_seeds) are the same for every teacher, so they are left out of the measurement.

Each measurement is a run directory of its own, `runs/<task>/capacity-<key>/capacity.json` with a manifest,
keyed by the curate directory, the student and max_seq_len: a finished one is reused like any stage.
"""
from __future__ import annotations

import json

import torch

from protege.config import RunConfig
from protege.store import StageDir, atomic_write_json, content_key, read_json


def capacity_stage(cfg: RunConfig, curate: StageDir) -> StageDir:
    key = content_key({"upstream": curate.key, "student": cfg.train.student, "max_seq_len": cfg.train.max_seq_len})
    return StageDir(curate.path.parent.parent, curate.path.parent.name, "capacity", key)


@torch.no_grad()
def answer_nll(model, examples: list[dict], pad_id: int, batch_size: int = 8) -> tuple[float, int]:
    """(sum of answer-token NLL, number of answer tokens): answer_loss's computation, summed instead of averaged."""
    from protege.train.loop import collate

    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_id)
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        targets = batch["labels"][:, 1:]
        keep = targets != -100
        logits = model.lm_head(hidden[:, :-1][keep])
        total += float(torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum"))
        tokens += int(keep.sum())
    return total, tokens


def measure(spec, rows: list[dict], lm, max_seq_len: int) -> dict:
    from protege.train.sft import build_examples

    examples = build_examples(spec, rows, lm, max_seq_len)
    total, tokens = answer_nll(lm.model, examples, lm.tokenizer.pad_token_id)
    return {"nll_per_token": total / tokens if tokens else None, "tokens": tokens, "examples": len(examples)}


def run_capacity(cfg: RunConfig, progress: bool = False, echo=print) -> dict:
    """Measure (or reuse) the student's NLL on the curated data of this config's (task, teacher)."""
    from protege.models.resolve import load_lm
    from protege.pipeline import Pipeline

    pipe = Pipeline(cfg, progress=progress, echo=lambda m: None)
    curate = pipe.stages["curate"]
    if not curate.complete:
        raise RuntimeError(f"capacity diagnostic: the curate stage {curate.path} is not finished; run the data "
                           "phase first")
    stage = capacity_stage(cfg, curate)
    if stage.complete:
        return read_json(stage / "capacity.json")
    echo(f"[capacity] {cfg.train.student} on {curate.path}")
    stage.start({"task": cfg.task, "stage": "capacity", "student": cfg.train.student,
                 "max_seq_len": cfg.train.max_seq_len, "curate": str(curate.path)})
    rows = [json.loads(line) for line in (curate / "data" / "train.jsonl").read_text().splitlines()]
    lm = load_lm(cfg.train.student)
    if not hasattr(lm, "model"):
        raise RuntimeError(f"capacity diagnostic: {cfg.train.student} is not a local model (no weights to score with)")
    summary = {"student": cfg.train.student, "teacher": cfg.teacher_for("answers"), "curate": str(curate.path),
               **measure(pipe.spec, rows, lm, cfg.train.max_seq_len)}
    atomic_write_json(stage / "capacity.json", summary)
    stage.finish(summary)
    return summary
