"""GRPO of the student with TRL's GRPOTrainer and a LoRA adapter, rewarded by judging its own answers, and
stopped at a compute budget so it can be compared with SFT at equal cost.

    summary = run_grpo(spec, RLConfig(), stage.path, student_lm, train_items, budget_tokens=sft_tokens(ex, 3))
    summary = run_grpo(spec, cfg, out, lm, items, reward_fn=my_reward, budget_seconds=600)

Each step samples `num_generations` answers to each of `prompts_per_step` training prompts (the zero-shot task
prompt, as SFT and evaluation use), rewards each with `reward_fn(items, texts) -> [float]` (default: the task's
judge, train/judge.py: exact number for maths, the label for classification, the item's tests for code, which
needs `allow_code_execution`), and takes one optimizer step. After every step a callback adds up the compute
used and stops training once it reaches `budget_tokens` or `budget_seconds` (whichever comes first); the check
follows a step, so a run overshoots by less than one step.

How compute is counted (token passes: tokens through one forward of the model, with or without backward):
    RL   generation: every sampled row's prompt + completion tokens (prefill and decode), as TRL counts them
         + policy forward+backward: the same rows once more (one optimizer step per generation batch, one
           iteration, so no extra "old policy" forward)
         + reference forward: the same rows again, only when beta > 0
    SFT  `sft_tokens(examples, epochs)`: every prompt + answer token once per epoch through forward+backward.
A token's backward costs about twice its forward; weight `tokens["train"]` by 3 (and the rest by 1) to compare
FLOPs instead. Seconds are wall-clock from the start of training (generation, rewards, sandbox runs, optimizer,
checkpoints), not model loading; a resumed run adds the seconds its log recorded up to its checkpoint.

Memory: `micro_batch_rows` splits a step's answers into forwards and backwards of that many rows (TRL's
gradient accumulation; the answers are still generated together and the loss normalised over all of them).

Writes into `out_dir` the same layout as train/dpo.py: adapter/, train_log.jsonl (per step: reward, reward_std,
loss, completion lengths, tokens and seconds used so far) and checkpoint/ while running. The learning rate is
constant: a run stopped by a budget has no known end for a schedule to decay towards.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Callable, Sequence

from transformers import TrainerCallback

from protege.config import RLConfig
from protege.store import JsonlLog
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec
from protege.train.dpo import (CHECKPOINTS, TRAIN_LOG, StepLog, TimedCheckpoints, finish_adapter, last_checkpoint,
                               lora_config, quiet)
from protege.train.dpo import trainer_args

Reward = Callable[[list[Example], list[str]], Sequence[float]]
NO_CEILING = 10**9  # steps: a budgeted run ends at its budget, however many epochs that takes


def run_grpo(spec: TaskSpec, cfg: RLConfig, out_dir: Path, student_lm, items: Sequence[Example],
             reward_fn: Reward | None = None, budget_tokens: int | None = None, budget_seconds: float | None = None,
             allow_code_execution: bool = False, progress: bool = True, callbacks: Sequence = (),
             start_adapter: Path | None = None) -> dict:
    """Train a LoRA adapter with GRPO on `items` until the budget (or the epochs) is spent; returns the summary.

    `start_adapter`: go on training that adapter (an SFT run's); with beta > 0 it is also the KL reference (TRL
    keeps a frozen copy as adapter "ref", not saved). None: a new adapter (cfg's rank) on the plain student."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from protege.evaluate.test_access import ensure_not_test

    out_dir = Path(out_dir)
    _check(spec, cfg, items, reward_fn, budget_tokens, budget_seconds, allow_code_execution)
    ensure_not_test(spec, items, "RL training prompts")
    kind = kind_of(spec)
    items = list(items)
    judge_fn = reward_fn or _judge_reward(spec, allow_code_execution)

    def reward(prompts, completions, item_index, **kwargs):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [float(r) for r in judge_fn([items[i] for i in item_index], texts)]

    budgeted = budget_tokens is not None or budget_seconds is not None
    answers = cfg.answers_per_step
    rows = cfg.micro_batch_rows or answers
    args = trainer_args(
        GRPOConfig, out_dir, student_lm, lr=cfg.lr, epochs=cfg.epochs,
        batch_size=rows, gradient_accumulation_steps=answers // rows, seed=cfg.seed,
        checkpoint_every=cfg.checkpoint_every,
        progress=progress, max_steps=cfg.max_steps or (NO_CEILING if budgeted else -1), lr_scheduler_type="constant",
        num_generations=cfg.num_generations, temperature=cfg.temperature, beta=cfg.beta,
        max_completion_length=cfg.max_completion_length or kind.MAX_NEW_TOKENS)
    log = JsonlLog(out_dir / TRAIN_LOG)
    budget = ComputeBudget(log, passes=2 + (cfg.beta > 0), budget_tokens=budget_tokens, budget_seconds=budget_seconds)
    dataset = Dataset.from_list([{"prompt": kind.prompt(spec, it), "item_index": i} for i, it in enumerate(items)])
    model = copy.deepcopy(student_lm.model)  # TRL patches the model it gets: keep ours intact
    peft_config = lora_config(cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)
    if start_adapter is not None:
        from peft import PeftModel

        model, peft_config = PeftModel.from_pretrained(model, str(start_adapter), is_trainable=True), None
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args,
                          train_dataset=dataset, processing_class=copy.deepcopy(student_lm.tokenizer),
                          peft_config=peft_config,
                          callbacks=[budget, StepLog(log, extra=lambda state: budget.last), TimedCheckpoints(),
                                     *callbacks])
    quiet(trainer, progress)
    resume = last_checkpoint(out_dir / CHECKPOINTS)
    trainer.train(resume_from_checkpoint=resume)
    finish_adapter(trainer, out_dir)
    steps = [r for r in log.read() if "reward" in r]
    curve = [[r["step"], r["reward"]] for r in steps]
    tail = [r for _, r in curve[-5:]]
    return {
        "method": "grpo", "task": spec.name, "prompts": len(items), "steps": trainer.state.global_step,
        "start_adapter": None if start_adapter is None else str(start_adapter),
        "resumed_from_step": int(Path(resume).name.split("-")[-1]) if resume else None,
        "stopped_by": budget.stopped_by,  # "tokens", "seconds", or None: the steps/epochs ran out first
        "budget": {"tokens": budget_tokens, "seconds": budget_seconds},
        "tokens": budget.tokens(trainer.state), "seconds": budget.last.get("seconds", 0.0),
        "reward_curve": curve, "first_reward": curve[0][1] if curve else None,
        "final_reward": sum(tail) / len(tail) if tail else None,  # mean of the last 5 steps: one step is noisy
    }


def sft_tokens(examples: Sequence[dict], epochs: int) -> int:
    """Token passes of an SFT run (train/sft.py) over `examples` from `build_examples`: each example's prompt +
    answer tokens go through forward+backward once per epoch. The body runs over every token even though the
    loss (and the output projection) covers the answer only, so all count."""
    return sum(len(e["input_ids"]) for e in examples) * epochs


class ComputeBudget(TrainerCallback):
    """Counts the compute used after every optimizer step and stops training at the budget (see the module's
    docstring for the units). `last` holds the latest count, which the step log records."""

    def __init__(self, log: JsonlLog, passes: int, budget_tokens: int | None = None,
                 budget_seconds: float | None = None):
        self.log, self.passes = log, passes
        self.budget_tokens, self.budget_seconds = budget_tokens, budget_seconds
        self.stopped_by: str | None = None
        self.last: dict = {}

    def tokens(self, state) -> dict:
        # TRL adds every sampled row's prompt + completion tokens to num_input_tokens_seen as it generates; the
        # checkpoint keeps it, so a resumed run counts on from there.
        seen = int(state.num_input_tokens_seen)
        return {"generation": seen, "train": seen, "reference": seen * (self.passes - 2), "total": seen * self.passes}

    def on_train_begin(self, args, state, control, **kwargs):
        self.began = time.perf_counter()
        # Resuming at step N: add the seconds spent up to N, as the step log recorded them.
        self.before = next((r.get("seconds", 0.0) for r in self.log.read() if r.get("step") == state.global_step), 0.0)

    def on_step_end(self, args, state, control, **kwargs):
        tokens = self.tokens(state)
        seconds = self.before + time.perf_counter() - self.began
        self.last = {"tokens": tokens["total"], "seconds": seconds}
        if self.budget_tokens is not None and tokens["total"] >= self.budget_tokens:
            self.stopped_by = "tokens"
        elif self.budget_seconds is not None and seconds >= self.budget_seconds:
            self.stopped_by = "seconds"
        if self.stopped_by:
            control.should_training_stop = True


def _judge_reward(spec: TaskSpec, allow_code_execution: bool) -> Reward:
    from protege.train.judge import judge

    return lambda items, texts: judge(spec, items, texts, allow_code_execution=allow_code_execution)


def _check(spec, cfg: RLConfig, items, reward_fn, budget_tokens, budget_seconds, allow_code_execution) -> None:
    problems = []
    if not items:
        problems.append("items: no training prompts given")
    if any(it.id is None for it in items):
        problems.append("items: every item needs an id")
    answers = cfg.answers_per_step
    if cfg.micro_batch_rows is not None and answers % cfg.micro_batch_rows:
        problems.append(f"micro_batch_rows={cfg.micro_batch_rows} does not divide a step's {answers} answers "
                        f"(prompts_per_step x num_generations); choose a divisor of {answers}")
    if cfg.num_generations < 2:
        problems.append(f"num_generations={cfg.num_generations}: GRPO compares answers within a group; use >= 2")
    if budget_tokens is not None and budget_tokens <= 0:
        problems.append(f"budget_tokens={budget_tokens}: must be positive (or None for no token budget)")
    if budget_seconds is not None and budget_seconds <= 0:
        problems.append(f"budget_seconds={budget_seconds}: must be positive (or None for no time budget)")
    if problems:
        raise ValueError("run_grpo: " + "; ".join(problems))
    if reward_fn is None and kind_of(spec).EXECUTES_CODE and not allow_code_execution:
        from protege.scoring.sandbox import CodeExecutionNotAllowed

        raise CodeExecutionNotAllowed()  # at the start, not at the first reward


class RL:
    """train.method=rl: GRPO on the curated items' prompts against the task's own judge, stopped at a compute
    budget; by default the token passes the same run's SFT would spend (train.rl.match_sft), so the two compare at
    equal compute. From the student, or from this run's SFT adapter (train.rl.start=sft: SFT then RL, RL's budget
    on top)."""

    name = "rl"

    def train(self, job) -> dict:
        from protege.train.sft import build_examples

        r, cfg = job.cfg.train.rl, job.cfg
        budget_tokens = r.budget_tokens
        if budget_tokens is None and r.budget_seconds is None and r.match_sft:
            examples = build_examples(job.spec, job.rows, job.student, cfg.train.max_seq_len)
            budget_tokens = sft_tokens(examples, cfg.train.epochs)
            job.echo(f"[train] RL budget: {budget_tokens:,} token passes, what SFT on the same rows would spend")
        # the same opt-in that let curation run generated code
        summary = run_grpo(job.spec, r, job.stage.path, job.student, job.items(), budget_tokens=budget_tokens,
                           budget_seconds=r.budget_seconds, allow_code_execution=cfg.curate.allow_code_execution,
                           progress=job.progress, start_adapter=job.start_adapter)
        return {**summary, "start": r.start}
