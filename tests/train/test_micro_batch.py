"""Micro-batches (train/micro_batch.py, train.onpolicy.micro_batch_tokens): the rows' grouping, and the same
step as one pass: loss, parts and gradients equal up to float rounding, at the unit and over a whole on-policy
run, with one vocabulary and across tokenizers."""
import pytest
import torch

from protege.train.loop import Backpropagated, collate
from protege.train.micro_batch import backward_in_parts, micro_batches
from protege.train.onpolicy import distill_loss
from test_kd_method import _peaked_teacher
from test_onpolicy import _run


def _batch(rows: list[tuple[int, int]]) -> dict:
    """Rows of (prompt, answer) lengths, token ids counting up, right-padded."""
    out = []
    for p, a in rows:
        ids = [5 + (i % 40) for i in range(p + a)]
        out.append({"input_ids": ids, "labels": [-100] * p + ids[p:]})
    return collate(out, 0)


def test_the_setting_at_none_keeps_earlier_stage_keys():
    """Runs before the setting existed (session 37's on-policy checkpoint among them) keep their stage keys."""
    from protege.config import OnPolicyConfig
    from protege.stage_keys import key_dump

    assert "micro_batch_tokens" not in key_dump(OnPolicyConfig())
    assert key_dump(OnPolicyConfig(micro_batch_tokens=1024))["micro_batch_tokens"] == 1024


def test_rows_group_under_the_padded_limit_and_are_trimmed():
    batch = _batch([(3, 3), (2, 2), (4, 6), (1, 1)])  # 6, 4, 10, 2 tokens
    groups = micro_batches(batch, 12)
    assert [rows for rows, _ in groups] == [[0, 1], [2], [3]]  # 2 x 6 fits; 3 x 10 would not; 10 + 2 x 10 not
    assert [sub["input_ids"].shape for _, sub in groups] == [(2, 6), (1, 10), (1, 2)]
    assert torch.equal(groups[0][1]["labels"], batch["labels"][:2, :6])
    assert [rows for rows, _ in micro_batches(batch, 4)] == [[0], [1], [2], [3]]  # a row past the limit goes alone
    assert [rows for rows, _ in micro_batches(batch, 1000)] == [[0, 1, 2, 3]]


@pytest.mark.precision("fp32")  # equality up to float rounding is a claim about one precision
def test_the_step_in_parts_has_the_whole_batchs_loss_and_gradient(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    teacher = AutoModelForCausalLM.from_pretrained(str(_peaked_teacher(tmp_path / "teacher")))
    torch.manual_seed(0)
    student = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                             LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM",
                                        init_lora_weights=False))  # B != 0: every LoRA matrix gets a gradient
    batch = _batch([(4, 3), (2, 7), (5, 1), (3, 4)])
    lora = [p for n, p in student.named_parameters() if "lora_" in n]

    whole, parts = distill_loss(student, teacher, batch, beta=0.5, top_k=None, chunk_tokens=4)
    whole.backward()
    expected = [p.grad.clone() for p in lora]
    student.zero_grad(set_to_none=True)

    def loss_of(rows, sub):
        return distill_loss(student, teacher, sub, beta=0.5, top_k=None, chunk_tokens=4)

    def count_of(rows, sub):
        return int((sub["labels"][:, 1:] != -100).sum())

    value, in_parts = backward_in_parts(batch, 16, loss_of, count_of)
    assert isinstance(value, Backpropagated) and len(micro_batches(batch, 16)) == 3
    assert float(value) == pytest.approx(whole.item(), rel=1e-6)
    assert in_parts["kd"] == pytest.approx(parts["kd"], rel=1e-6)
    assert all(torch.allclose(p.grad, g, rtol=1e-4, atol=1e-7) for p, g in zip(lora, expected))
    assert max(float(g.abs().max()) for g in expected) > 1e-4  # a real gradient, not two zeros


def test_in_bf16_the_step_in_parts_stays_within_rounding_of_one_pass(tmp_path, tiny_model_dir):
    """Under bf16 autocast (the loop's on CPUs with native bf16; each backward then runs inside it), the pieces
    round differently: the loss within 1% and the gradient's direction within cosine 0.999 and its norm within 2%
    of one pass's (bf16 keeps 8 significant bits, about 0.4% a rounding)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    teacher = AutoModelForCausalLM.from_pretrained(str(_peaked_teacher(tmp_path / "teacher")))
    torch.manual_seed(0)
    student = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                             LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM",
                                        init_lora_weights=False))
    batch = _batch([(4, 3), (2, 7), (5, 1), (3, 4)])
    lora = [p for n, p in student.named_parameters() if "lora_" in n]

    def loss_of(rows, sub):
        return distill_loss(student, teacher, sub, beta=0.5, top_k=None, chunk_tokens=4)

    def count_of(rows, sub):
        return int((sub["labels"][:, 1:] != -100).sum())

    with torch.autocast("cpu", dtype=torch.bfloat16):
        whole, _ = loss_of(None, batch)
        whole.backward()
        expected = torch.cat([p.grad.flatten() for p in lora])
        student.zero_grad(set_to_none=True)
        value, _ = backward_in_parts(batch, 16, loss_of, count_of)
    got = torch.cat([p.grad.flatten() for p in lora])
    assert float(value) == pytest.approx(whole.item(), rel=1e-2)
    assert float(torch.nn.functional.cosine_similarity(got, expected, dim=0)) > 0.999
    assert float(got.norm() / expected.norm()) == pytest.approx(1.0, abs=0.02)


@pytest.mark.precision("fp32")
@pytest.mark.parametrize("tokenizer", ["same", "other"])
def test_an_onpolicy_run_in_micro_batches_follows_the_one_pass_curve(tmp_path, tiny_model_dir, tiny_task,
                                                                    monkeypatch, tokenizer):
    """The same samples (the same generator state), the same losses, passes and, across tokenizers, the same
    aligned share, with micro-batches of one or two rows."""
    if tokenizer == "same":
        teacher = _peaked_teacher(tmp_path / "teacher")
    else:
        from tiny import CORPUS, build_tiny_model

        monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
        teacher = build_tiny_model(tmp_path / "other", seed=3, corpus=CORPUS[::-1] + ["yes no even odd"],
                                   vocab_size=270)
    settings = {"teacher": f"hf:{teacher}", "match_sft": False, "max_new_tokens": 6}
    _, whole = _run(tmp_path, "whole", tiny_model_dir, tiny_task, method="onpolicy", onpolicy=settings)
    pipe, parts = _run(tmp_path, "parts", tiny_model_dir, tiny_task, method="onpolicy",
                       onpolicy={**settings, "micro_batch_tokens": 20})
    assert "micro_batch_tokens: 20" in (pipe.stages["train"] / "config.yaml").read_text()
    assert [r["passes"] for r in parts] == [r["passes"] for r in whole] and len(whole) > 1
    assert [r["loss"] for r in parts] == pytest.approx([r["loss"] for r in whole], rel=1e-4)
    assert [r["kd"] for r in parts] == pytest.approx([r["kd"] for r in whole], rel=1e-4)
    if tokenizer == "other":
        assert [r["aligned"] for r in parts] == pytest.approx([r["aligned"] for r in whole], rel=1e-9)
