"""How far can a student be depth-pruned and still do the task? Each depth scored on the task's validation split.

    python -m protege.lab.experiments.prune_depth --from bundled:qwen2.5-coder-0.5b-instruct --task mbpp \\
        --keep 12,14,16,18,20 --out docs/experiments/prune-depth-code.md

The unpruned model is the first row, then each depth: `protege student prune` (NLL importance on the default
calibration text, cached; the layers are scored once and every depth reuses the scores), evaluated zero-shot and
greedy on the task's validation split (`protege eval --split validation`: the test set is never read), code run
in the sandbox. Every evaluation is a resumable, reused model-eval stage. The table: layers kept, parameters,
the calibration NLL after pruning, the validation score with its 95% CI and the answers' mean length in tokens.

The rule that picks the student is fixed before the numbers are seen: the fewest layers whose validation
score's 95% CI lies above 0, i.e. a student that writes some working answers, so fine-tuning has something to
build on, and otherwise as small as the sweep allows (the student that needs a teacher most). None when no depth
qualifies. With --out the rows and the choice also go to the doc's .json twin, which chosen_student() reads.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from protege.store import atomic_write_text, read_json


def depth_rows(source: str, task: str, keeps: list[int], limit: int | None = None, runs_dir: str = "runs",
               progress: bool = True) -> list[dict]:
    """One row per model: the unpruned `source` (keep None), then each depth in `keeps`, fewest layers first."""
    from protege.evaluate.model_eval import evaluate_model
    from protege.models.prune import cached_prune
    from protege.tasks.spec import load_task

    spec = load_task(task)
    rows = []
    for keep in [None] + sorted(keeps):
        folder = cached_prune(source, keep) if keep is not None else None
        info = read_json(folder / "prune.json") if folder else {}
        model = f"hf:{folder}" if folder else source
        res = evaluate_model(model, spec, split="validation", limit=limit, allow_code_execution=True,
                             runs_dir=runs_dir, progress=progress)
        metric, summary = res["metric"], res["summary"]
        rows.append({"keep": keep, "layers_before": info.get("layers_before"), "model": model,
                     "params": info.get("params_after"), "params_before": info.get("params_before"),
                     "calibration_nll": info.get("calibration_nll", {}).get("after"),
                     "calibration_nll_unpruned": info.get("calibration_nll", {}).get("before"),
                     "metric": metric, "score": summary[metric], "ci": summary[f"{metric}_ci"],
                     "items": res["validation_items"], "path": res["path"],
                     "mean_output_tokens": summary.get("tokens_out_mean")})
    return rows


def chosen(rows: list[dict]) -> dict | None:
    """The rule: the fewest layers whose score's CI lies above 0 (the unpruned row is not a candidate)."""
    able = [r for r in rows if r["keep"] is not None and r["ci"][0] > 0]
    return min(able, key=lambda r: r["keep"]) if able else None


def table(rows: list[dict], command: str) -> str:
    first = rows[0]
    metric = first["metric"]
    layers = next((r["layers_before"] for r in rows if r["layers_before"]), None)
    lines = [f"Command: `{command}`", "",
             f"{first['items']} validation items; {metric} in points, 95% bootstrap CI; zero-shot, greedy.", "",
             f"| layers kept | parameters | calibration NLL | {metric} (validation) | mean answer tokens | folder |",
             "|---|---|---|---|---|---|"]
    # the unpruned row takes its parameters and calibration NLL from any prune's record of its source
    unpruned = {"params": next((x["params_before"] for x in rows if x["params_before"]), None),
                "calibration_nll": next((x["calibration_nll_unpruned"] for x in rows
                                         if x["calibration_nll_unpruned"] is not None), None)}
    for r in rows:
        lo, hi = r["ci"]
        facts = r if r["keep"] is not None else unpruned
        kept = r["keep"] if r["keep"] is not None else ("all" if layers is None else f"all {layers}")
        cells = [str(kept), _fmt(facts["params"], "{:,}"), _fmt(facts["calibration_nll"], "{:.3f}"),
                 f"{100 * r['score']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]", _fmt(r["mean_output_tokens"], "{:.0f}"),
                 f"`{r['path']}`"]
        lines.append("| " + " | ".join(cells) + " |")
    pick = chosen(rows)
    lines += ["", "Chosen by the rule (the fewest layers whose CI lies above 0): " +
              (f"{pick['keep']} layers, `{pick['model']}`." if pick else "none: no depth qualifies.")]
    return "\n".join(lines)


def _fmt(value, pattern: str) -> str:
    return "" if value is None else pattern.format(value)


def main(argv: list[str]) -> None:
    from protege.lab.experiments.doc_table import write_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="the model to prune (bundled:..., hf:...)")
    parser.add_argument("--task", required=True, help="a task with a validation split (built-in name or YAML)")
    parser.add_argument("--keep", required=True, help="comma-separated layer counts, e.g. 12,16,20")
    parser.add_argument("--limit", type=int, default=None, help="the first N validation items only")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default=None, help="Markdown doc to write the table into (between its markers)")
    args = parser.parse_args(argv)
    rows = depth_rows(args.source, args.task, [int(k) for k in args.keep.split(",")], args.limit, args.runs_dir)
    text = table(rows, "python -m protege.lab.experiments.prune_depth " + " ".join(argv))
    print(text)
    if args.out:
        write_table(Path(args.out), text)
        pick = chosen(rows)
        atomic_write_text(Path(args.out).with_suffix(".json"), json.dumps(
            {"source": args.source, "task": args.task, "rows": rows,
             "chosen": pick and {"keep": pick["keep"], "model": pick["model"]}}, indent=2))


def chosen_student(record: str | Path) -> str:
    """The model the rule chose, from the .json a run with --out wrote (for the commands that train it), pruned
    here if this machine's cache lacks it; a clear error when the sweep has not run or chose none."""
    from protege.errors import ConfigError
    from protege.models.prune import cached_prune

    path = Path(record)
    if not path.exists():
        raise ConfigError(str(path), ["no prune-depth record: run python -m protege.lab.experiments.prune_depth "
                                      "with --out first (its command is in the doc beside this file)"])
    record = read_json(path)
    if record["chosen"] is None:
        raise ConfigError(str(path), ["no depth met the rule (a validation CI above 0): add deeper --keep values"])
    return f"hf:{cached_prune(record['source'], record['chosen']['keep'])}"


if __name__ == "__main__":
    main(sys.argv[1:])
