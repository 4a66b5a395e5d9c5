"""train.method=onpolicy on tiny models: zero loss when the teacher is the student, gradient through the student
only, lambda 1 is offline KD on the teacher's text step for step, the budget stops it, and a killed run resumes
to the same curve."""
import pytest
import torch

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from protege.train.onpolicy import distill_loss, sample_answers, uses_teacher_text
from interrupt import die_after_checkpoint
from test_kd_method import _peaked_teacher
from tiny import write_tiny_config


def _run(tmp_path, name, model_dir, task, **train):
    cfg = load_config(write_tiny_config(tmp_path / name, model_dir, task, train=train))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("train")
    return pipe, JsonlLog(pipe.stages["train"] / "train_log.jsonl").read()


@pytest.mark.precision("fp32")  # "zero" is exact only where student and teacher compute alike
def test_a_student_distilled_from_itself_has_zero_loss(tmp_path, tiny_model_dir, tiny_task):
    pipe, log = _run(tmp_path, "self", tiny_model_dir, tiny_task, method="onpolicy",
                     onpolicy={"teacher": f"hf:{tiny_model_dir}", "match_sft": False, "max_new_tokens": 6})
    assert all(r["on_policy"] for r in log) and len(log) > 1
    assert abs(log[0]["loss"]) < 1e-8
    # the gradient of a zero divergence is rounding noise, which Adam's normalisation turns into small steps:
    # the student drifts a little from its teacher, four orders below a real teacher's loss (next tests)
    assert max(abs(r["loss"]) for r in log) < 1e-5


def test_the_gradient_reaches_the_student_and_never_the_teacher(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    teacher = AutoModelForCausalLM.from_pretrained(str(_peaked_teacher(tmp_path / "teacher")))
    student = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                             LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    answers = sample_answers(student, [[5, 6, 7], [8, 9]], pad_id=0, eos_id=None, max_new_tokens=4, temperature=1.0)
    assert [len(a) for a in answers] == [4, 4]
    ids = torch.tensor([[5, 6, 7] + answers[0], [8, 9, 0] + answers[1]])
    labels = torch.tensor([[-100] * 3 + answers[0], [-100] * 3 + answers[1]])
    batch = {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids)}
    loss, _ = distill_loss(student, teacher, batch, beta=0.5, top_k=None, chunk_tokens=256)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    lora = [p for n, p in student.named_parameters() if "lora_" in n]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)
    assert all(p.grad is None for n, p in student.named_parameters() if "lora_" not in n)


@pytest.mark.precision("fp32")
def test_lambda_one_is_offline_kd_on_the_teachers_text(tmp_path, tiny_model_dir, tiny_task):
    teacher = f"hf:{_peaked_teacher(tmp_path / 'teacher')}"
    _, onpolicy = _run(tmp_path, "on", tiny_model_dir, tiny_task, method="onpolicy",
                       onpolicy={"teacher": teacher, "lambda": 1.0, "beta": 0.5, "match_sft": False})
    _, kd = _run(tmp_path, "kd", tiny_model_dir, tiny_task, method="kd",
                 kd={"teacher": teacher, "alpha": 1.0, "divergence": "jsd", "beta": 0.5, "signal": "online",
                     "temperature": 1.0})
    assert not any(r["on_policy"] for r in onpolicy)
    assert [r["loss"] for r in onpolicy] == pytest.approx([r["loss"] for r in kd], rel=1e-6)
    assert onpolicy[0]["loss"] > 1e-3  # a real signal, not two zeros


def test_which_steps_sample_depends_on_the_batch_alone():
    picks = [uses_teacher_text(0, [i, i + 1], 0.5) for i in range(200)]
    assert picks == [uses_teacher_text(0, [i, i + 1], 0.5) for i in range(200)]
    assert 60 < sum(picks) < 140  # about half
    assert not any(uses_teacher_text(0, [i], 0.0) for i in range(50))
    assert all(uses_teacher_text(0, [i], 1.0) for i in range(50))


def test_the_budget_stops_training_and_is_reported(tmp_path, tiny_model_dir, tiny_task):
    pipe, log = _run(tmp_path, "budget", tiny_model_dir, tiny_task, method="onpolicy",
                     onpolicy={"teacher": f"hf:{tiny_model_dir}", "budget_tokens": 1, "max_new_tokens": 4})
    summary = pipe.stages["train"].path / "MANIFEST.json"
    import json

    s = json.loads(summary.read_text())["summary"]
    assert len(log) == 1 and s["steps"] == 1 and s["stopped_by"] == "tokens"
    assert s["tokens"]["total"] == log[-1]["passes"] > 0


@pytest.mark.precision("fp32")
def test_a_killed_onpolicy_run_resumes_to_the_same_curve(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    teacher = f"hf:{_peaked_teacher(tmp_path / 'teacher')}"
    settings = {"method": "onpolicy", "epochs": 3, "checkpoint_every": 2,
                "onpolicy": {"teacher": teacher, "match_sft": False, "max_new_tokens": 5, "lambda": 0.3}}
    _, whole = _run(tmp_path, "whole", tiny_model_dir, tiny_task, **settings)
    undo = die_after_checkpoint(monkeypatch, 1)
    cfg = load_config(write_tiny_config(tmp_path / "killed", tiny_model_dir, tiny_task, train=settings))
    with pytest.raises(KeyboardInterrupt):
        Pipeline(cfg, progress=False, echo=lambda m: None).run("train")
    undo()
    _, resumed = _run(tmp_path, "killed", tiny_model_dir, tiny_task, **settings)
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in whole], rel=1e-5)
    assert [r["on_policy"] for r in resumed] == [r["on_policy"] for r in whole]


@pytest.mark.precision("fp32")
def test_onpolicy_across_tokenizers_scores_the_students_text_in_the_teachers_tokens(tmp_path, tiny_model_dir,
                                                                                     tiny_task, monkeypatch):
    from tiny import CORPUS, build_tiny_model

    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    # through the alignment with the student as its own teacher: still zero at the first step
    _, itself = _run(tmp_path, "self", tiny_model_dir, tiny_task, method="onpolicy",
                     onpolicy={"teacher": f"hf:{tiny_model_dir}", "cross_tokenizer": "align", "match_sft": False,
                               "max_new_tokens": 6})
    assert abs(itself[0]["loss"]) < 1e-7
    other = build_tiny_model(tmp_path / "other", seed=3, corpus=CORPUS[::-1] + ["yes no even odd"], vocab_size=270)
    pipe, log = _run(tmp_path, "cross", tiny_model_dir, tiny_task, method="onpolicy",
                     onpolicy={"teacher": f"hf:{other}", "match_sft": False, "max_new_tokens": 6})
    import json

    summary = json.loads((pipe.stages["train"] / "MANIFEST.json").read_text())["summary"]
    assert summary["cross_tokenizer"] is True and all(r["on_policy"] for r in log)
    assert all(r["kd"] > 0 for r in log) and 0 < min(r["aligned"] for r in log) <= 1


@pytest.mark.precision("fp32")
@pytest.mark.parametrize("kill_at", [1, 3])  # before the first checkpoint (every 2 steps), and between two
def test_a_run_killed_between_checkpoints_counts_each_step_once(tmp_path, tiny_model_dir, tiny_task, monkeypatch,
                                                                kill_at):
    """The killed run logged steps after its last checkpoint; the rerun redoes them: the log is cut back to the
    checkpoint, so the redone steps' records are the new ones and the token passes carried on from the log are
    the unbroken run's, not those steps counted twice (session 37 lost a 2-step run that way)."""
    import protege.train.onpolicy as onpolicy

    teacher = f"hf:{_peaked_teacher(tmp_path / 'teacher')}"
    settings = {"method": "onpolicy", "epochs": 3, "checkpoint_every": 2,
                "onpolicy": {"teacher": teacher, "match_sft": False, "max_new_tokens": 5}}
    _, whole = _run(tmp_path, "whole", tiny_model_dir, tiny_task, **settings)
    real_stop = onpolicy.Passes.stop

    def stop_then_die(self):
        if len(self.log.read()) == kill_at:
            raise KeyboardInterrupt(f"simulated kill after step {kill_at}")
        return real_stop(self)

    monkeypatch.setattr(onpolicy.Passes, "stop", stop_then_die)
    cfg = load_config(write_tiny_config(tmp_path / "killed", tiny_model_dir, tiny_task, train=settings))
    with pytest.raises(KeyboardInterrupt):
        Pipeline(cfg, progress=False, echo=lambda m: None).run("train")
    monkeypatch.setattr(onpolicy.Passes, "stop", real_stop)
    _, resumed = _run(tmp_path, "killed", tiny_model_dir, tiny_task, **settings)
    assert [r["step"] for r in resumed] == [r["step"] for r in whole]
    assert [r["passes"] for r in resumed] == [r["passes"] for r in whole]
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in whole], rel=1e-5)


@pytest.mark.precision("fp32")
def test_the_teachers_answer_logits_are_its_full_logits_at_those_positions(tmp_path, tiny_model_dir):
    """The teacher's output layer runs only at the answer positions (its full [B, T, V] logits ran a 24 GiB
    machine out of memory with a 152k vocabulary); the logits are the full forward's, picked."""
    from transformers import AutoModelForCausalLM

    from protege.train.shared_prefix import logits_picker

    teacher = AutoModelForCausalLM.from_pretrained(str(_peaked_teacher(tmp_path / "teacher"))).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [5, 6, 11, 12, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, 8, 9, 10], [-100, -100, 11, 12, -100, -100]])
    keep = labels[:, 1:] != -100
    with torch.no_grad():
        full = teacher(input_ids=ids, attention_mask=mask).logits[:, :-1][keep]
    picked = logits_picker(teacher, ids, mask, chunk_tokens=2)(torch.nn.functional.pad(keep, (0, 1)))
    assert picked.shape == full.shape == (5, teacher.config.vocab_size)
    assert torch.allclose(picked.float(), full.float(), atol=1e-5)
