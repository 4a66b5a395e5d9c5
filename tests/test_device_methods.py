"""The training methods and the cooperative answers on a GPU: each runs end to end with device=cuda on tiny models
and leaves what it leaves on the CPU. They skip without a GPU; scripts/gpu-check.sh runs them where one is
(beside tests/test_device.py, which checks generation and scoring against the CPU).

    scripts/gpu-check.sh                       # on the GPU machine
    pytest -q tests/test_device_methods.py     # here: every test skips, naming why
"""
import json
import math

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from markers import requires_cuda
from tiny import NO_ENCODER, build_tiny_model, write_tiny_config


def _pipe(tmp_path, model_dir, task, device="cuda", **sections):
    sections["curate"] = {**NO_ENCODER, **sections.get("curate", {})}
    cfg = load_config(write_tiny_config(tmp_path, model_dir, task, **sections), [f"device={device}"])
    return Pipeline(cfg, progress=False, echo=lambda m: None)


def _train_log(pipe):
    return JsonlLog(pipe.stages["train"] / "train_log.jsonl").read()


@requires_cuda
def test_the_whole_flow_runs_on_cuda_and_keys_on_the_device(tmp_path, tiny_model_dir, tiny_task):
    pipe = _pipe(tmp_path, tiny_model_dir, tiny_task)
    cpu = _pipe(tmp_path / "cpu", tiny_model_dir, tiny_task, device="cpu")
    assert pipe.stages["eval"].key != cpu.stages["eval"].key
    pipe.run("eval")
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    assert results, "the eval stage wrote no results"
    assert all(math.isfinite(r["loss"]) for r in _train_log(pipe))


@requires_cuda
def test_onpolicy_distillation_trains_on_cuda(tmp_path, tiny_model_dir, tiny_task):
    teacher = build_tiny_model(tmp_path / "teacher", seed=3)
    pipe = _pipe(tmp_path, tiny_model_dir, tiny_task, train={
        "method": "onpolicy", "onpolicy": {"teacher": f"hf:{teacher}", "match_sft": False, "max_new_tokens": 6}})
    pipe.run("train")
    log = _train_log(pipe)
    assert log and all(r["on_policy"] for r in log) and all(math.isfinite(r["loss"]) for r in log)
    assert log[0]["loss"] > 0  # another teacher: a real divergence, not the zero of a student taught by itself
    assert (pipe.stages["train"] / "adapter" / "adapter_config.json").exists()


@requires_cuda
def test_grpo_runs_on_cuda_within_its_budget(tmp_path, tiny_model_dir, tiny_task):
    pipe = _pipe(tmp_path, tiny_model_dir, tiny_task, train={
        "method": "rl", "rl": {"num_generations": 2, "prompts_per_step": 2, "max_completion_length": 4}})
    pipe.run("train")
    summary = json.loads((pipe.stages["train"] / "MANIFEST.json").read_text())["summary"]
    assert summary["stopped_by"] == "tokens" and summary["tokens"]["total"] >= summary["budget"]["tokens"]
    assert (pipe.stages["train"] / "adapter" / "adapter_config.json").exists()


@requires_cuda
def test_cooperative_answers_with_span_handoffs_run_on_cuda(tmp_path, tiny_model_dir):
    from protege.models.resolve import load_lm
    from protege.synth.answers import run_answers
    from test_answer_modes import _math_task

    student_dir = build_tiny_model(tmp_path / "student", seed=1)
    task = _math_task(tmp_path / "task")
    pipe = _pipe(tmp_path, tiny_model_dir, task, generate={
        "mode": "cooperative", "student": f"hf:{student_dir}",
        "cooperative": {"max_new_tokens": 24, "final_markers": [], "handoff": "clause"}})
    generate, stage = pipe.stages["generate"], pipe.stages["answers"]
    generate.start({})
    JsonlLog(generate / "samples.jsonl").append(
        [{"id": f"gen-{i}", "ok": True, "text": f"What is {i} + 1 ?", "answers": [str(i + 1)]} for i in range(3)])
    teacher, student = load_lm(f"hf:{tiny_model_dir}", device="cuda:0"), load_lm(f"hf:{student_dir}", device="cuda:0")
    assert next(teacher.model.parameters()).is_cuda and next(student.model.parameters()).is_cuda
    summary = run_answers(pipe.spec, pipe.cfg, generate, stage, teacher, student, progress=False)
    records = JsonlLog(stage / "answers.jsonl").read()
    assert summary["answered"] == 3 and len(records) == 3
    for r in records:
        assert "".join(s["text"] for s in r["spans"]) == r["raw"]
        assert {s["by"] for s in r["spans"]} <= {"teacher", "student"}
