"""Distillation steps against an SFT step on the same rows: the issue-20 bench rows.

    python -m protege.lab.throughput.distillation_steps [--rows 32] [--batch 8] [--json runs/bench/distillation_steps.json]

Student SmolLM2-135M-Instruct; rows: MBPP's human-written train problems (task ids 601 on) with their reference
solutions, one epoch each. Rows, each through its real method (train/):
  sft                        the LoRA loop on the rows;
  kd, same tokenizer         from the top-64 cache of SmolLM2's own logits (the cache written before timing);
  kd across tokenizers       Qwen2.5-Coder-0.5B-Instruct teacher, aligned by characters, its logits read once
                             per row before the loop and kept in memory (that pass counted in the seconds);
  on-policy, same tokenizer  the student samples (128 new tokens), SmolLM2 itself scores;
  on-policy across           the same, Qwen2.5-Coder-0.5B-Instruct scores across tokenizers.
Seconds are the training loop's (models loaded and the same-tokenizer cache written before it, since every
alpha reuses it; the cross-tokenizer teacher pass, made per run, is counted); tokens/s counts the rows' prompt +
answer tokens of the epoch, so every row is over the same work as SFT, and `x SFT` is seconds over SFT's
seconds. On-policy's own token passes (its sampled tokens) are reported beside. Needs `make teachers`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from protege.config import load_config
from protege.models.precision import describe
from protege.models.resolve import load_lm
from protege.provenance import provenance
from protege.store import StageDir, atomic_write_json
from protege.tasks.loaders import load_examples
from protege.tasks.spec import DataSource, load_task

STUDENT, QWEN = "bundled:smollm2-135m-instruct", "bundled:qwen2.5-coder-0.5b-instruct"
VARIANTS = {
    "sft": [],
    "kd, same tokenizer (top-64 cache)": ["train.method=kd", f"train.kd.teacher={STUDENT}", "train.kd.alpha=0.5"],
    "kd across tokenizers (Qwen 0.5B)": ["train.method=kd", f"train.kd.teacher={QWEN}", "train.kd.alpha=0.5"],
    "on-policy, same tokenizer": ["train.method=onpolicy", f"train.onpolicy.teacher={STUDENT}",
                                  "train.onpolicy.match_sft=false", "train.onpolicy.max_new_tokens=128"],
    "on-policy across tokenizers (Qwen 0.5B)": ["train.method=onpolicy", f"train.onpolicy.teacher={QWEN}",
                                                "train.onpolicy.match_sft=false", "train.onpolicy.max_new_tokens=128"],
}


def main(argv: list[str] | None = None) -> dict:
    from protege.train.stage import run_train_stage

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--json", default="runs/bench/distillation_steps.json")
    args = p.parse_args(argv)
    spec = load_task("mbpp")
    source = DataSource(path="data:mbpp/mbpp.jsonl", format="mbpp", rows=f"600:{600 + args.rows}")
    rows = [e.model_dump(exclude_none=True) for e in load_examples(spec, source, "train")]
    base = ["task=mbpp", "train.epochs=1", f"train.batch_size={args.batch}", f"train.student={STUDENT}",
            "train.checkpoint_every=1000000"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        load_lm(STUDENT)
        for name, extra in VARIANTS.items():
            cfg = load_config(None, base + extra)
            stage = StageDir(Path(tmp), "mbpp", f"bench-{len(results)}", "x")
            stage.path.mkdir(parents=True)
            summary = run_train_stage(spec, cfg, stage, rows, progress=False)
            results.append({"row": name, "seconds": summary["seconds"], "steps": summary["steps"],
                            "tokens": summary["tokens"]["total"], "token_passes": summary["tokens"],
                            "first_loss": summary.get("first_loss"), "final_loss": summary.get("final_loss")})
            print(name, round(summary["seconds"], 1), flush=True)
    sft = results[0]
    for r in results:
        r["tokens_per_s"] = sft["tokens"] / r["seconds"]
        r["x_sft"] = r["seconds"] / sft["seconds"]
    out = {"rows": results, "examples": len(rows), "batch": args.batch, "precision": describe(), **provenance()}
    print("| row | seconds | tokens/s | x SFT | token passes |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['seconds']:.1f} | {r['tokens_per_s']:.0f} | {r['x_sft']:.2f} | "
              f"{r['token_passes']['total']:,} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.json), out)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
