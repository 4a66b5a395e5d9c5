"""Dynamic int8 quantisation of a local model's Linear layers, for a teacher that only generates.

    model = int8_dynamic(model)     # weights int8 per channel, activations quantised on the fly

On a CPU without fast bf16 (AVX2 only) an int8 Linear runs about 2x fp32 (docs/experiments/
generation-throughput.md). Outputs change slightly, so it is a setting (`generate.quantize: int8`) that is part
of the generate stage key, never a silent default; models that train or are scored stay fp32.
"""
from __future__ import annotations

import warnings


def int8_dynamic(model):
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch marks its eager quantisation API deprecated; it still works and ships
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
