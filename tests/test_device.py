"""The device setting (models/device.py) and the same model paths on a GPU.

The setting tests run everywhere. The `requires_cuda` tests run generation (both decoders, greedy and sampled),
label scoring, a LoRA training step, the KD cache and cooperative sampling on cuda and check them against the
CPU within a stated tolerance; they skip without a GPU (scripts/gpu-check.sh runs them where there is one).
"""
import pytest
import torch
from typer.testing import CliRunner

from markers import cuda_available, requires_cuda
from protege.cli import app
from protege.config import load_config
from protege.errors import ConfigError
from protege.models.base import GenerationConfig
from protege.models.device import DeviceUnavailable, check_device, resolve_device, use_device
from protege.models.local import LocalLM
from protege.pipeline import Pipeline
from tiny import NO_ENCODER, write_tiny_config


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:", "CPU", ""])
def test_a_device_setting_must_be_one_of_the_forms(bad):
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        check_device(bad, "device")


def test_auto_means_the_cpu_without_a_gpu_and_the_setting_nests(monkeypatch):
    monkeypatch.delenv("PROTEGE_DEVICE", raising=False)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda:0" if cuda_available() else "cpu")
    monkeypatch.setenv("PROTEGE_DEVICE", "cpu")
    assert resolve_device() == "cpu"
    with use_device("auto"):
        assert resolve_device() == ("cuda:0" if cuda_available() else "cpu")
    assert resolve_device() == "cpu"


@pytest.mark.skipif(cuda_available(), reason="a GPU is here")
def test_a_gpu_that_is_not_there_is_a_clear_error(tmp_path, tiny_model_dir, tiny_task):
    with pytest.raises(DeviceUnavailable, match="torch sees no GPU"):
        resolve_device("cuda:1")
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task), ["device=cuda"])
    with pytest.raises(ConfigError, match="device cuda: torch sees no GPU"):
        Pipeline(cfg, progress=False, echo=lambda m: None)
    result = CliRunner().invoke(app, ["--device", "gpu", "baselines"])
    assert result.exit_code == 2 and "auto, cpu, cuda or cuda:N" in result.output


def test_the_cpu_setting_keeps_every_stage_key(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    """Runs made before the setting existed (all on the CPU) are reused: device: cpu adds nothing to a key."""
    monkeypatch.delenv("PROTEGE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # auto means the CPU, as before the setting
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    plain = Pipeline(load_config(path), progress=False, echo=lambda m: None)
    pinned = Pipeline(load_config(path, ["device=cpu"]), progress=False, echo=lambda m: None)
    assert {n: s.key for n, s in plain.stages.items()} == {n: s.key for n, s in pinned.stages.items()}


def test_models_are_created_on_the_device_in_force(tiny_model_dir):
    with use_device("cpu"):
        lm = LocalLM.from_dir(tiny_model_dir)
    assert lm.device == "cpu" and next(lm.model.parameters()).device.type == "cpu"


# -- the same paths on a GPU ------------------------------------------------------------------------------------
PROMPTS = ["Paris is a location .", "Who wrote Hamlet ?", "What is the capital of France ?"]


@requires_cuda
@pytest.mark.precision("fp32")
@pytest.mark.parametrize("shared", [True, False], ids=["shared-prefix-decode", "transformers-generate"])
def test_generation_and_scoring_on_cuda_match_the_cpu(tiny_model_dir, shared):
    torch.backends.cuda.matmul.allow_tf32 = False
    cpu, gpu = LocalLM.from_dir(tiny_model_dir, device="cpu"), LocalLM.from_dir(tiny_model_dir, device="cuda:0")
    cpu.shared_decoding = cpu.shared_decoding and shared
    gpu.shared_decoding = gpu.shared_decoding and shared
    greedy = GenerationConfig(max_new_tokens=6)
    assert [g.text for g in gpu.generate(PROMPTS, greedy)] == [g.text for g in cpu.generate(PROMPTS, greedy)]
    sampled = gpu.generate(PROMPTS, GenerationConfig(max_new_tokens=6, temperature=0.8, seed=3))
    assert all(g.tokens_out > 0 for g in sampled)
    a, b = cpu.score_many(PROMPTS, [" yes", " no"]), gpu.score_many(PROMPTS, [" yes", " no"])
    assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-3)


@requires_cuda
def test_a_lora_step_and_the_kd_cache_run_on_cuda(tmp_path, tiny_model_dir, tiny_task):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, curate=NO_ENCODER,
                                        train={"method": "kd", "kd": {"alpha": 0.5, "top_k": 8}}), ["device=cuda"])
    stage = Pipeline(cfg, progress=False, echo=lambda m: None).run("train")
    assert (stage.path / "adapter" / "adapter_config.json").exists()
    assert list(tmp_path.glob("runs/*/kd-cache-*/meta.json"))


@requires_cuda
def test_cooperative_sampling_runs_on_cuda(tiny_model_dir):
    from protege.cooperative.session import LocalSession

    session = LocalSession(LocalLM.from_dir(tiny_model_dir, device="cuda:0"), PROMPTS[0], temperature=1.0, seed=1)
    chunk = session.step(4)  # a proposal: nothing is part of the answer until it is appended
    assert chunk.n_tokens > 0 and session.answer_ids == []
    session.append(chunk.text)
    assert session.text == chunk.text and session.lm.tokenizer.decode(session.answer_ids) == chunk.text


@requires_cuda
@pytest.mark.precision("bf16")
def test_on_a_gpu_weights_load_in_the_compute_dtype(tiny_model_dir):
    gpu = LocalLM.from_dir(tiny_model_dir, device="cuda:0")
    assert next(gpu.model.parameters()).dtype == torch.bfloat16
    assert gpu.generate(PROMPTS[:1], GenerationConfig(max_new_tokens=4))[0].tokens_out > 0
    cpu = LocalLM.from_dir(tiny_model_dir, device="cpu")
    assert next(cpu.model.parameters()).dtype == torch.float32  # the CPU keeps fp32 weights under bf16 autocast
