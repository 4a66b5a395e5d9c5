"""DPO on a tiny random-init student: the adapter is written where evaluation loads it, it moves the policy
towards the chosen answers relative to the reference (measured, not assumed), and a killed run resumes."""
import copy

import pytest
import torch
from transformers import TrainerCallback

from protege.models.local import LocalLM
from protege.store import JsonlLog
from protege.tasks.kinds import classification
from protege.tasks.spec import Example, load_task
from protege.train.dpo import DPOSettings, run_dpo

CFG = DPOSettings(lr=2e-2, epochs=2, batch_size=4, max_length=128, lora_rank=4, lora_alpha=8, checkpoint_every=2)


@pytest.fixture()
def setup(tiny_model_dir, tiny_task):
    spec = load_task(str(tiny_task))
    prompts = [classification.prompt(spec, Example(text=f"Is {i} even ?")) for i in range(8)]
    # One direction for every prompt, so a few steps can learn it: "yes" over "no".
    pairs = [{"id": f"seed-{i}/0", "prompt": p, "chosen": [{"role": "assistant", "content": "yes"}],
              "rejected": [{"role": "assistant", "content": "no"}]} for i, p in enumerate(prompts)]
    return spec, LocalLM.from_dir(tiny_model_dir), prompts, pairs


def margin(lm, prompts) -> float:
    """Mean log p(yes) - log p(no) of the whole answer turn, over the prompts."""
    return sum(a - b for a, b in (lm.score_continuations(p, ["yes", "no"]) for p in prompts)) / len(prompts)


def test_dpo_trains_adapter_and_raises_the_chosen_margin(setup, tmp_path):
    from peft import PeftModel

    spec, lm, prompts, pairs = setup
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    summary = run_dpo(spec, CFG, tmp_path / "dpo", lm, pairs, progress=False)

    assert sorted(p.name for p in (tmp_path / "dpo").iterdir()) == ["adapter", "train_log.jsonl"]
    written = {p.name for p in (tmp_path / "dpo/adapter").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= written
    assert summary["steps"] == 4 and summary["pairs"] == summary["pairs_trained"] == 8
    assert summary["resumed_from_step"] is None
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())  # the student is untouched

    # Loaded the way evaluation loads the SFT adapter: LoRA B (zero at init) has moved.
    tuned = PeftModel.from_pretrained(copy.deepcopy(lm.model), str(tmp_path / "dpo/adapter"))
    lora_b = [p for n, p in tuned.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)

    # The measured effect: log p(chosen) - log p(rejected) grows relative to the reference (the base model).
    ref_margin = margin(lm, prompts)
    tuned_lm = LocalLM("tuned", tuned.merge_and_unload(), lm.tokenizer)
    assert margin(tuned_lm, prompts) > ref_margin + 0.05

    # TRL's own numbers agree: the logged implicit reward margin starts at 0 (adapter = reference) and rises.
    log = JsonlLog(tmp_path / "dpo/train_log.jsonl").read()
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert log[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert summary["final_margin"] > 0 and summary["final_loss"] < summary["first_loss"]
    # The token count (policy forward+backward, and the reference forward) is TRL's own count of the batches.
    assert summary["tokens"]["total"] == 2 * summary["tokens"]["train"] == 2 * log[-1]["num_tokens"] > 0


class Kill(TrainerCallback):
    """Stands in for SIGKILL after a step (the checkpoint of step 2 is on disk, step 3 is lost)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt("killed")


def test_killed_dpo_resumes_from_its_checkpoint_and_follows_the_same_curve(setup, tmp_path):
    spec, lm, prompts, pairs = setup
    unbroken = run_dpo(spec, CFG, tmp_path / "a", lm, pairs, progress=False)

    with pytest.raises(KeyboardInterrupt):
        run_dpo(spec, CFG, tmp_path / "b", lm, pairs, progress=False, callbacks=[Kill()])
    assert (tmp_path / "b/checkpoint/checkpoint-2/trainer_state.json").exists()
    assert not (tmp_path / "b/adapter").exists()
    resumed = run_dpo(spec, CFG, tmp_path / "b", lm, pairs, progress=False)

    assert resumed["resumed_from_step"] == 2 and resumed["steps"] == unbroken["steps"] == 4
    a = [r["loss"] for r in JsonlLog(tmp_path / "a/train_log.jsonl").read()]
    b = [r["loss"] for r in JsonlLog(tmp_path / "b/train_log.jsonl").read()]
    assert b == pytest.approx(a, rel=1e-4)
    assert not (tmp_path / "b/checkpoint").exists()
