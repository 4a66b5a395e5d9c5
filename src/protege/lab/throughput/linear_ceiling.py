"""The most tokens per second a model's Linear layers allow on this machine, whatever the rest of decoding costs.

    python -m protege.lab.throughput.linear_ceiling [--batches 64,128,256,512] [--fp32 | --bf16]

Runs every Linear layer of the bundled SmolLM2 (int8 as `generate.quantize: int8` makes it, fp32, or bf16 as
`precision: bf16` decodes: the twin with bf16 Linear weights, models/bf16_twin.py) on random activations of each
batch size: the projections, the MLP and the output layer, once per token, as one decoding step does. Decoding
through these layers can only be slower: attention, norms, the prefill and Python come on
top. Prints milliseconds per step, operations per second (2 per multiply-add) and the ceiling in tokens/s.
"""
from __future__ import annotations

import argparse
import time

import torch

from protege.models.precision import autocast


def _step(model, x: torch.Tensor) -> None:
    base = model.base_model
    for layer in base.layers:
        attn, mlp = layer.self_attn, layer.mlp
        attn.k_proj(x), attn.v_proj(x), attn.o_proj(attn.q_proj(x))
        mlp.down_proj(mlp.gate_proj(x) * mlp.up_proj(x))
    model.lm_head(x)


def linear_params(model) -> int:
    """Weights in the model's Linear layers, float or int8 (one multiply-add each per token)."""
    return sum(m.in_features * m.out_features for m in model.modules()
               if hasattr(m, "in_features") and hasattr(m, "out_features"))


def linear_ceiling(model, batches: list[int], repeats: int = 5, precision: str = "fp32") -> list[dict]:
    """Per batch size: the Linear layers' time per decoding step and the tokens/s they cap decoding at, computing
    in `precision` (fp32, or bf16 autocast as LocalLM runs it)."""
    params = linear_params(model)
    hidden = model.config.hidden_size
    rows = []
    with torch.inference_mode(), autocast(precision):
        for batch in batches:
            x = torch.randn(batch, hidden)
            _step(model, x)  # warm-up
            t0 = time.perf_counter()
            for _ in range(repeats):
                _step(model, x)
            seconds = (time.perf_counter() - t0) / repeats
            rows.append({"batch": batch, "ms_per_step": round(seconds * 1e3, 1),
                         "g_ops_per_s": round(2 * params * batch / seconds / 1e9),
                         "ceiling_tok_s": round(batch / seconds)})
    return rows


def decoding_layers(lm, precision: str):
    """The model a LocalLM decodes through in `precision` (under bf16: its twin with bf16 Linear weights)."""
    lm.precision = precision
    try:
        return lm.decoding_model()
    finally:
        lm.precision = None


def main(argv=None) -> list[dict]:
    from protege.models.resolve import DEFAULT_MODEL, load_lm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="64,128,256,512")
    ap.add_argument("--fp32", action="store_true", help="the float model instead of int8")
    ap.add_argument("--bf16", action="store_true", help="the layers bf16 generation decodes through")
    args = ap.parse_args(argv)
    kind = "bf16" if args.bf16 else "fp32" if args.fp32 else "int8"
    lm = load_lm(DEFAULT_MODEL, **({} if kind != "int8" else {"quantize": "int8"}))
    model = decoding_layers(lm, "bf16") if kind == "bf16" else lm.model
    rows = linear_ceiling(model, [int(b) for b in args.batches.split(",")], precision="bf16" if args.bf16 else "fp32")
    for r in rows:
        print(f"  {kind} Linear layers at batch {r['batch']}: {r['ms_per_step']} ms per step, "
              f"{r['g_ops_per_s']} G ops/s, ceiling {r['ceiling_tok_s']} tok/s")
    return rows


if __name__ == "__main__":
    main()
