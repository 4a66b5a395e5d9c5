"""SFT vs DPO vs budget-capped RL on one run config: the same task, teacher, student, data and test set.

    python -m protege.experiments.methods src/protege/demo-trec6.yaml --methods sft,dpo,rl \\
        --out docs/experiments/methods-trec6.md eval.forgetting.tasks=[]

Each method is the run config with `train.method=<m>` (plus the overrides), run to the eval stage; generate and
curate are shared. RL runs by default at the token passes SFT spends on the same rows (train.rl.match_sft), so
the RL-vs-SFT row compares at equal compute. The table reads each eval stage's results.json; every number
links to its run directory. Paired tests are on the same test items (the eval stage's per-item records).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.store import JsonlLog, atomic_write_text, read_json


def run_methods(config: str, methods: list[str], overrides: list[str]) -> list[dict]:
    results = []
    for method in methods:
        pipe = Pipeline(load_config(config, overrides + [f"train.method={method}"]))
        pipe.run("eval")
        train = read_json(pipe.stages["train"] / "MANIFEST.json")
        evaluation = read_json(pipe.stages["eval"] / "results.json")
        results.append({"method": method, "train_dir": str(pipe.stages["train"].path), "train": train,
                        "eval_dir": str(pipe.stages["eval"].path), "eval": evaluation})
    return results


def _train_compute(summary: dict, method: str) -> str:
    tokens = summary.get("tokens", {}).get("total")
    return f"{summary.get('steps')} steps, {tokens:,} token passes" if tokens else f"{summary.get('steps')} steps"


def _paired(a_dir: str, b_dir: str, rows: list[dict]) -> str:
    """Exact McNemar on the fine-tuned rows' per-item correctness (classification: prediction == gold)."""
    from protege.evaluate.metrics.paired import mcnemar

    def correct(eval_dir: str) -> dict:
        row = next(r for r in rows if r["row"] == "fine-tuned")
        recs = JsonlLog(Path(eval_dir) / row["samples"]).read()
        return {r["id"]: r.get("prediction") == r.get("gold") if "gold" in r else bool(r.get("pass@1")) for r in recs}

    a, b = correct(a_dir), correct(b_dir)
    ids = sorted(set(a) & set(b))
    test = mcnemar([a[i] for i in ids], [b[i] for i in ids])
    return f"p = {test['p_value']:.3g} ({test['b']} vs {test['c']} items only one got right)"


def methods_table(results: list[dict], command: str) -> str:
    metric = results[0]["eval"]["metric"]
    base = next(r for r in results[0]["eval"]["rows"] if r["row"] == "baseline (zero-shot)")
    lines = [f"Command: `{command}`", "",
             f"Test items: {results[0]['eval']['test_items']}; metric: {metric} (points, 95% bootstrap CI).",
             f"Student zero-shot baseline: {100 * base[metric]:.1f}.", "",
             f"| method | fine-tuned {metric} | 95% CI | train compute | train seconds | vs SFT (paired) | run |",
             "|---|---|---|---|---|---|---|"]
    sft = next((r for r in results if r["method"] == "sft"), None)
    for r in results:
        row = next(x for x in r["eval"]["rows"] if x["row"] == "fine-tuned")
        lo, hi = row[f"{metric}_ci"]
        summary = r["train"]["summary"]
        seconds = summary.get("seconds")
        vs = "" if sft is None or r is sft else _paired(sft["eval_dir"], r["eval_dir"], r["eval"]["rows"])
        lines.append(f"| {r['method']} | {100 * row[metric]:.1f} | [{100 * lo:.1f}, {100 * hi:.1f}] | "
                     f"{_train_compute(summary, r['method'])} | {seconds if seconds is None else round(seconds)} | "
                     f"{vs} | `{r['eval_dir']}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--methods", default="sft,dpo,rl")
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    results = run_methods(args.config, args.methods.split(","), args.overrides)
    command = "python -m protege.experiments.methods " + " ".join(argv)
    table = methods_table(results, command)
    print(table)
    if args.out:
        atomic_write_text(Path(args.out), table)
        atomic_write_text(Path(args.out).with_suffix(".json"), json.dumps(
            [{k: r[k] for k in ("method", "train_dir", "eval_dir")} | {"train": r["train"]["summary"]}
             for r in results], indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
