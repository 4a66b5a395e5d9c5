"""The model card of an exported student, written from its run: what it was trained for and on, and what it
scores, every number read from the run's own files.

    text = model_card(cfg, stages)     # Markdown with YAML front matter (Hugging Face's card format)
"""
from __future__ import annotations

from protege.evaluate.rows import Row, shown_rows
from protege.store import RESULTS, read_json


def _pct(row: dict, key: str) -> str:
    if key not in row:
        return "n/a"
    lo, hi = row.get(f"{key}_ci") or (None, None)
    return f"{100 * row[key]:.1f}" + (f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None else "")


def model_card(cfg, stages: dict, name: str) -> str:
    from protege.tasks.kinds import kind_of
    from protege.tasks.spec import load_task

    spec = load_task(cfg.task)
    train = read_json(stages["train"] / "MANIFEST.json")["summary"]
    curate = read_json(stages["curate"] / "MANIFEST.json")["summary"]
    results = read_json(stages["eval"] / RESULTS) if stages["eval"].complete else None
    lines = ["---", "library_name: transformers", "tags: [protege, distillation]", "---", "",
             f"# {name}", "",
             f"{cfg.train.student} fine-tuned by protege for the task **{spec.name}** ({spec.kind}): "
             f"{spec.description}", "",
             "| | |", "|---|---|",
             f"| teacher | {cfg.teacher_for('answers')} |",
             f"| training data | {curate.get('kept')} curated examples of {curate.get('input')} generated |",
             f"| method | {cfg.train.method} (LoRA rank {cfg.train.lora_rank}, merged into the weights) |",
             f"| training | {train.get('steps')} steps, {train.get('examples')} examples |", ""]
    if results is None:
        lines += ["Not evaluated yet: run `protege run` on the same config to fill in the scores.", ""]
        return "\n".join(lines)
    cols = kind_of(spec).COLUMNS
    lines += [f"## Scores on {results['test_items']} held-out test items", "",
              "Percent, with 95% bootstrap intervals; seconds per item measured on the machine that ran the "
              "evaluation.", "",
              "| row | " + " | ".join(label for _, label in cols) + " | s/item (p50) |",
              "|---|" + "---|" * (len(cols) + 1)]
    for r in shown_rows(results["rows"]):
        lines.append(f"| {r['row']} | " + " | ".join(_pct(r, key) for key, _ in cols)
                     + f" | {r.get('seconds_p50', 0):.3f} |")
    by = {r["row"]: r for r in results["rows"]}
    metric = results["metric"]
    if Row.FINE_TUNED in by and Row.ZERO_SHOT in by:
        gain = 100 * (by[Row.FINE_TUNED][metric] - by[Row.ZERO_SHOT][metric])
        lines += ["", f"Fine-tuning moved {metric} by {gain:+.1f} points over the untuned student."]
    forgetting = results.get("forgetting", {}).get("entries", [])
    if forgetting:
        lines += ["", "Forgetting suite (before -> after fine-tuning): " + "; ".join(
            f"{e['task']} {100 * e['before']:.1f} -> {100 * e['after']:.1f}" for e in forgetting if "before" in e)]
    precision = results.get("precision", {})
    lines += ["", "## Provenance", "",
              f"protege git {results.get('git') or 'unknown'}, {results.get('date')}; torch "
              f"{results.get('versions', {}).get('torch')}, transformers "
              f"{results.get('versions', {}).get('transformers')}; computed in {precision.get('resolved', 'fp32')}. "
              f"Evaluation run: `{stages['eval'].path}`.", ""]
    return "\n".join(lines)
