"""Train stage: LoRA SFT of the student on curated examples, loss on the answer tokens only.

A plain PyTorch loop over PEFT's LoRA: AdamW, linear decay, bf16 autocast on CPUs with native bf16 (fp32 master
weights). Every `checkpoint_every` steps the adapter, optimiser, scheduler and position are saved, so a killed
run resumes where it stopped and follows the same loss curve; `train_log.jsonl` records every step.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm

from protege.config import TrainConfig
from protege.models.local import autocast_context
from protege.store import JsonlLog, StageDir, atomic_write_json
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


def collate(batch: list[dict], pad_id: int) -> dict:
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad_id)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[i, :n] = torch.tensor(b["input_ids"])
        labels[i, :n] = torch.tensor(b["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def answer_loss(model, input_ids, labels, attention_mask):
    """Mean cross-entropy over answer tokens, projecting to the vocabulary only where a label exists.

    Most positions are prompt (-100): skipping their 49k-way logits and log-softmax cuts a third of the
    step time for classification-length answers.
    """
    inner = model.get_base_model()
    hidden = inner.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = inner.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def epoch_order(n: int, epoch: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(f"{seed}-{epoch}").shuffle(order)
    return order


def run_train(spec: TaskSpec, cfg: TrainConfig, stage: StageDir, lm, rows: list[dict], progress: bool = True) -> dict:
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(cfg.seed)
    tok = lm.tokenizer
    examples = build_examples(spec, rows, lm, cfg.max_seq_len)
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    import copy

    model = get_peft_model(copy.deepcopy(lm.model), lora)  # the base model stays untouched for other stages
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    steps_per_epoch = (len(examples) + cfg.batch_size - 1) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs

    def lr_lambda(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "constant":
            return 1.0
        return max(0.0, (total - step) / max(1, total - cfg.warmup_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    ckpt = stage / "checkpoint"
    log = JsonlLog(stage / "train_log.jsonl")
    step = 0
    if (ckpt / "state.pt").exists():
        state = torch.load(ckpt / "state.pt", weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = state["step"]
        torch.set_rng_state(state["rng"])
    bar = tqdm(total=total, initial=step, desc=f"train LoRA ({lm.name})", disable=not progress, unit="step")
    while step < total:
        epoch, within = divmod(step, steps_per_epoch)
        order = epoch_order(len(examples), epoch, cfg.seed)
        idx = order[within * cfg.batch_size : (within + 1) * cfg.batch_size]
        batch = collate([examples[i] for i in idx], tok.pad_token_id)
        with autocast_context(lm.device):
            loss = answer_loss(model, **{k: v.to(lm.device) for k, v in batch.items()})
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        log.append([{"id": step, "step": step, "epoch": epoch, "loss": loss.item(), "lr": sched.get_last_lr()[0]}])
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % cfg.checkpoint_every == 0 and step < total:
            _save_checkpoint(ckpt, model, opt, sched, step, get_peft_model_state_dict)
    bar.close()
    model.save_pretrained(stage / "adapter")
    shutil.rmtree(ckpt, ignore_errors=True)
    losses = [r["loss"] for r in log.read()]
    return {"steps": total, "examples": len(examples), "first_loss": losses[0] if losses else None,
            "final_loss": sum(losses[-steps_per_epoch:]) / max(1, len(losses[-steps_per_epoch:]))}


def _save_checkpoint(ckpt: Path, model, opt, sched, step: int, get_state) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    tmp = ckpt / "state.pt.tmp"
    torch.save({"adapter": get_state(model), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "step": step, "rng": torch.get_rng_state()}, tmp)
    tmp.replace(ckpt / "state.pt")
    atomic_write_json(ckpt / "position.json", {"step": step})
