"""Training memory: the peak resident memory of LoRA SFT steps, whole batches against micro-batches
(train.micro_batch_tokens), each setting in a fresh process so one peak cannot hide another.

    python -m protege.lab.throughput.training_memory [--model hf:<folder>|bundled:...] [--rows 8] [--tokens 512]
        [--micro 0,2048,1024] [--steps 2] [--json runs/bench/training_memory.json]

Each process loads the student (fp32 weights, the precision in force for compute), trains `--steps` steps of
train/loop.py's LoRA loop (rank 64, all linear layers, AdamW) on rows of `--tokens` token ids, the last half of
each row the answer (loss on it only), `--rows` rows a step: the shape of a 0.5B student's MBPP SFT (batch 8 x
512), and reports its peak RSS (getrusage), its RSS after loading and the seconds per step. Micro 0: the whole
batch at once. Goal: with micro-batches of 1024 tokens a step's peak above the loaded model at most half the
whole batch's, at most 1.3x its time a step.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from protege.store import atomic_write_json


def default_model() -> str:
    """The 22-layer Qwen2.5-Coder-0.5B prune where `protege student prune` made it (the student whose SFT swings
    11-22 GB), else the embedded default."""
    from protege.models.prune import pruned_dir
    from protege.models.resolve import DEFAULT_MODEL

    prune = pruned_dir("bundled:qwen2.5-coder-0.5b-instruct", 22)
    return f"hf:{prune}" if prune.is_dir() else DEFAULT_MODEL


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB


def one_setting(model: str, rows: int, tokens: int, micro: int, steps: int) -> dict:
    """Train `steps` steps in this process and measure it (the child's half of the bench)."""
    import torch

    from protege.config import TrainConfig
    from protege.models.resolve import load_lm
    from protege.store import StageDir
    from protege.train.loop import train_lora
    from protege.train.micro_batch import answer_mean_in_parts
    from protege.train.sft import answer_loss

    lm = load_lm(model)
    loaded = peak_gib()
    generator = torch.Generator().manual_seed(0)
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    examples = []
    for _ in range(rows * steps):
        ids = torch.randint(100, min(vocab, 30000), (tokens,), generator=generator).tolist()
        examples.append({"input_ids": ids, "labels": [-100] * (tokens // 2) + ids[tokens // 2:]})
    cfg = TrainConfig(student=model, epochs=1, batch_size=rows, max_seq_len=tokens, checkpoint_every=10 ** 6,
                      micro_batch_tokens=micro or None)

    def loss_fn(m, batch, indices):
        return answer_loss(m, **batch), {}

    with tempfile.TemporaryDirectory() as work:
        stage = StageDir(Path(work), "bench", "train-memory", "bench")
        stage.path.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        train_lora(cfg, stage, lm, examples, answer_mean_in_parts(loss_fn, cfg.micro_batch_tokens),
                   desc="bench memory", progress=False)
        seconds = time.perf_counter() - began
    return {"micro_batch_tokens": micro or None, "loaded_gib": round(loaded, 2), "peak_gib": round(peak_gib(), 2),
            "seconds_per_step": round(seconds / steps, 1)}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--micro", default="0,2048,1024")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # the child: one setting
    args = ap.parse_args(argv)
    model = args.model or default_model()
    if args.one is not None:
        print(json.dumps(one_setting(model, args.rows, args.tokens, args.one, args.steps)))
        return []
    results = []
    print(f"student {model}: {args.steps} LoRA SFT steps of {args.rows} rows x {args.tokens} tokens")
    print(f"{'micro-batch tokens':>18} {'RSS loaded GiB':>15} {'peak GiB':>9} {'above loaded':>13} {'s/step':>7}")
    for micro in [int(m) for m in args.micro.split(",")]:
        out = subprocess.run([sys.executable, "-m", "protege.lab.throughput.training_memory", "--model", model,
                              "--rows", str(args.rows), "--tokens", str(args.tokens), "--steps", str(args.steps),
                              "--one", str(micro)], check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["above_loaded_gib"] = round(row["peak_gib"] - row["loaded_gib"], 2)
        results.append(row)
        print(f"{micro or 'whole batch':>18} {row['loaded_gib']:>15} {row['peak_gib']:>9} "
              f"{row['above_loaded_gib']:>13} {row['seconds_per_step']:>7}")
    if len(results) > 1 and results[0]["micro_batch_tokens"] is None:
        whole = results[0]
        for row in results[1:]:
            row["peak_share_of_whole"] = round(row["above_loaded_gib"] / max(1e-9, whole["above_loaded_gib"]), 2)
            row["time_vs_whole"] = round(row["seconds_per_step"] / whole["seconds_per_step"], 2)
            print(f"micro {row['micro_batch_tokens']}: {row['peak_share_of_whole']}x the whole batch's memory above "
                  f"the loaded model, {row['time_vs_whole']}x its time a step")
    if args.json:
        from protege.models.precision import describe

        atomic_write_json(Path(args.json), {"model": model, "rows": args.rows, "tokens": args.tokens,
                                            "precision": describe(), "results": results})
    return results


if __name__ == "__main__":
    main()
