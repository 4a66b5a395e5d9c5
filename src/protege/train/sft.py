"""Train stage: LoRA SFT of the student on curated examples, loss on the answer tokens only.

The resumable LoRA loop lives in train/loop.py; this file says how examples are tokenised and what the loss is.
"""
from __future__ import annotations

import torch

from protege.config import TrainConfig
from protege.store import StageDir
from protege.train.loop import train_lora
from protege.train.micro_batch import answer_mean_in_parts
from protege.train.shared_prefix import body_hidden
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec


def build_examples(spec: TaskSpec, rows: list[dict], lm, max_len: int) -> list[dict]:
    """Tokenise prompt + answer exactly as evaluation renders and scores them; labels are -100 on the prompt."""
    tok = lm.tokenizer
    kind = kind_of(spec)
    out = []
    for row in rows:
        example = Example(**{k: v for k, v in row.items() if k in Example.model_fields})
        prompt = kind.prompt(spec, example)
        prefix = lm.render(prompt)
        answer = kind.target(spec, example) + lm.end_of_turn(prompt)
        p_ids = tok(prefix, add_special_tokens=False)["input_ids"]
        a_ids = tok(prefix + answer, add_special_tokens=False)["input_ids"][len(p_ids):]
        ids = (p_ids + a_ids)[-max_len:]
        labels = ([-100] * len(p_ids) + a_ids)[-max_len:]
        out.append({"input_ids": ids, "labels": labels})
    return out


def answer_loss(model, input_ids, labels, attention_mask):
    """Mean cross-entropy over answer tokens, projecting to the vocabulary only where a label exists.

    Most positions are prompt (-100): skipping their 49k-way logits and log-softmax cuts a third of the
    step time for classification-length answers. The batch's common prompt opening runs once
    (train/shared_prefix.py).
    """
    inner = model.get_base_model()
    hidden = body_hidden(inner, input_ids, attention_mask)
    targets = labels[:, 1:]
    keep = targets != -100
    logits = inner.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def run_train(spec: TaskSpec, cfg: TrainConfig, stage: StageDir, lm, rows: list[dict], progress: bool = True) -> dict:
    examples = build_examples(spec, rows, lm, cfg.max_seq_len)

    def loss_fn(model, batch, indices):
        return answer_loss(model, **batch), {}

    return train_lora(cfg, stage, lm, examples, answer_mean_in_parts(loss_fn, cfg.micro_batch_tokens),
                      desc="train LoRA SFT", progress=progress)


class SFT:
    """train.method=sft: LoRA on the curated items' answers, the teacher's text."""

    name = "sft"

    def train(self, job) -> dict:
        return {"method": "sft", **run_train(job.spec, job.cfg.train, job.stage, job.student, job.rows,
                                             progress=job.progress)}
