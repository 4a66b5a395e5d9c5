"""The resumable LoRA training loop shared by every token-level objective (SFT, KD).

    summary = train_lora(cfg, stage, lm, examples, loss_fn, desc="train LoRA")

`loss_fn(model, batch, indices)` returns (loss, parts): `batch` is the collated tensors on the model's device,
`indices` the example indices in the batch (so an objective can look up per-example data such as cached teacher
logits), `parts` a dict of floats logged beside the loss; a loss_fn that ran the backward itself returns
`Backpropagated(value)` as its loss. A loss that is a mean over other positions than the batch's answer tokens
(on-policy KD's sampled answers, aligned pairs across tokenizers) says how many in `parts[AVERAGED_OVER]`: several
processes weight their gradients by it (not logged); a loss whose terms average over different positions divides
each by its count over every process itself and says so with `parts[SHARE_OF_MEAN]`. AdamW, linear decay, bf16
autocast on CPUs with native bf16 (fp32 master weights). Every `checkpoint_every` steps, and after any step that
ends 10 minutes after the last checkpoint, the adapter, optimiser, scheduler, RNG and position are saved, so a
killed run resumes where it stopped and follows the same loss curve; `train_log.jsonl` records every step.
"""
from __future__ import annotations

import copy
import json
import random
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from tqdm.auto import tqdm

from protege.config import TrainConfig
from protege.store import TRAIN_LOG, JsonlLog, StageDir, atomic_torch_save, atomic_write_json, atomic_write_text
from protege.train.distributed import barrier, from_main, process_group, sum_gradients
from protege.train.distributed import total as total_over_processes

LossFn = Callable[[object, dict, list], tuple]
# A checkpoint also once this much wall time has passed since the last one: a run of slow steps (on-policy KD of
# a 0.5B student on two CPU cores: about 10 minutes a step, 6 steps in all) otherwise never reaches
# checkpoint_every, and a kill loses all of it. Saving changes nothing the run computes.
CHECKPOINT_SECONDS = 600.0
# The `parts` key by which a loss_fn gives the number of positions its loss averages over (see the docstring).
AVERAGED_OVER = "averaged_over"
# The `parts` key of a loss_fn whose loss already divides by counts summed over every process (a mean of several
# terms over different positions, such as CE and KD across tokenizers): its gradients are summed unweighted.
SHARE_OF_MEAN = "share_of_mean"


class Backpropagated(float):
    """A step's loss whose backward `loss_fn` ran itself, in parts (train/onpolicy.py's micro-batches, to bound
    memory): the loop steps on the gradients it left and logs the value."""


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


def epoch_order(n: int, epoch: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(f"{seed}-{epoch}").shuffle(order)
    return order


def train_lora(cfg: TrainConfig, stage: StageDir, lm, examples: list[dict], loss_fn: LossFn,
               desc: str = "train LoRA", progress: bool = True,
               stop: Optional[Callable[[], Optional[str]]] = None) -> dict:
    """Train a LoRA adapter over `examples` for cfg.epochs; `stop()`, asked after every step, ends training
    early when it returns a reason (a compute budget spent); the summary then says `stopped_by`."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
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
    log = JsonlLog(stage / TRAIN_LOG)
    step = 0
    if (ckpt / "state.pt").exists():
        state = torch.load(ckpt / "state.pt", weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = state["step"]
        torch.set_rng_state(state["rng"])
    rank, world = process_group()  # several processes: each takes its share of every batch (distributed.py)
    main = rank == 0
    if main:
        rewind_log(log, step)
    barrier()  # every process reads the rewound log (on-policy KD carries its budget on from it)
    if world > cfg.batch_size:
        raise ValueError(f"train.batch_size {cfg.batch_size} is smaller than the {world} processes; each needs at "
                         "least one example of every batch: raise train.batch_size or use fewer processes")
    began = saved = time.perf_counter()
    bar = tqdm(total=total, initial=step, desc=f"{desc} ({lm.name})", disable=not progress or not main,
               unit="step")
    board = tensorboard_writer(stage, cfg.report_to) if main else None
    stopped_by = None
    while step < total and stopped_by is None:
        epoch, within = divmod(step, steps_per_epoch)
        idx = epoch_order(len(examples), epoch, cfg.seed)[within * cfg.batch_size: (within + 1) * cfg.batch_size]
        idx = idx[rank::world]
        batch = collate([examples[i] for i in idx], lm.tokenizer.pad_token_id)
        with lm.autocast():
            loss, parts = loss_fn(model, {k: v.to(lm.device) for k, v in batch.items()}, idx)
        counted, shared = parts.pop(AVERAGED_OVER, None), parts.pop(SHARE_OF_MEAN, False)
        if world > 1:  # weight by this share of the positions averaged: summed gradients = the batch's mean
            tokens = int((batch["labels"][:, 1:] != -100).sum()) if counted is None else int(counted)
            weight = 1.0 if shared else tokens / max(1.0, total_over_processes(tokens))
            if isinstance(loss, Backpropagated):
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(weight)
            else:
                (loss * weight).backward()
            sum_gradients(params)
            loss_value = total_over_processes(float(loss) * weight)
        elif isinstance(loss, Backpropagated):
            loss_value = float(loss)
        else:
            loss.backward()
            loss_value = loss.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        record = {"id": step, "step": step, "epoch": epoch, "loss": loss_value, **parts, "lr": sched.get_last_lr()[0]}
        if main:
            log.append([record])
        if board is not None:
            for name, value in record.items():
                if name not in ("id", "step") and isinstance(value, (int, float)) and value == value:
                    board.add_scalar(f"train/{name}", value, step)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3f}")
        stopped_by = from_main(stop()) if stop is not None else None  # every process stops at one step
        due = step % cfg.checkpoint_every == 0 or time.perf_counter() - saved >= CHECKPOINT_SECONDS
        if due and step < total and stopped_by is None and main:
            _save_checkpoint(ckpt, model, opt, sched, step, get_peft_model_state_dict)
            saved = time.perf_counter()
    bar.close()
    if board is not None:
        board.close()
    if main:
        model.save_pretrained(stage / "adapter")
        shutil.rmtree(ckpt, ignore_errors=True)
    barrier()
    losses = [r["loss"] for r in log.read()]
    summary = {"steps": step, "examples": len(examples), "seconds": time.perf_counter() - began,  # of this call
               # every prompt + answer token goes through forward and backward once per epoch (as train/rl.py
               # counts); a method whose steps cost otherwise reports its own count
               "tokens": {"total": sum(len(e["input_ids"]) for e in examples) * cfg.epochs},
               "first_loss": losses[0] if losses else None,
               "final_loss": sum(losses[-steps_per_epoch:]) / max(1, len(losses[-steps_per_epoch:]))}
    return summary if stop is None else {**summary, "stopped_by": stopped_by}


def rewind_log(log: JsonlLog, step: int) -> None:
    """Cut the step log back to `step`, where the run resumes (its checkpoint's step; 0 without one). A run
    killed between checkpoints logged steps it will now run again: their old records would shadow the new ones
    (the log keeps the first record of each id) and a budget carried on from the log (on-policy KD's token
    passes) would count them twice."""
    records = log.read()
    kept = [r for r in records if r.get("step", 0) <= step]
    if len(kept) < len(records):
        atomic_write_text(log.path, "".join(json.dumps(r) + "\n" for r in kept))


def tensorboard_writer(stage: StageDir, report_to: str):
    """A TensorBoard writer into the stage's tensorboard/ folder when asked for, else None."""
    if report_to != "tensorboard":
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from protege.errors import ConfigError

        raise ConfigError("run config", ["train.report_to: tensorboard needs the tensorboard package: pip install "
                                         "tensorboard (or set train.report_to: none)"]) from None
    return SummaryWriter(log_dir=str(stage / "tensorboard"))


def _save_checkpoint(ckpt: Path, model, opt, sched, step: int, get_state) -> None:
    atomic_torch_save({"adapter": get_state(model), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                       "step": step, "rng": torch.get_rng_state()}, ckpt / "state.pt")
    atomic_write_json(ckpt / "position.json", {"step": step})
