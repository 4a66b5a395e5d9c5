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
    monkeypatch.setattr(teacher, "load_teacher", lambda cfg, stage, role="items": AlternatingTeacher())
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
    from protege.train.rl import sft_tokens
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


def test_dpo_from_sft_goes_on_training_the_sft_adapter_against_itself(tmp_path, tiny_model_dir, tiny_task,
                                                                     monkeypatch):
    """train.dpo.start=sft: the run's SFT stage is trained first, DPO continues its adapter (same rank), and the
    reference policy is that adapter, not the bare student: at the first step the policy and the reference are
    the same model, so both rewards are 0 (with the bare student as reference they would not be)."""
    import protege.synth.teacher as teacher
    from safetensors.torch import load_file

    train = {"method": "dpo", "lora_rank": 8, "dpo": {"start": "sft", "samples_per_prompt": 2, "batch_size": 4,
                                                       "lora_rank": 4}}
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, train=train))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    monkeypatch.setattr(teacher, "load_teacher", lambda cfg, stage, role="items": AlternatingTeacher())
    pipe.run("train")
    sft_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"method": "sft"})})
    sft = Pipeline(sft_cfg, progress=False, echo=lambda m: None).stages["train"]
    assert sft.complete and sft.path != pipe.stages["train"].path
    dpo = pipe.stages["train"]
    summary = json.loads((dpo / "MANIFEST.json").read_text())["summary"]
    assert summary["start"] == "sft" and summary["start_adapter"] == str(sft.path / "adapter")
    assert json.loads((dpo / "adapter" / "adapter_config.json").read_text())["r"] == 8  # SFT's rank, not DPO's 4
    assert not (dpo / "adapter" / "ref").exists()  # TRL's frozen reference copy is not saved
    before, after = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (sft, dpo))
    assert before.keys() == after.keys() and any((before[k] != after[k]).any() for k in before)
    first = JsonlLog(dpo / "train_log.jsonl").read()[0]
    assert abs(first["rewards/chosen"]) < 1e-4 and abs(first["rewards/rejected"]) < 1e-4
    pipe.run("eval")


def test_dpo_from_the_base_student_keeps_its_stage_key():
    from protege.config import TrainConfig

    assert "start" not in TrainConfig(method="dpo").stage_key()["dpo"]
    assert TrainConfig(method="dpo", dpo={"start": "sft"}).stage_key()["dpo"]["start"] == "sft"


def test_rl_from_sft_goes_on_training_the_sft_adapter_with_it_as_the_kl_reference(tmp_path, tiny_model_dir,
                                                                                  tiny_task, monkeypatch):
    """train.rl.start=sft: GRPO continues the run's SFT adapter (trained first), and with beta > 0 the KL term's
    reference is that adapter: at the first step policy and reference are one model, so the KL is 0 (against the
    bare student it would not be: the tiny SFT at lr 1e-2 moves the model far)."""
    import protege.train.judge as judge
    from safetensors.torch import load_file

    # The tiny model never writes a label, so the real judge gives every answer 0 and GRPO has nothing to learn
    # from; alternate 1 and 0 instead, so each group of two answers has one better than the other.
    monkeypatch.setattr(judge, "judge", lambda spec, items, texts, **kw: [float(i % 2) for i in range(len(texts))])
    train = {"method": "rl", "lora_rank": 8, "rl": {"start": "sft", "beta": 0.1, "num_generations": 2,
                                                    "prompts_per_step": 2, "max_completion_length": 4,
                                                    "lora_rank": 4, "max_steps": 2, "match_sft": False, "lr": 1e-2}}
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, train=train))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("train")
    sft_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"method": "sft"})})
    sft = Pipeline(sft_cfg, progress=False, echo=lambda m: None).stages["train"]
    rl = pipe.stages["train"]
    assert sft.complete and sft.path != rl.path
    summary = json.loads((rl / "MANIFEST.json").read_text())["summary"]
    assert summary["start"] == "sft" and summary["start_adapter"] == str(sft.path / "adapter")
    assert json.loads((rl / "adapter" / "adapter_config.json").read_text())["r"] == 8  # SFT's rank, not RL's 4
    assert not (rl / "adapter" / "ref").exists()
    before, after = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (sft, rl))
    assert before.keys() == after.keys() and any((before[k] != after[k]).any() for k in before)
    steps = [r for r in JsonlLog(rl / "train_log.jsonl").read() if "kl" in r]
    assert steps and abs(steps[0]["kl"]) < 1e-5 < steps[-1]["kl"]  # 0 until the policy moves off the reference
    pipe.run("eval")


def test_rl_from_the_base_student_keeps_its_stage_key():
    from protege.config import TrainConfig

    assert "start" not in TrainConfig(method="rl").stage_key()["rl"]
    assert TrainConfig(method="rl", rl={"start": "sft"}).stage_key()["rl"]["start"] == "sft"


def test_trl_configs_get_the_checkpointing_switch_by_the_name_their_transformers_has():
    """transformers 5.17 (the lent GPU machine's) has only `gradient_checkpointing`; newer ones renamed it."""
    import dataclasses

    from protege.train.dpo import checkpointing_field

    old = dataclasses.make_dataclass("Old", [("gradient_checkpointing", bool, False)])
    new = dataclasses.make_dataclass("New", [("gradient_checkpointing", bool, False),
                                             ("activation_checkpointing", bool, False)])
    assert checkpointing_field(old) == "gradient_checkpointing"
    assert checkpointing_field(new) == "activation_checkpointing"
