"""Raw-text distillation: alpha x teacher sweep of (1 - alpha) CE + alpha T^2 KD on the standard library's Python.

    python -m protege.lab.experiments.kd_sweep --out docs/experiments/kd-sweep.md            # the committed table
    python -m protege.lab.experiments.kd_sweep --alphas 0,0.5,1 --train-blocks 32 --out /tmp/kd.md   # quicker
    python -m protege.lab.experiments.kd_sweep --family qwen --train-blocks 64 --held-out-blocks 48 \
        --lines-per-block 0 --out docs/experiments/kd-sweep.md \
        --rows docs/experiments/kd-sweep-qwen.json                    # the second table (make teachers first)

With --rows FILE.json every measured row is kept there (with its settings and the CPU it ran on) as soon as it
ends, so a later session, on a fresh machine, runs only the rows still missing; a file kept under other settings
is refused rather than mixed in.

--family smollm2 (the first table): the student is SmolLM2-135M-Instruct depth-pruned to --student-layers (20 of
30) by `protege student prune`'s NLL importance; the strong teacher is the full 30-layer model, the weak one the
same model pruned to --weak-layers (17), unhealed: worse than the student it teaches.
--family qwen (the second table, issue 20): the student is Qwen2.5-Coder-0.5B-Instruct pruned to --student-layers
(12 of 24); the strong teacher is Qwen2.5-Coder-1.5B-Instruct, the weak one the full 0.5B (the bundled 4-bit
models, de-quantised). In both, all three share one tokenizer.
Each run fully fine-tunes the student (AdamW, linear decay) on the same --train-blocks blocks of --block-tokens
tokens, in the same order; the teachers' top-k log-probabilities are cached once per teacher
(train/logit_cache.py) and shared by every alpha. alpha = 0 uses no teacher, so it is run once and shown in both
groups. Held-out: blocks of files that never lend a block to training (lab/experiments/stdlib_corpus.py), scored
by per-token NLL (bootstrap CI over blocks; each trained student also against alpha 0 on the same blocks, a
paired CI), top-1 next-token accuracy and line completion exact match (lab/experiments/raw_text_metrics.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from protege.lab.experiments.doc_table import write_table
from protege.lab.experiments.raw_text_metrics import held_out_metrics, paired_nll_delta
from protege.lab.experiments.stdlib_corpus import stdlib_blocks
from protege.models.precision import machine_summary
from protege.models.resolve import DEFAULT_MODEL, model_dir
from protege.store import RESULTS, atomic_write_json
from protege.train.kd_loss import balanced_kd_loss


QWEN_SMALL, QWEN_LARGE = "bundled:qwen2.5-coder-0.5b-instruct", "bundled:qwen2.5-coder-1.5b-instruct"
# family: (the layers of the model the student is pruned from, the student's default layers)
FAMILIES = {"smollm2": (30, 20), "qwen": (24, 12)}


def pruned(keep: int, source: str = DEFAULT_MODEL) -> Path:
    """`source` pruned to `keep` layers by NLL importance, cached (models/prune.py's pruned_dir, which `protege
    student prune` and teacher_size share; one scoring of the layers serves every depth)."""
    from protege.models.prune import cached_prune

    return cached_prune(source, keep)


def train_student(student: Path, blocks, cache, alpha: float, args) -> tuple[object, list[float], float]:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(str(student), dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    steps = (len(blocks) + args.batch - 1) // args.batch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    losses, began = [], time.perf_counter()
    for step in range(steps):
        start = (step * args.batch) % len(blocks)
        idx = list(range(start, min(start + args.batch, len(blocks))))
        ids = torch.tensor([blocks[i] for i in idx])
        hidden = model.model(input_ids=ids).last_hidden_state[:, :-1].reshape(-1, model.config.hidden_size)
        teacher = cache.batch(idx) if cache is not None else None
        loss, _ = balanced_kd_loss(hidden, model.lm_head, ids[:, 1:].reshape(-1), teacher, alpha,
                                   args.temperature, args.divergence, chunk_tokens=512)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return model, losses, time.perf_counter() - began


def teacher_cache(name: str, folder: Path, blocks, args):
    from transformers import AutoModelForCausalLM

    from protege.train.logit_cache import LogitCache, write_logit_cache

    examples = [{"input_ids": b, "labels": b} for b in blocks]  # every next token is a target
    if not (folder / "meta.json").exists():
        model = AutoModelForCausalLM.from_pretrained(str(model_dir(name)), dtype=torch.float32).eval()
        write_logit_cache(folder, model, examples, args.top_k, args.temperature, batch_size=8)
    return LogitCache(folder, k=args.top_k, temperature=args.temperature, examples=examples)


def family_models(args) -> tuple[Path, dict[str, str]]:
    """(the pruned student's folder, {"strong": teacher, "weak": teacher}) for args.family."""
    if args.family == "qwen":
        return pruned(args.student_layers, QWEN_SMALL), {"strong": QWEN_LARGE, "weak": QWEN_SMALL}
    return pruned(args.student_layers), {"strong": DEFAULT_MODEL, "weak": f"hf:{pruned(args.weak_layers)}"}


def run(args) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(args.work)
    results_path = Path(args.rows) if args.rows else out / RESULTS
    settings = sweep_settings(args)
    results = kept_results(results_path, settings)  # resumable per row; refused before any model loads
    here = machine_summary()
    student, teachers = family_models(args)
    tok = AutoTokenizer.from_pretrained(str(student))
    train, held = stdlib_blocks(tok, args.block_tokens, args.train_blocks, args.held_out_blocks)

    def measure(key: str, load):
        if key not in results:
            began = time.perf_counter()
            model, extra = load()
            results[key] = {**held_out_metrics(model, tok, held, args.lines_per_block), **extra,
                            "eval_seconds": time.perf_counter() - began, "machine": here}
            atomic_write_json(results_path, {"settings": settings, "results": results})
            print(key, {k: v for k, v in results[key].items() if k != "losses"}, flush=True)

    for name, model_name in [("student before training", f"hf:{student}")] + [
            (f"{role} teacher", m) for role, m in teachers.items()]:
        measure(name, lambda m=model_name: (AutoModelForCausalLM.from_pretrained(str(model_dir(m))), {}))
    for role, model_name in teachers.items():
        key = f"{model_name}|k{args.top_k}|T{args.temperature}|{args.train_blocks}x{args.block_tokens}"
        cache = None
        for alpha in args.alphas:
            run_key = "alpha 0 (no teacher)" if alpha == 0 else f"{role} alpha {alpha:g}"
            if run_key in results:
                continue
            if alpha > 0 and cache is None:
                from protege.store import content_key

                cache = teacher_cache(model_name, out / f"cache-{content_key(key)}", train, args)
            measure(run_key, lambda a=alpha, c=cache: _trained(student, train, c, a, args))
    return {"results": results, "student": str(student), "teachers": teachers,
            "train_tokens": len(train) * args.block_tokens, "held_out_tokens": len(held) * args.block_tokens}


def sweep_settings(args) -> dict:
    """What a row's numbers depend on (not the alphas: each is a row of its own)."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in ("alphas", "work", "out", "rows")}


def kept_results(path: Path, settings: dict) -> dict:
    """The rows already measured into `path` under the same settings ({} when there is no file)."""
    if not path.exists():
        return {}
    kept = json.loads(path.read_text())
    if "settings" not in kept:  # a results.json written before rows were kept with their settings
        return kept
    differ = {k: (kept["settings"].get(k), v) for k, v in settings.items() if kept["settings"].get(k) != v}
    if differ:
        changes = ", ".join(f"{k}: kept {a!r}, now {b!r}" for k, (a, b) in differ.items())
        raise SystemExit(f"{path}: its rows were measured under other settings ({changes}). Run with the kept "
                         "settings, or give another --rows file (or --work folder).")
    return kept["results"]


def _trained(student, train, cache, alpha, args):
    model, losses, seconds = train_student(student, train, cache if alpha > 0 else None, alpha, args)
    return model, {"train_seconds": seconds, "losses": losses}


def table(report: dict, command: str, args) -> str:
    r = report["results"]
    base = r.get("alpha 0 (no teacher)", {}).get("block_nll")
    lines = [f"Command: `{command}`", "",
             f"Student: `{report['student'].replace(str(Path.home()), '~')}` "
             f"({args.student_layers} of {FAMILIES[args.family][0]} layers). "
             "Teachers: strong = "
             f"`{report['teachers']['strong']}`, weak = `{report['teachers']['weak']}`. Train: "
             f"{report['train_tokens']:,} tokens, {args.epochs} epoch(s), full fine-tuning, lr {args.lr}, batch "
             f"{args.batch}; KD = {args.divergence}, T = {args.temperature}, top-{args.top_k} cache. Held out: "
             f"{report['held_out_tokens']:,} tokens from other files.", "",
             "| model | held-out NLL | 95% CI | NLL - alpha 0 [paired 95% CI] | top-1 | 95% CI | line EM | 95% CI "
             "| train s |", "|---|---|---|---|---|---|---|---|---|"]
    for key, m in sorted(r.items(), key=lambda item: row_order(item[0])):
        lo, hi = m["nll_ci"]
        elo, ehi = m["line_em_ci"]
        tlo, thi = m.get("top1_ci", (float("nan"),) * 2)
        secs = f"{m['train_seconds']:.0f}" if "train_seconds" in m else ""
        delta = ""
        if base is not None and "block_nll" in m and key != "alpha 0 (no teacher)":
            d, (dlo, dhi) = paired_nll_delta(m["block_nll"], base)
            delta = f"{d:+.3f} [{dlo:+.3f}, {dhi:+.3f}]"
        em = f"{100 * m['line_em']:.1f} | [{100 * elo:.1f}, {100 * ehi:.1f}]" if m.get("lines") else "n/a | "
        lines.append(f"| {key} | {m['nll']:.3f} | [{lo:.3f}, {hi:.3f}] | {delta} | {100 * m['top1']:.1f} | "
                     f"[{100 * tlo:.1f}, {100 * thi:.1f}] | {em} | {secs} |")
    return "\n".join(lines) + "\n"


def row_order(key: str) -> tuple:
    """The table's order: the untrained models, CE alone, then each teacher's rows by alpha (runs may interleave)."""
    fixed = ["student before training", "strong teacher", "weak teacher", "alpha 0 (no teacher)"]
    if key in fixed:
        return (fixed.index(key),)
    role, _, alpha = key.partition(" alpha ")
    return (len(fixed), role != "strong", float(alpha or 0))


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=sorted(FAMILIES), default="smollm2")
    p.add_argument("--alphas", default="0,0.2,0.5,0.8,1.0")
    p.add_argument("--student-layers", type=int, default=None, help="default: 20 (smollm2), 12 (qwen)")
    p.add_argument("--weak-layers", type=int, default=17)
    p.add_argument("--train-blocks", type=int, default=64)
    p.add_argument("--held-out-blocks", type=int, default=16)
    p.add_argument("--block-tokens", type=int, default=128)
    p.add_argument("--lines-per-block", type=int, default=4, help="line-completion prompts per held-out block")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--divergence", default="forward_kl")
    p.add_argument("--top-k", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=None, help="default: runs/experiments/kd-sweep (-qwen)")
    p.add_argument("--out", default=None)
    p.add_argument("--rows", default=None, help="keep measured rows in this JSON file (default: WORK/results.json)")
    args = p.parse_args(argv)
    args.alphas = [float(a) for a in args.alphas.split(",")]
    args.student_layers = args.student_layers or FAMILIES[args.family][1]
    args.work = args.work or "runs/experiments/kd-sweep" + ("" if args.family == "smollm2" else f"-{args.family}")
    report = run(args)
    text = table(report, "python -m protege.lab.experiments.kd_sweep " + " ".join(argv), args)
    print(text)
    if args.out:  # each family has its own table in the doc
        write_table(Path(args.out), text, name=None if args.family == "smollm2" else args.family)


if __name__ == "__main__":
    main(sys.argv[1:])
