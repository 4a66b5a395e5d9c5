"""generate.quantize=int8: a separate int8 copy of a local teacher, and a generate key that changes only when set."""
import torch

from protege.config import load_config
from protege.models.base import GenerationConfig
from protege.models.resolve import load_lm
from protege.pipeline import Pipeline
from tiny import write_tiny_config


def test_int8_teacher_is_a_separate_quantised_copy(tiny_model_dir):
    plain = load_lm(f"hf:{tiny_model_dir}")
    int8 = load_lm(f"hf:{tiny_model_dir}", quantize="int8")
    assert int8 is not plain and load_lm(f"hf:{tiny_model_dir}", quantize="int8") is int8
    kinds = {type(m).__name__ for m in int8.model.modules()}
    assert "Linear" in kinds and any("quantized" in type(m).__module__ for m in int8.model.modules())
    assert all("quantized" not in type(m).__module__ for m in plain.model.modules())
    assert all(p.dtype == torch.float32 for p in plain.model.parameters())
    out = int8.generate(["What is the capital of France ?"], GenerationConfig(max_new_tokens=5))
    assert out[0].tokens_out > 0


def test_generate_key_changes_only_when_quantize_is_set(tmp_path, tiny_model_dir, tiny_task):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task))
    plain = Pipeline(cfg, progress=False, echo=lambda m: None)
    quantised = cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"quantize": "int8"})})
    other = Pipeline(quantised, progress=False, echo=lambda m: None)
    assert "quantize" not in plain._key_section("generate")
    assert other.stages["generate"].path != plain.stages["generate"].path
