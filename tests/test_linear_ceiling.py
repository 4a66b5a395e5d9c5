"""The Linear-layer ceiling bench counts the same weights in the float and the int8 model, and runs on both."""
import torch
from transformers import AutoModelForCausalLM

from protege.lab.throughput.linear_ceiling import linear_ceiling, linear_params
from protege.models.quantize import int8_dynamic


def test_float_and_int8_models_count_the_same_linear_weights(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    expected = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert linear_params(model) == expected == linear_params(int8_dynamic(model))
    for m, precision in ((model, "fp32"), (model, "bf16"), (int8_dynamic(model), "fp32"), (int8_dynamic(model), "bf16")):
        rows = linear_ceiling(m, [1, 4], repeats=1, precision=precision)
        assert [r["batch"] for r in rows] == [1, 4] and all(r["ms_per_step"] >= 0 for r in rows)
