"""Train stage: one method per run (train.method), each writing `adapter/` and `train_log.jsonl` into the stage.

    sft   LoRA SFT on the curated items' answers (train/sft.py)
    kd    the same tokens, with the teacher's logits too: (1 - alpha) CE + alpha T^2 KD (train/kd.py)
    dpo   the teacher answers each training prompt several times; judged right vs wrong answers make pairs
          (`preferences.jsonl`, resumable), then TRL's DPOTrainer (train/preference.py, train/dpo.py), from the
          student (train.dpo.start=base) or from this run's SFT adapter (start=sft, SFT run or reused first)
    rl    GRPO against the task's own judge, stopped at a compute budget; by default the token passes the same
          run's SFT would spend, so the two compare at equal compute (train/grpo.py); from the student
          (train.rl.start=base) or from this run's SFT adapter (start=sft: SFT then RL, RL's budget on top)

Every method trains on the curated rows plus the seeds (train.include_seeds) and never sees the test set.
"""
from __future__ import annotations

from protege.config import RunConfig
from protege.store import JsonlLog, StageDir
from protege.tasks.spec import Example, TaskSpec


def run_train_stage(spec: TaskSpec, cfg: RunConfig, stage: StageDir, rows: list[dict], progress: bool = True,
                    echo=print) -> dict:
    from protege.models.resolve import load_lm

    method = cfg.train.method
    student = load_lm(cfg.train.student)
    if method == "sft":
        from protege.train.sft import run_train

        return {"method": "sft", **run_train(spec, cfg.train, stage, student, rows, progress=progress)}
    if method == "kd":
        from protege.train.kd import run_kd

        return run_kd(spec, cfg, stage, student, rows, progress=progress)
    items = [_example(row, n) for n, row in enumerate(rows)]
    allow_exec = cfg.curate.allow_code_execution  # the same opt-in that let curation run generated code
    if method == "dpo":
        from protege.synth.teacher import load_teacher
        from protege.train.dpo import run_dpo
        from protege.train.preference import build_preferences, pair_rows

        from protege.evaluate.model_eval import pick_shots

        d = cfg.train.dpo
        log = JsonlLog(stage / "preferences.jsonl")
        shots = pick_shots(spec, d.teacher_shots) if d.teacher_shots else []
        prefs = build_preferences(spec, load_teacher(cfg, stage), items, log=log, samples_per_prompt=d.samples_per_prompt,
                                  temperature=d.temperature, pairs_per_prompt=d.pairs_per_prompt, seed=d.seed, shots=shots,
                                  allow_code_execution=allow_exec, progress=progress)
        echo(f"[train] preference pairs: {prefs['pairs']} from {prefs['prompts']} prompts "
             f"(teacher right on {prefs['teacher_accuracy']:.0%} of its samples)")
        start = _sft_adapter(cfg, "DPO", progress, echo) if d.start == "sft" else None
        return {**run_dpo(spec, d, stage.path, student, pair_rows(log.read()), progress=progress,
                          start_adapter=start),
                "start": d.start, "start_adapter": None if start is None else str(start), "preferences": prefs}
    from protege.train.grpo import run_grpo, sft_tokens

    r = cfg.train.rl
    budget_tokens = r.budget_tokens
    if budget_tokens is None and r.budget_seconds is None and r.match_sft:
        from protege.train.sft import build_examples

        budget_tokens = sft_tokens(build_examples(spec, rows, student, cfg.train.max_seq_len), cfg.train.epochs)
        echo(f"[train] RL budget: {budget_tokens:,} token passes, what SFT on the same rows would spend")
    start = _sft_adapter(cfg, "RL", progress, echo) if r.start == "sft" else None
    return {**run_grpo(spec, r, stage.path, student, items, budget_tokens=budget_tokens,
                       budget_seconds=r.budget_seconds, allow_code_execution=allow_exec, progress=progress,
                       start_adapter=start), "start": r.start}


def _sft_adapter(cfg: RunConfig, method: str, progress: bool, echo):
    """The adapter of this run's SFT (train.method=sft, every other setting the same): trained now if it is not
    finished, reused if it is (it is an ordinary stage of the pipeline)."""
    from protege.pipeline import Pipeline

    sft = cfg.model_copy(update={"train": cfg.train.model_copy(update={"method": "sft"})})
    stage = Pipeline(sft, progress=progress, echo=echo).run("train")
    echo(f"[train] {method} starts from the SFT adapter in {stage.path}")
    return stage.path / "adapter"


def _example(row: dict, n: int) -> Example:
    fields = {k: v for k, v in row.items() if k in Example.model_fields}
    fields.setdefault("id", f"row-{n}")
    return Example(**fields)
