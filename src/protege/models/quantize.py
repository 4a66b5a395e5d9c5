"""Dynamic int8 quantisation of a local model's Linear layers, for a teacher that only generates.

    model = int8_dynamic(model)     # weights int8 per channel, activations quantised on the fly

On a CPU without fast bf16 (AVX2 only) an int8 Linear runs about 2x fp32 (docs/experiments/
generation-throughput.md). Outputs change slightly, so it is a setting (`generate.quantize: int8`) that is part
of the generate stage key, never a silent default; models that train or are scored stay fp32.

Under bf16 (precision: bf16, or auto on an AMX/AVX-512 BF16 CPU) the int8 layers still take fp32 activations
(torch's dynamic int8 kernels accept no other): each casts its input up, and the model's other matmuls
(attention) run in bf16.
"""
from __future__ import annotations

import warnings


def int8_dynamic(model):
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch marks its eager quantisation API deprecated; it still works and ships
        warnings.simplefilter("ignore")
        model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    for module in model.modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            module.register_forward_pre_hook(_fp32_input)
    return model


def _fp32_input(module, args):
    """bf16 autocast hands the int8 layers bf16 activations, which their kernel refuses: cast them to fp32."""
    return tuple(a.float() if hasattr(a, "is_floating_point") and a.is_floating_point() else a for a in args)
