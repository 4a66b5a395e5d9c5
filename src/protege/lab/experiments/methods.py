"""SFT vs DPO vs budget-capped RL on one run config: the same task, teacher, student, data and test set.

    python -m protege.lab.experiments.methods src/protege/demo-trec6.yaml --methods sft,dpo,sft+dpo,rl \\
        --out docs/experiments/methods-trec6.md eval.forgetting.tasks=[]
    python -m protege.lab.experiments.methods configs/methods-code.yaml --methods sft,kd,onpolicy,rl \\
        --out docs/experiments/methods-code.md --table qwen-student train.student=...   # a second table

Each method is the run config with `train.method=<m>` (plus the overrides), run to the eval stage; generate and
curate are shared. `sft+dpo` is DPO starting from the SFT run's adapter (train.dpo.start=sft). RL runs by
default at the token passes SFT spends on the same rows (train.rl.match_sft), so the RL-vs-SFT row compares at
equal compute. The table reads each eval stage's results.json; every number
links to its run directory. Paired tests are on the same test items (the eval stage's per-item records).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from protege.evaluate.rows import Row
from protege.lab.experiments.compare import (fine_tuned, paired, row, run_variants, suite_changes, test_reads,
                                              train_compute, train_seconds, vs_untuned)
from protege.lab.experiments.doc_table import write_table
from protege.store import atomic_write_text

# method name -> its overrides; "sft+dpo" is DPO from this run's SFT adapter (train.dpo.start=sft)
VARIANTS = {"sft": ["train.method=sft"], "kd": ["train.method=kd"], "onpolicy": ["train.method=onpolicy"],
            "dpo": ["train.method=dpo"],
            "sft+dpo": ["train.method=dpo", "train.dpo.start=sft"], "rl": ["train.method=rl"],
            "sft+rl": ["train.method=rl", "train.rl.start=sft"]}


def run_methods(config: str, methods: list[str], overrides: list[str]) -> list[dict]:
    unknown = [m for m in methods if m not in VARIANTS]
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    return run_variants(config, {m: VARIANTS[m] for m in methods}, overrides)


def methods_table(results: list[dict], command: str) -> str:
    metric = results[0]["eval"]["metric"]
    base = row(results[0], Row.ZERO_SHOT)
    teacher = next((r for r in results[0]["eval"]["rows"] if r["row"] == Row.TEACHER), None)
    lines = [f"Command: `{command}`", "",
             f"Test items: {results[0]['eval']['test_items']}; metric: {metric} (points, 95% bootstrap CI).",
             f"Student zero-shot baseline: {100 * base[metric]:.1f}."
             + (f" Teacher ({teacher['shots']}-shot): {100 * teacher[metric]:.1f}." if teacher else ""), "",
             f"| method | fine-tuned {metric} | 95% CI | train compute | train seconds | vs SFT (paired) "
             "| vs untuned (paired) | forgetting suite (before -> after) | run |",
             "|---|---|---|---|---|---|---|---|---|"]
    sft = next((r for r in results if r["name"] == "sft"), None)
    for r in results:
        value, (lo, hi) = fine_tuned(r)
        vs = "" if sft is None or r is sft else paired(sft, r)
        lines.append(f"| {r['name']} | {100 * value:.1f} | [{100 * lo:.1f}, {100 * hi:.1f}] | "
                     f"{train_compute(r)} | {train_seconds(r)} | "
                     f"{vs} | {vs_untuned(r)} | {suite_changes(r)} | `{r['eval_dir']}` |")
    lines += ["", test_reads(results)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--methods", default="sft,dpo,rl")
    parser.add_argument("--out", default=None)
    parser.add_argument("--table", default=None, help="a second table in the same doc (e.g. one per student), "
                        "with markers of its own; the .json beside it gets the same suffix")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    results = run_methods(args.config, args.methods.split(","), args.overrides)
    command = "python -m protege.lab.experiments.methods " + " ".join(argv)
    table = methods_table(results, command)
    print(table)
    if args.out:
        write_table(Path(args.out), table, name=args.table)
        suffix = f"-{args.table}.json" if args.table else ".json"
        atomic_write_text(Path(args.out).with_name(Path(args.out).stem + suffix), json.dumps(
            [{"method": r["name"], "train_dir": str(r["stages"]["train"].path), "eval_dir": r["eval_dir"],
              "train": r["train"]} for r in results], indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
