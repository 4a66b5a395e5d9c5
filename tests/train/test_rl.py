"""Budget-capped GRPO on a tiny random-init student: the budget callback stops training at the budget in
tokens or in seconds (overshooting by less than a step), the spend is reported, the adapter is saved, a killed
run resumes counting where its checkpoint left off, and SFT compute is counted in the same units."""
import pytest
from safetensors.torch import load_file
from transformers import TrainerCallback

from protege.models.local import LocalLM
from protege.store import JsonlLog
from protege.tasks.spec import load_task
from protege.train.rl import RLConfig, run_grpo, sft_tokens
from protege.train.sft import build_examples

CFG = RLConfig(lr=1e-2, num_generations=4, prompts_per_step=1, max_completion_length=8, lora_rank=4,
                   lora_alpha=8, checkpoint_every=1000)


def contains_e(items, texts):
    """The test reward: 1 if the answer contains the letter e (random answers vary, so advantages are not 0)."""
    return [float("e" in t) for t in texts]


@pytest.fixture()
def setup(tiny_model_dir, tiny_task):
    spec = load_task(str(tiny_task))
    return spec, LocalLM.from_dir(tiny_model_dir), spec.seed_examples()


def steps_of(path):
    return JsonlLog(path / "train_log.jsonl").read()


def test_token_budget_stops_training_at_the_budget(setup, tmp_path):
    spec, lm, items = setup
    summary = run_grpo(spec, CFG, tmp_path / "rl", lm, items, reward_fn=contains_e, budget_tokens=2000, progress=False)

    log = steps_of(tmp_path / "rl")
    assert summary["stopped_by"] == "tokens" and summary["steps"] == len(log) >= 2
    assert [r["step"] for r in log] == list(range(1, len(log) + 1))
    # Stopped at the first step that reached the budget: the one before it was still under.
    assert log[-2]["tokens"] < 2000 <= log[-1]["tokens"] == summary["tokens"]["total"]
    per_step = max(b["tokens"] - a["tokens"] for a, b in zip([{"tokens": 0}] + log, log))
    assert summary["tokens"]["total"] <= 2000 + per_step
    # Generation + policy forward/backward of the same rows (no reference at beta=0), from TRL's own count.
    tokens = summary["tokens"]
    assert tokens["generation"] == tokens["train"] == log[-1]["num_tokens"] and tokens["reference"] == 0
    assert tokens["total"] == 2 * tokens["generation"]
    assert len(summary["reward_curve"]) == len(log) and all(0 <= r <= 1 for _, r in summary["reward_curve"])
    assert sorted(p.name for p in (tmp_path / "rl").iterdir()) == ["adapter", "train_log.jsonl"]
    assert (tmp_path / "rl/adapter/adapter_model.safetensors").exists()
    assert (tmp_path / "rl/adapter/adapter_config.json").exists()
    lora_b = [v for k, v in load_file(tmp_path / "rl/adapter/adapter_model.safetensors").items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # zero at init: the policy gradient moved it


def test_seconds_budget_stops_training_at_the_budget(setup, tmp_path):
    spec, lm, items = setup
    summary = run_grpo(spec, CFG, tmp_path / "rl", lm, items, reward_fn=contains_e, budget_seconds=1.5,
                       progress=False)

    log = steps_of(tmp_path / "rl")
    assert summary["stopped_by"] == "seconds" and summary["steps"] == len(log) >= 2
    assert log[-2]["seconds"] < 1.5 <= log[-1]["seconds"] == summary["seconds"]
    longest_step = max(b["seconds"] - a["seconds"] for a, b in zip(log, log[1:]))
    assert summary["seconds"] <= 1.5 + longest_step
    assert (tmp_path / "rl/adapter/adapter_model.safetensors").exists()


def test_without_budget_the_epochs_run_with_the_task_judge_as_reward(setup, tmp_path):
    spec, lm, items = setup  # 4 seeds, 2 prompts a step, 1 epoch: 2 steps
    cfg = CFG.model_copy(update={"prompts_per_step": 2})
    summary = run_grpo(spec, cfg, tmp_path / "rl", lm, items, progress=False)
    assert summary["stopped_by"] is None and summary["steps"] == 2
    # Rewards from judging the label: a random model rarely writes yes/no, but every value is a 0/1 accuracy.
    assert all(r * 8 == int(r * 8) for _, r in summary["reward_curve"])


class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt("killed")


def test_killed_grpo_resumes_and_counts_on_from_its_checkpoint(setup, tmp_path):
    spec, lm, items = setup
    cfg = CFG.model_copy(update={"checkpoint_every": 2})
    with pytest.raises(KeyboardInterrupt):
        run_grpo(spec, cfg, tmp_path / "rl", lm, items, reward_fn=contains_e, budget_tokens=4000, progress=False,
                 callbacks=[Kill()])
    at_checkpoint = steps_of(tmp_path / "rl")[1]  # step 2, the state the checkpoint holds
    summary = run_grpo(spec, cfg, tmp_path / "rl", lm, items, reward_fn=contains_e, budget_tokens=4000,
                       progress=False)

    log = steps_of(tmp_path / "rl")
    assert summary["resumed_from_step"] == 2 and summary["stopped_by"] == "tokens"
    assert [r["step"] for r in log] == list(range(1, len(log) + 1))
    # Tokens and seconds continue from step 2's totals rather than from zero.
    assert log[2]["tokens"] > at_checkpoint["tokens"] and log[2]["seconds"] > at_checkpoint["seconds"]
    assert log[-2]["tokens"] < 4000 <= summary["tokens"]["total"]
    assert not (tmp_path / "rl/checkpoint").exists()


def test_sft_tokens_count_every_prompt_and_answer_token_per_epoch(setup):
    from protege.tasks.kinds import classification as kind

    spec, lm, items = setup
    examples = build_examples(spec, [it.model_dump() for it in items], lm, max_len=256)
    # Counted independently: the whole rendered turn, prompt + answer + end of turn, tokenized at once.
    texts = [lm.render(kind.prompt(spec, it)) + kind.target(spec, it) + lm.end_of_turn(kind.prompt(spec, it))
             for it in items]
    whole = sum(lm.count_tokens(t) for t in texts)
    assert sft_tokens(examples, 1) == whole and sft_tokens(examples, 3) == 3 * whole


def test_a_run_of_slow_steps_is_checkpointed_by_time(setup, tmp_path, monkeypatch):
    """A budget stops GRPO long before checkpoint_every on a real student (minutes a step); a checkpoint also
    follows any step that ends CHECKPOINT_SECONDS after the last (here 0: every step), so a kill loses one step."""
    import protege.train.loop as loop

    spec, lm, items = setup
    monkeypatch.setattr(loop, "CHECKPOINT_SECONDS", 0.0)
    with pytest.raises(KeyboardInterrupt):
        run_grpo(spec, CFG, tmp_path / "rl", lm, items, reward_fn=contains_e, budget_tokens=4000, progress=False,
                 callbacks=[Kill()])
    summary = run_grpo(spec, CFG, tmp_path / "rl", lm, items, reward_fn=contains_e, budget_tokens=4000,
                       progress=False)
    assert CFG.checkpoint_every == 1000 and summary["resumed_from_step"] == 2  # killed in step 3
    assert summary["stopped_by"] == "tokens" and not (tmp_path / "rl/checkpoint").exists()


@pytest.mark.precision("fp32")  # equal steps up to float rounding is a claim about one precision
def test_micro_batches_take_the_same_steps(setup, tmp_path):
    """micro_batch_rows=2 trains each step's 4 answers in two forwards and backwards (gradient accumulation):
    the same answers, rewards and tokens, and the same losses up to float rounding."""
    spec, lm, items = setup
    runs = {}
    for rows in (None, 2):
        cfg = CFG.model_copy(update={"micro_batch_rows": rows})
        run_grpo(spec, cfg, tmp_path / f"rl-{rows}", lm, items, reward_fn=contains_e, budget_tokens=1500,
                 progress=False)
        runs[rows] = steps_of(tmp_path / f"rl-{rows}")
    whole, parts = runs[None], runs[2]
    assert len(whole) == len(parts) > 2
    assert [r["tokens"] for r in parts] == [r["tokens"] for r in whole]
    assert [r["reward"] for r in parts] == [r["reward"] for r in whole]
    assert [r["loss"] for r in parts] == pytest.approx([r["loss"] for r in whole], rel=1e-4, abs=1e-6)


def test_micro_batch_rows_must_divide_a_steps_answers(setup, tmp_path):
    spec, lm, items = setup
    with pytest.raises(ValueError, match="micro_batch_rows=3 does not divide a step's 4 answers"):
        run_grpo(spec, CFG.model_copy(update={"micro_batch_rows": 3}), tmp_path / "rl", lm, items,
                 reward_fn=contains_e, budget_tokens=1500, progress=False)
