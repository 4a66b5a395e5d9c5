"""train.micro_batch_tokens: SFT and KD (one tokenizer) run a step's rows in micro-batches, each backpropagated in
turn, and follow the one-pass loss curve; the methods with their own setting, and KD across tokenizers, refuse it.

    .venv/bin/python -m pytest tests/train/test_answer_micro_batches.py
"""
import pytest
import torch

import protege.train.micro_batch as micro_batch
from protege.config import TrainConfig
from protege.train.loop import Backpropagated
from protege.train.micro_batch import answer_mean_in_parts
from protege.train.sft import answer_loss
from test_kd_method import _losses, _peaked_teacher
from test_micro_batch import _batch


@pytest.fixture
def group_sizes(monkeypatch):
    """How many micro-batches each split step had (the test's proof that the rows were split at all)."""
    seen = []
    real = micro_batch.micro_batches

    def spy(batch, limit):
        groups = real(batch, limit)
        seen.append(len(groups))
        return groups

    monkeypatch.setattr(micro_batch, "micro_batches", spy)
    return seen


def _student(model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return get_peft_model(AutoModelForCausalLM.from_pretrained(str(model_dir)),
                          LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM",
                                     init_lora_weights=False))  # B != 0: every LoRA matrix gets a gradient


def _step(student, batch, limit):
    """The SFT step's loss and LoRA gradient, in one pass (limit None) or in micro-batches."""
    student.zero_grad(set_to_none=True)
    loss, _ = answer_mean_in_parts(lambda model, b, indices: (answer_loss(model, **b), {}), limit)(
        student, batch, [0, 1, 2, 3])
    if not isinstance(loss, Backpropagated):
        loss.backward()
    return float(loss), torch.cat([p.grad.flatten() for n, p in student.named_parameters() if "lora_" in n])


@pytest.mark.precision("fp32")  # equality up to float rounding is a claim about one precision
def test_the_sft_step_in_parts_has_the_whole_batchs_loss_and_gradient(tiny_model_dir, group_sizes):
    student, batch = _student(tiny_model_dir), _batch([(4, 3), (2, 7), (5, 1), (3, 4)])
    whole, expected = _step(student, batch, None)
    value, got = _step(student, batch, 16)
    assert group_sizes == [3]
    assert value == pytest.approx(whole, rel=1e-6)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-7) and float(expected.abs().max()) > 1e-4


def test_in_bf16_the_sft_step_in_parts_stays_within_rounding_of_one_pass(tiny_model_dir):
    """Under the loop's bf16 autocast (CPUs with native bf16) the pieces round differently: the loss within 1%, the
    gradient's direction within cosine 0.999 and its norm within 2% (bf16 keeps 8 significant bits)."""
    student, batch = _student(tiny_model_dir), _batch([(4, 3), (2, 7), (5, 1), (3, 4)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        whole, expected = _step(student, batch, None)
        value, got = _step(student, batch, 16)
    assert value == pytest.approx(whole, rel=1e-2)
    assert float(torch.nn.functional.cosine_similarity(got, expected, dim=0)) > 0.999
    assert float(got.norm() / expected.norm()) == pytest.approx(1.0, abs=0.02)


@pytest.mark.precision("fp32")
def test_sft_and_cached_kd_runs_in_micro_batches_follow_the_one_pass_curve(tmp_path, tiny_model_dir, tiny_task,
                                                                          group_sizes):
    """KD reads each micro-batch's rows of the logit cache by their example indices: a wrong mapping would pair
    rows with another example's teacher logits and move the kd part."""
    kd = {"alpha": 0.7, "temperature": 2.0, "top_k": 16, "teacher": f"hf:{_peaked_teacher(tmp_path / 'teacher')}"}
    for method, settings in (("sft", {}), ("kd", {"kd": kd})):
        _, whole = _losses(tmp_path, f"{method}-whole", tiny_model_dir, tiny_task, method=method, **settings)
        assert not group_sizes
        pipe, parts = _losses(tmp_path, f"{method}-parts", tiny_model_dir, tiny_task, method=method,
                              micro_batch_tokens=24, **settings)
        assert "micro_batch_tokens: 24" in (pipe.stages["train"] / "config.yaml").read_text()
        assert max(group_sizes) > 1 and len(whole) > 1
        assert [r["loss"] for r in parts] == pytest.approx([r["loss"] for r in whole], rel=1e-5)
        if method == "kd":
            assert [r["kd"] for r in parts] == pytest.approx([r["kd"] for r in whole], rel=1e-5)
            assert all(r["kd"] > 0.1 for r in whole)
        group_sizes.clear()


def test_the_setting_at_none_keeps_earlier_stage_keys_and_other_methods_refuse_it():
    assert "micro_batch_tokens" not in TrainConfig().stage_key()
    assert TrainConfig(method="kd", micro_batch_tokens=512).stage_key()["micro_batch_tokens"] == 512
    with pytest.raises(ValueError, match="not onpolicy: use train.onpolicy.micro_batch_tokens"):
        TrainConfig(method="onpolicy", micro_batch_tokens=512)
    with pytest.raises(ValueError, match="not rl: use train.rl.micro_batch_rows"):
        TrainConfig(method="rl", micro_batch_tokens=512)
    with pytest.raises(ValueError, match="not dpo: leave it unset"):
        TrainConfig(method="dpo", micro_batch_tokens=512)


def test_kd_across_tokenizers_refuses_it_before_loading_a_teacher(tmp_path, tiny_model_dir, tiny_task,
                                                                   monkeypatch):
    from tiny import CORPUS, build_tiny_model

    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    other = build_tiny_model(tmp_path / "other", seed=3, corpus=CORPUS[::-1] + ["yes no even odd"], vocab_size=270)
    with pytest.raises(ValueError, match="KD across tokenizers .* unset it and lower train.batch_size"):
        _losses(tmp_path, "cross", tiny_model_dir, tiny_task, method="kd", micro_batch_tokens=24,
                kd={"teacher": f"hf:{other}"})
