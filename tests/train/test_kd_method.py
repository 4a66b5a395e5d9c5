"""train.method=kd through the pipeline: alpha 0 is SFT, the cache matches the online teacher, a killed run
resumes to the same curve, and a teacher with another vocabulary is refused with a way forward."""
import shutil

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from interrupt import die_after_checkpoint
from tiny import build_tiny_model, write_tiny_config


def _peaked_teacher(folder):
    """Another random tiny model (same tokenizer) whose logits are scaled up 30x: a random-init model is near
    uniform, where KD is ~1e-3 and float16 rounding of log-probabilities is as large as the signal."""
    import torch
    from transformers import AutoModelForCausalLM

    build_tiny_model(folder, seed=1)
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    with torch.no_grad():
        model.model.norm.weight.mul_(30.0)
    model.save_pretrained(str(folder))
    return folder


def _losses(tmp_path, name, model_dir, task, curate=None, **train):
    cfg = load_config(write_tiny_config(tmp_path / name, model_dir, task, train=train, curate=curate or {}))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("train")
    return pipe, [r for r in JsonlLog(pipe.stages["train"] / "train_log.jsonl").read()]


def test_kd_at_alpha_zero_follows_the_sft_loss_curve(tmp_path, tiny_model_dir, tiny_task):
    _, sft = _losses(tmp_path, "sft", tiny_model_dir, tiny_task)
    _, kd = _losses(tmp_path, "kd", tiny_model_dir, tiny_task, method="kd", kd={"alpha": 0.0})
    assert [r["loss"] for r in kd] == pytest.approx([r["loss"] for r in sft], rel=1e-4)


@pytest.mark.precision("fp32")  # the cache is written in batches of other shapes than training's: equal in fp32
def test_cached_teacher_logits_give_the_online_loss_curve(tmp_path, tiny_model_dir, tiny_task):
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(str(tiny_model_dir)))
    teacher = _peaked_teacher(tmp_path / "teacher")
    # every token kept: only float16 storage differs
    kd = {"alpha": 0.7, "temperature": 2.0, "top_k": vocab, "teacher": f"hf:{teacher}"}
    pipe, cached = _losses(tmp_path, "cache", tiny_model_dir, tiny_task, method="kd", kd={**kd, "signal": "cache"})
    _, online = _losses(tmp_path, "online", tiny_model_dir, tiny_task, method="kd", kd={**kd, "signal": "online"})
    assert [r["kd"] for r in cached] == pytest.approx([r["kd"] for r in online], rel=1e-3)
    assert [r["loss"] for r in cached] == pytest.approx([r["loss"] for r in online], rel=1e-3)
    assert all(r["kd"] > 0.1 for r in online)  # another, peaked model: far from the student
    summary = (pipe.stages["train"] / "MANIFEST.json").read_text()
    assert "cache_bytes_per_token" in summary and list(pipe.stages["train"].path.parent.glob("kd-cache-*"))


def test_kd_run_killed_midway_resumes_to_the_same_loss_curve(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    kd = {"alpha": 0.5, "top_k": 16, "teacher": f"hf:{build_tiny_model(tmp_path / 'teacher', seed=1)}"}
    _, reference = _losses(tmp_path, "unbroken", tiny_model_dir, tiny_task, method="kd", kd=kd, epochs=3)
    cfg = load_config(write_tiny_config(tmp_path / "broken", tiny_model_dir, tiny_task,
                                        train={"method": "kd", "kd": kd, "epochs": 3}))
    broken = Pipeline(cfg, progress=False, echo=lambda m: None)
    undo = die_after_checkpoint(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        broken.run("train")
    undo()
    broken.run("train")
    resumed = JsonlLog(broken.stages["train"] / "train_log.jsonl").read()
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in reference], rel=1e-5)


def test_a_teacher_with_another_vocabulary_is_refused_with_the_way_forward(tmp_path, tiny_model_dir, tiny_task):
    from transformers import AutoTokenizer

    other = tmp_path / "other-teacher"
    shutil.copytree(tiny_model_dir, other)
    tok = AutoTokenizer.from_pretrained(str(other))
    tok.add_tokens(["zzzunseen"])
    tok.save_pretrained(str(other))
    cfg = load_config(write_tiny_config(tmp_path / "run", tiny_model_dir, tiny_task,
                                        train={"method": "kd", "kd": {"teacher": f"hf:{other}",
                                                                      "cross_tokenizer": "refuse"}}))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    with pytest.raises(ValueError) as err:
        pipe.run("train")
    assert "train.method=sft" in str(err.value) and "prune" in str(err.value)
    assert "train.kd.cross_tokenizer=auto" in str(err.value)  # the option that distils across tokenizers


def test_a_finished_cache_serves_another_alpha_without_loading_the_teacher(tmp_path, tiny_model_dir, tiny_task,
                                                                           monkeypatch):
    import protege.train.kd as kd_module

    teacher = _peaked_teacher(tmp_path / "teacher")
    kd = {"temperature": 2.0, "top_k": 8, "teacher": f"hf:{teacher}", "signal": "cache"}
    first, _ = _losses(tmp_path, "sweep", tiny_model_dir, tiny_task, method="kd", kd={**kd, "alpha": 0.5})

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher was loaded although its logits are cached")

    monkeypatch.setattr(kd_module, "load_kd_teacher", no_teacher)
    second, log = _losses(tmp_path, "sweep", tiny_model_dir, tiny_task, method="kd", kd={**kd, "alpha": 0.8})
    assert second.stages["train"].path != first.stages["train"].path and log
    assert len(list(first.stages["train"].path.parent.glob("kd-cache-*"))) == 1
