"""train.method picks the objective; each runs through the pipeline's train stage and leaves an adapter that
the eval stage loads."""
import json

from protege.config import load_config
from protege.models.base import Generation
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from tiny import write_tiny_config


class AlternatingTeacher:
    """Answers every prompt yes on one call and no on the next, so each prompt's two samples are one right and
    one wrong answer."""

    name = "alternating"

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, config, progress=False):
        text = "yes" if self.calls % 2 == 0 else "no"
        self.calls += 1
        return [Generation(text=text, tokens_in=3, tokens_out=1) for _ in prompts]


def test_dpo_method_builds_pairs_from_the_teachers_right_and_wrong_answers(tmp_path, tiny_model_dir, tiny_task,
                                                                          monkeypatch):
    import protege.synth.teacher as teacher

    config = write_tiny_config(tmp_path, tiny_model_dir, tiny_task,
                               train={"method": "dpo", "dpo": {"samples_per_prompt": 2, "batch_size": 4}})
    pipe = Pipeline(load_config(config), progress=False, echo=lambda m: None)
    pipe.run("curate")
    monkeypatch.setattr(teacher, "load_teacher", lambda cfg, stage: AlternatingTeacher())
    pipe.run("train")
    stage = pipe.stages["train"]
    summary = json.loads((stage / "MANIFEST.json").read_text())["summary"]
    prefs = JsonlLog(stage / "preferences.jsonl").read()
    rows = len(pipe._curated_rows()) + len(pipe.spec.seed_examples())
    assert len(prefs) == rows
    # with one yes and one no per prompt, exactly one of them matches each item's label: one pair per prompt
    assert summary["preferences"]["pairs"] == rows and summary["method"] == "dpo"
    for rec in prefs:
        assert {rec["pairs"][0]["chosen"], rec["pairs"][0]["rejected"]} == {"yes", "no"}
    assert (stage / "adapter" / "adapter_model.safetensors").exists()
    pipe.run("eval")  # the DPO adapter loads like the SFT one


def test_rl_method_spends_the_budget_sft_would(tmp_path, tiny_model_dir, tiny_task):
    config = write_tiny_config(tmp_path, tiny_model_dir, tiny_task,
                               train={"method": "rl", "rl": {"num_generations": 2, "prompts_per_step": 2,
                                                             "max_completion_length": 4}})
    pipe = Pipeline(load_config(config), progress=False, echo=lambda m: None)
    pipe.run("train")
    summary = json.loads((pipe.stages["train"] / "MANIFEST.json").read_text())["summary"]
    from protege.models.resolve import load_lm
    from protege.train.grpo import sft_tokens
    from protege.train.sft import build_examples

    rows = pipe._curated_rows() + [s.model_dump(exclude_none=True) for s in pipe.spec.seed_examples()]
    lm = load_lm(pipe.cfg.train.student)
    expected = sft_tokens(build_examples(pipe.spec, rows, lm, pipe.cfg.train.max_seq_len), pipe.cfg.train.epochs)
    assert summary["budget"]["tokens"] == expected
    assert summary["stopped_by"] == "tokens" and summary["tokens"]["total"] >= expected
    assert (pipe.stages["train"] / "adapter" / "adapter_config.json").exists()


def test_changing_another_methods_settings_keeps_the_trained_stage(tmp_path, tiny_model_dir, tiny_task):
    base = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task))
    other = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, train={"dpo": {"beta": 0.5}}))
    kd = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, train={"method": "kd"}))
    key = lambda cfg: Pipeline(cfg, progress=False, echo=lambda m: None).stages["train"].path
    assert key(base) == key(other) != key(kd)
