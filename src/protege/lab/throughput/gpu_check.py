"""Distillation building blocks timed on the device in force: the figures scripts/gpu-check.sh prints.

    python -m protege.lab.throughput.gpu_check --device cuda --out gpu-check.json
    python -m protege.lab.throughput.gpu_check --device cpu --batch 4 --new-tokens 16   # the same, small, here

No model file travels: a random-init Llama with SmolLM2-135M-Instruct's shape (speed depends on the shape, not
the weights) on random token ids. Per precision (fp32, and bf16 where the device has it): greedy generation
(batch x new tokens, transformers' generate with the KV cache), the teacher pass that fills the KD cache (top-k
of the full vocabulary per token), a LoRA SFT step and a LoRA KD step (forward, backward, optimizer) over
batch x length tokens; tokens per second each, and the peak GPU memory.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from protege.models.device import resolve_device
from protege.models.precision import autocast, bf16_fast
from protege.train.kd_loss import balanced_kd_loss, topk_teacher

SMOLLM2_SHAPE = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                     num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _timed(device: str, fn, repeats: int) -> float:
    """Seconds per call, after one warm-up call."""
    fn()
    _sync(device)
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - began) / repeats


def _model(device: str, layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**SMOLLM2_SHAPE, "num_hidden_layers": layers})).to(device)


def measure(device: str, precision: str, batch: int, length: int, new_tokens: int, top_k: int,
            repeats: int, layers: int = SMOLLM2_SHAPE["num_hidden_layers"]) -> dict:
    from peft import LoraConfig, get_peft_model

    model = _model(device, layers).eval()
    ids = torch.randint(0, SMOLLM2_SHAPE["vocab_size"], (batch, length), device=device)
    prompt = ids[:, : length // 2]
    row = {"precision": precision, "batch": batch, "length": length}

    def generate():
        model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    def teacher_pass():
        with torch.no_grad():
            topk_teacher(model(input_ids=ids).logits[:, :-1].reshape(-1, SMOLLM2_SHAPE["vocab_size"]), top_k, 1.0)

    with autocast(precision, device), torch.no_grad():
        row["generate_tok_s"] = batch * new_tokens / _timed(device, generate, repeats)
    with autocast(precision, device):
        row["kd_cache_tok_s"] = batch * (length - 1) / _timed(device, teacher_pass, repeats)
    with torch.no_grad(), autocast(precision, device):
        logits = model(input_ids=ids).logits[:, :-1].reshape(-1, SMOLLM2_SHAPE["vocab_size"])
        cached = topk_teacher(logits, top_k, 1.0)
    del logits
    student = get_peft_model(_model(device, layers), LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]))
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-4)
    targets = ids[:, 1:].reshape(-1)

    def step(alpha: float):
        def run():
            with autocast(precision, device):
                inner = student.get_base_model()
                hidden = inner.model(input_ids=ids).last_hidden_state[:, :-1].reshape(-1, SMOLLM2_SHAPE["hidden_size"])
                loss, _ = balanced_kd_loss(hidden, inner.lm_head, targets, cached if alpha else None, alpha, 1.0)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return run

    row["sft_step_tok_s"] = batch * length / _timed(device, step(0.0), repeats)
    row["kd_step_tok_s"] = batch * length / _timed(device, step(0.5), repeats)
    if device.startswith("cuda"):
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
        torch.cuda.reset_peak_memory_stats(device)
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=256, help="tokens per training sequence")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--top-k", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layers", type=int, default=SMOLLM2_SHAPE["num_hidden_layers"], help="fewer for a quick try")
    p.add_argument("--out", default=None, help="also write the figures here (JSON)")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    report = {"device": device, "torch": torch.__version__,
              "model": f"random-init SmolLM2-135M shape, {args.layers} layers",
              "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None, "rows": []}
    for precision in ["fp32"] + (["bf16"] if bf16_fast(device) else []):
        report["rows"].append(measure(device, precision, args.batch, args.length, args.new_tokens, args.top_k,
                                      args.repeats, args.layers))
        print(json.dumps(report["rows"][-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
