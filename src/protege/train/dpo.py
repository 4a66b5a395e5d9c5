"""DPO of the student on preference pairs (train/preference.py), with TRL's DPOTrainer and a LoRA adapter.

    summary = run_dpo(spec, DPOSettings(beta=0.1), stage.path, student_lm, pair_rows(log.read()))

Writes into `out_dir`:
    adapter/          adapter_model.safetensors + adapter_config.json, loaded like the SFT adapter
    train_log.jsonl   one record per optimizer step: loss, rewards/margins (beta * (chosen - rejected) log-ratio
                      against the reference), rewards/accuracies, logps/chosen, logps/rejected, ...
    checkpoint/       TRL/transformers checkpoints every `checkpoint_every` steps; a rerun resumes from the latest
                      complete one, and the folder is removed once the adapter is saved

The reference policy is the student with its adapter disabled (TRL does this for a PEFT model), so no second
copy of the model is held. Compute, in the units train/rl.py budgets with (token passes: tokens through one
forward, with or without backward): every pair's prompt+chosen and prompt+rejected tokens go through the policy
forward+backward and the reference forward once per epoch.

The TRL plumbing here (CPU-safe arguments, the step log, resume, adapter output) is shared with train/rl.py.
"""
from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Sequence

from transformers import TrainerCallback

from protege.config import DPOConfig
from protege.store import PREFERENCES, TRAIN_LOG, JsonlLog
from protege.tasks.spec import TaskSpec
from protege.train import loop

CHECKPOINTS = "checkpoint"
ADAPTER = "adapter"


DPOSettings = DPOConfig  # the run config's train.dpo section


def run_dpo(spec: TaskSpec, cfg: DPOSettings, out_dir: Path, student_lm, pairs: Sequence[dict],
            progress: bool = True, callbacks: Sequence = (), start_adapter: Path | None = None) -> dict:
    """Train a LoRA adapter with DPO on `pairs` (TRL preference rows); returns the run's summary.

    `start_adapter`: go on training that adapter (an SFT run's), which is also the reference policy (TRL keeps a
    frozen copy of it as adapter "ref"); None: a new adapter (train.dpo's rank) on the plain student, whose
    reference is the student. `callbacks` are extra transformers TrainerCallbacks (e.g. to stop early)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    out_dir = Path(out_dir)
    rows = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
    if not rows:
        from protege.errors import ConfigError

        raise ConfigError("train.dpo", [
            "no preference pairs: every prompt's teacher samples were all right or all wrong, so none gives a "
            "right and a wrong answer to pair; raise train.dpo.samples_per_prompt or train.dpo.temperature, add "
            "train.dpo.teacher_shots, or pick another teacher (generate.teacher samples the pairs)"])
    args = trainer_args(DPOConfig, out_dir, student_lm, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        seed=cfg.seed, checkpoint_every=cfg.checkpoint_every, progress=progress, beta=cfg.beta,
                        max_length=cfg.max_length)
    log = JsonlLog(out_dir / TRAIN_LOG)
    model = copy.deepcopy(student_lm.model)  # TRL patches the model it gets: keep ours intact
    peft_config = lora_config(cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)
    if start_adapter is not None:
        from peft import PeftModel

        model, peft_config = PeftModel.from_pretrained(model, str(start_adapter), is_trainable=True), None
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=copy.deepcopy(student_lm.tokenizer), peft_config=peft_config,
                         callbacks=[StepLog(log), TimedCheckpoints(), *callbacks])
    quiet(trainer, progress)
    resume = last_checkpoint(out_dir / CHECKPOINTS)
    began = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - began
    trained = _pair_tokens(trainer.train_dataset, cfg.max_length) * cfg.epochs
    finish_adapter(trainer, out_dir)
    steps = [r for r in log.read() if "loss" in r]
    return {
        "method": "dpo", "task": spec.name, "pairs": len(rows), "pairs_trained": len(trainer.train_dataset),
        "steps": trainer.state.global_step,
        "resumed_from_step": _step_of(resume), "seconds": seconds,  # of this call (a resumed run: since resuming)
        "first_loss": _first(steps, "loss"), "final_loss": _last(steps, "loss"),
        "first_margin": _first(steps, "rewards/margins"), "final_margin": _last(steps, "rewards/margins"),
        "final_reward_accuracy": _last(steps, "rewards/accuracies"),
        "tokens": {"train": trained, "reference": trained, "total": 2 * trained},
    }


class DPO:
    """train.method=dpo: the teacher answers each training prompt several times; judged right vs wrong answers make
    pairs (`preferences.jsonl`, resumable; train/preference.py), then TRL's DPOTrainer, from the student
    (train.dpo.start=base) or from this run's SFT adapter (start=sft)."""

    name = "dpo"

    def train(self, job) -> dict:
        from protege.evaluate.model_eval import pick_shots
        from protege.synth.teacher import load_teacher
        from protege.train.preference import build_preferences, pair_rows

        d, stage = job.cfg.train.dpo, job.stage
        log = JsonlLog(stage / PREFERENCES)
        shots = pick_shots(job.spec, d.teacher_shots) if d.teacher_shots else []
        prefs = build_preferences(job.spec, load_teacher(job.cfg, stage, "dpo"), job.items(), log=log,
                                  samples_per_prompt=d.samples_per_prompt, temperature=d.temperature,
                                  pairs_per_prompt=d.pairs_per_prompt, seed=d.seed, shots=shots,
                                  allow_code_execution=job.cfg.curate.allow_code_execution, progress=job.progress)
        job.echo(f"[train] preference pairs: {prefs['pairs']} from {prefs['prompts']} prompts "
                 f"(teacher right on {prefs['teacher_accuracy']:.0%} of its samples)")
        start = job.start_adapter
        return {**run_dpo(job.spec, d, stage.path, job.student, pair_rows(log.read()), progress=job.progress,
                          start_adapter=start),
                "start": d.start, "start_adapter": None if start is None else str(start), "preferences": prefs}


# -- TRL plumbing shared with rl.py ------------------------------------------------------------------------------
def trainer_args(config_cls, out_dir: Path, lm, *, lr: float, epochs: float, batch_size: int, seed: int,
                 checkpoint_every: int, progress: bool, **extra):
    """TRL config for a LoRA run on this machine: CPU unless the student sits on a GPU, bf16 only where it is
    the precision in force resolves to it (TRL's configs default bf16 on, which CPUs without native bf16 run
    slowly), no hub, no trackers."""
    from protege.models.precision import resolve_precision

    device = getattr(lm, "device", "cpu")
    return config_cls(
        output_dir=str(Path(out_dir) / CHECKPOINTS), use_cpu=device == "cpu",
        bf16=resolve_precision(None, device) == "bf16",
        learning_rate=lr, num_train_epochs=epochs, per_device_train_batch_size=batch_size, seed=seed, data_seed=seed,
        logging_steps=1, save_strategy="steps", save_steps=checkpoint_every, save_total_limit=1,
        # TRL turns checkpointing of activations on by default; a small student on CPU has the memory and not the
        # time for its recomputation.
        **{checkpointing_field(config_cls): False},
        report_to="none", push_to_hub=False, disable_tqdm=not progress, dataloader_num_workers=0, **extra)


def checkpointing_field(config_cls) -> str:
    """The name of the activation-checkpointing switch in this transformers: `activation_checkpointing` in newer
    releases (the old name warns there), `gradient_checkpointing` in older 5.x ones (5.17 has no new name)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def quiet(trainer, progress: bool) -> None:
    """Without a progress bar transformers prints every step's metrics dict instead; the step log has them."""
    from transformers.trainer_callback import PrinterCallback

    if not progress:
        trainer.remove_callback(PrinterCallback)


def lora_config(rank: int, alpha: int, dropout: float):
    from peft import LoraConfig

    # all-linear leaves out the output layer, which TRL requires (it reads lm_head.weight directly).
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear",
                      task_type="CAUSAL_LM")


def last_checkpoint(folder: Path) -> str | None:
    """The latest complete checkpoint: trainer_state.json is written last, so one without it was cut short."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists() and p.name[11:].isdigit()]
    return str(max(done, key=lambda p: int(p.name[11:]))) if done else None


def finish_adapter(trainer, out_dir: Path) -> Path:
    """Save the adapter where evaluation looks for it, then drop the checkpoints (the run is complete)."""
    adapter = Path(out_dir) / ADAPTER
    # only the trained adapter: DPO from an SFT adapter also holds TRL's frozen reference copy ("ref")
    trainer.model.save_pretrained(str(adapter), selected_adapters=["default"])
    shutil.rmtree(Path(out_dir) / CHECKPOINTS, ignore_errors=True)
    return adapter


class TimedCheckpoints(TrainerCallback):
    """A checkpoint also once train/loop.py's CHECKPOINT_SECONDS have passed since the last, as the LoRA loop
    does: GRPO on a 0.5B student takes several minutes a step on two CPU cores and a budget stops it before
    `checkpoint_every`, so without it a kill loses the whole run. Saving changes nothing the run computes."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.saved = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if not control.should_training_stop and time.perf_counter() - self.saved >= loop.CHECKPOINT_SECONDS:
            control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        self.saved = time.perf_counter()


class StepLog(TrainerCallback):
    """Appends each optimizer step's logged metrics to a JsonlLog keyed by step (a resumed step logs once)."""

    def __init__(self, log: JsonlLog, extra=None):
        self.log = log
        self.extra = extra  # state -> dict of more fields for the step's record

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:  # the end-of-training summary has train_loss instead
            return
        record = {"id": state.global_step, "step": state.global_step, **logs}
        if self.extra is not None:
            record.update(self.extra(state))
        self.log.append([record])


def _pair_tokens(dataset, max_length: int | None) -> int:
    """Tokens of prompt+chosen and prompt+rejected of every pair, cut at max_length as the collator cuts them."""
    cap = max_length or float("inf")
    return int(sum(min(len(p) + len(c), cap) + min(len(p) + len(r), cap)
                   for p, c, r in zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])))


def _step_of(checkpoint: str | None) -> int | None:
    return int(Path(checkpoint).name.split("-")[-1]) if checkpoint else None


def _first(records: list[dict], key: str):
    return next((r[key] for r in records if key in r), None)


def _last(records: list[dict], key: str):
    return next((r[key] for r in reversed(records) if key in r), None)
