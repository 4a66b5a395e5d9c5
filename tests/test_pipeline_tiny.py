"""The whole flow on a tiny random model: exact run-directory layout, reuse, and training that learns."""
import json

import pytest
import torch
from safetensors.torch import load_file

from protege.config import load_config
from protege.pipeline import STAGES, Pipeline
from tiny import write_tiny_config


def files_of(stage_dir):
    return sorted(str(p.relative_to(stage_dir)) for p in stage_dir.rglob("*") if p.is_file())


@pytest.fixture()
def finished(tmp_path, tiny_model_dir, tiny_task):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task))
    messages = []
    pipe = Pipeline(cfg, progress=False, echo=messages.append)
    pipe.run("report")
    return pipe, cfg, messages


def test_run_directory_layout(finished):
    pipe, cfg, _ = finished
    slug = f"hf_{str(pipe.cfg.train.student)[3:]}".replace("/", "_")
    expected = {
        "generate": ["MANIFEST.json", "config.yaml", "samples.jsonl"],
        "curate": ["MANIFEST.json", "config.yaml", "curation.json", "data/train.jsonl", "drops.jsonl",
                   "test-access.jsonl"],
        "train": ["MANIFEST.json", "adapter/README.md", "adapter/adapter_config.json",
                  "adapter/adapter_model.safetensors", "config.yaml", "train_log.jsonl"],
        "eval": sorted(["MANIFEST.json", "adapter.json", "config.yaml", "results.json",
                        f"samples/{slug}-fewshot.jsonl", f"samples/{slug}-zeroshot.jsonl",
                        "samples/finetuned-zeroshot.jsonl", "samples/cheap-baselines.jsonl",
                        "forgetting/tinyqa-before.jsonl", "forgetting/tinyqa-after.jsonl", "test-access.jsonl"]),
        "answers": ["MANIFEST.json", "config.yaml"],  # generate.mode=items: the items go to curation as written
        "report": ["MANIFEST.json", "config.yaml", "plots/confusion.png", "plots/cost.png", "plots/loss.png",
                   "plots/metric.png", "report.html", "report.md"],
    }
    task_dir = pipe.stages["generate"].path.parent
    stage_dirs = [p for p in task_dir.iterdir() if not p.name.startswith("eval-row-")]
    assert sorted(p.name.split("-")[0] for p in stage_dirs) == sorted(STAGES)
    # the rows that do not depend on training, shared by eval stages: the student zero- and few-shot (the
    # teacher is the same model, prompted the same way as the few-shot row)
    shared = sorted(files_of(p) for p in task_dir.glob("eval-row-*"))
    assert shared == [[".lock", "memory.json", "samples.jsonl"]] * 2
    for name in STAGES:
        stage = pipe.stages[name]
        assert stage.path.name == f"{name}-{stage.key}"
        assert files_of(stage.path) == sorted(expected[name] + ["attempts.json"]), name


def test_results_hold_rows_metrics_and_provenance(finished):
    pipe, _, _ = finished
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    assert [r["row"] for r in results["rows"]] == ["baseline (zero-shot)", "baseline (few-shot)", "fine-tuned",
                                                   "teacher (few-shot)"]
    for row in results["rows"]:
        lo, hi = row["accuracy_ci"]
        assert 0 <= lo <= row["accuracy"] <= hi <= 1 and row["n"] == 12
    assert [b["row"].split(" (")[0] for b in results["baselines"]] == ["majority class", "TF-IDF + logistic regression"] * 2
    assert results["versions"]["torch"] and results["date"]
    samples = [json.loads(l) for l in (pipe.stages["eval"] / "samples" / "finetuned-zeroshot.jsonl").open()]
    assert len(samples) == 12 and all(len(s["prompt_hash"]) == 16 for s in samples)
    report = (pipe.stages["report"] / "report.md").read_text()
    assert "| fine-tuned |" in report and "| baseline (zero-shot) |" in report


def test_second_run_reuses_every_stage(finished):
    pipe, cfg, _ = finished
    messages = []
    Pipeline(cfg, progress=False, echo=messages.append).run("report")
    assert messages == [f"[{s}] reused {pipe.stages[s].path}" for s in STAGES]


def test_changing_train_config_keeps_upstream_stages(finished):
    pipe, cfg, _ = finished
    changed = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})})
    other = Pipeline(changed, progress=False, echo=lambda m: None)
    assert other.stages["curate"].path == pipe.stages["curate"].path
    assert other.stages["train"].path != pipe.stages["train"].path


def test_training_changes_adapter_parameters(finished, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    pipe, cfg, _ = finished
    trained = load_file(pipe.stages["train"] / "adapter" / "adapter_model.safetensors")
    fresh = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    initial = get_peft_model_state_dict(fresh)
    lora_b = [k for k in trained if "lora_B" in k]
    assert lora_b, "adapter has no LoRA B matrices"
    for key in lora_b:
        assert torch.count_nonzero(initial[key]) == 0  # PEFT starts B at zero
        assert torch.count_nonzero(trained[key]) > 0, f"{key} did not move"
    log = [json.loads(l) for l in (pipe.stages["train"] / "train_log.jsonl").open()]
    assert [r["step"] for r in log] == list(range(1, len(log) + 1))


def test_paired_tests_compare_fine_tuned_with_every_other_row(finished):
    pipe, _, _ = finished
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    samples = pipe.stages["eval"] / "samples"
    tuned = {json.loads(l)["id"]: json.loads(l)["correct"] for l in (samples / "finetuned-zeroshot.jsonl").open()}
    zero_file = next(p for p in samples.glob("*-zeroshot.jsonl") if not p.name.startswith("finetuned"))
    zero = {json.loads(l)["id"]: json.loads(l)["correct"] for l in zero_file.open()}
    comp = next(c for c in results["comparisons"] if c["model_b"] == "baseline (zero-shot)")
    assert comp["only_a_right"] == sum(tuned[i] and not zero[i] for i in tuned)
    assert comp["only_b_right"] == sum(zero[i] and not tuned[i] for i in tuned)
    assert 0 <= comp["p_value"] <= 1
    assert [c["model_b"] for c in results["comparisons"]] == ["baseline (zero-shot)", "baseline (few-shot)",
                                                              "teacher (few-shot)"]


def test_access_log_counts_exactly_the_final_evaluations(finished):
    pipe, _, _ = finished
    log = [json.loads(l) for l in (pipe.stages["eval"] / "test-access.jsonl").open()]
    own = [r for r in log if r["task"] == "tiny"]
    # zero-shot, few-shot and fine-tuned; the teacher row is the student few-shot again, computed once
    assert [r["who"] for r in own] == ["baseline (zero-shot)", "baseline (few-shot)", "fine-tuned"]
    assert all(r["purpose"] == "final evaluation" and r["items"] == 12 for r in own)
    assert [(r["task"], r["who"]) for r in log if r["task"] != "tiny"] == [("tinyqa", "forgetting suite")]
    # what needs no adapter first, the suite's untuned half included; the fine-tuned student's row last
    assert [r["who"] for r in log] == ["baseline (zero-shot)", "baseline (few-shot)", "forgetting suite", "fine-tuned"]
    curate_log = [json.loads(l) for l in (pipe.stages["curate"] / "test-access.jsonl").open()]
    assert [r["purpose"] for r in curate_log] == ["decontamination"]
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    assert results["test_reads"] == 3
    assert "Test-set reads in this run: 3 final evaluations" in (pipe.stages["report"] / "report.md").read_text()


def test_another_training_reuses_the_baseline_and_teacher_rows(finished, monkeypatch):
    """A second eval stage of the same task computes only its fine-tuned row; the rows that do not depend on
    training are read from the first stage's shared records, and each stage keeps its own identical copy."""
    import protege.evaluate.model_eval as stage_module  # evaluate_measured calls it there

    pipe, cfg, _ = finished
    scored = []
    real = stage_module.evaluate_lm
    monkeypatch.setattr(stage_module, "evaluate_lm", lambda *a, **k: scored.append(k["desc"]) or real(*a, **k))
    changed = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})})
    other = Pipeline(changed, progress=False, echo=lambda m: None)
    other.run("eval")
    assert scored == ["eval fine-tuned"]
    for sample in (pipe.stages["eval"] / "samples").glob("*-*shot.jsonl"):
        if not sample.name.startswith("finetuned"):
            assert (other.stages["eval"] / "samples" / sample.name).read_text() == sample.read_text()
    first = json.loads((pipe.stages["eval"] / "results.json").read_text())["rows"]
    second = json.loads((other.stages["eval"] / "results.json").read_text())["rows"]
    assert [r["accuracy"] for r in first if r["row"] != "fine-tuned"] == \
        [r["accuracy"] for r in second if r["row"] != "fine-tuned"]


def test_a_finished_evaluation_without_its_training_stage_is_read_not_retrained(finished):
    """As on a machine that was handed the eval stage (`protege runs unpack`) but not the adapter: a run to eval
    reuses the evaluation and leaves the missing training stage alone; the train summary comes from results.json.
    A run to the report, which reads the train log, still needs the training stage and runs it."""
    import shutil

    pipe, cfg, _ = finished
    summary = json.loads((pipe.stages["train"] / "MANIFEST.json").read_text())["summary"]
    assert json.loads((pipe.stages["eval"] / "results.json").read_text())["train"] == summary
    shutil.rmtree(pipe.stages["train"].path)
    messages = []
    again = Pipeline(cfg, progress=False, echo=messages.append)
    again.run("eval")
    assert not pipe.stages["train"].path.exists()
    assert messages[3] == "[train] not needed: every stage after it up to eval is finished"
    assert messages[4] == f"[eval] reused {pipe.stages['eval'].path}"
    assert again.train_summary() == summary
    shutil.rmtree(pipe.stages["report"].path)
    again.run("report")
    assert again.stages["train"].complete


def test_rows_that_need_no_adapter_are_scored_before_the_fine_tuned_student(tmp_path, tiny_model_dir, tiny_task):
    """A teacher row of its own (2 shots) is scored with the baselines and the suite's untuned half, before the
    fine-tuned student loads; results.json still lists the rows in their usual order."""
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, eval={"teacher_shots": 2}))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("eval")
    log = [json.loads(l) for l in (pipe.stages["eval"] / "test-access.jsonl").open()]
    assert [r["who"] for r in log] == ["baseline (zero-shot)", "baseline (few-shot)", "teacher (few-shot)",
                                       "forgetting suite", "fine-tuned"]
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    assert [r["row"] for r in results["rows"]] == ["baseline (zero-shot)", "baseline (few-shot)", "fine-tuned",
                                                   "teacher (few-shot)"]
