"""docs/baselines.md: zero-shot and few-shot scores of models on every built-in task, with 95% intervals.

    protege baselines --limit 100 --out docs/baselines.md          # SmolLM2-135M-Instruct, the embedded default
    protege baselines --model hf:path/to/model --tasks gsm8k,mbpp
    protege baselines --model bundled:qwen2.5-coder-0.5b-instruct --card   # + HumanEval/MBPP in full vs its card
    protege baselines --model bundled:qwen2.5-coder-1.5b-instruct --card-only [--tasks humaneval]  # only those

Each (task, shots) cell is an ordinary `protege eval --model M --task T` result, reused when already computed,
so an interrupted run picks up where it stopped and the numbers here are exactly those the command prints.
Each model's sections sit between their own marker comments: measuring another model adds or replaces that
model's sections and keeps everything else in the file. `--card` also scores HumanEval (164) and MBPP test (500)
zero-shot in full, next to the pass@1 its model card publishes; that table has a section of its own, so the
limited cells and the card table are each rewritten only by a run that measures them (adding the limited cells
on a machine without the card's finished cells keeps the card table as it is).
"""
from __future__ import annotations

from pathlib import Path

from protege.evaluate.model_eval import evaluate_model
from protege.store import write_marked_section
from protege.tasks.kinds import kind_named, kind_of
from protege.tasks.spec import builtin_tasks, load_task

# Few-shot setting: the kind's FEW_SHOTS (per label for classification, so 77 shots for Banking77).

# pass@1 (percent) that each model's card publishes (Qwen2.5-Coder report, arXiv:2409.12186), for --card.
MODEL_CARDS = {
    "bundled:qwen2.5-coder-0.5b-instruct": {"humaneval": 61.6, "mbpp": 52.4},
    "bundled:qwen2.5-coder-1.5b-instruct": {"humaneval": 70.7, "mbpp": 69.2},
}


def run_baselines(model: str, tasks: list[str] | None = None, limit: int | None = 100, runs_dir: str = "runs",
                  progress: bool = True, echo=print) -> list[dict]:
    rows = []
    for name in tasks or builtin_tasks():
        spec = load_task(name)
        for shots in (0, kind_of(spec).FEW_SHOTS):
            res = evaluate_model(model, spec, shots=shots, limit=limit, allow_code_execution=True,
                                 runs_dir=runs_dir, progress=progress, echo=echo)
            rows.append(res)
            s = res["summary"]
            echo(f"{name} {shots}-shot {res['metric']} {100 * s[res['metric']]:.1f}")
    return rows


def render(model: str, rows: list[dict], command: str) -> str:
    """The model's section of limited cells: its table of (task, shots) cells."""
    lines = [
        f"# Baselines: {model}", "",
        "Zero-shot and few-shot prompting of the untuned model on every built-in task: the floor a distilled",
        "student has to rise above. Greedy decoding; classification scored by label likelihood; code run in the",
        "sandbox. Metrics in percent with 95% bootstrap intervals. Few-shot examples come from each task's seeds.",
        "", f"Reproduce with `{command}` (finished cells are reused from `runs/`).",
        "",
        "| task | kind | metric | shots | items | score [95% CI] | other metrics | prompt tokens | tokens out |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, m = r["summary"], r["metric"]
        lo, hi = s[f"{m}_ci"]
        other = ", ".join(f"{k} {100 * s[k]:.1f}" for k in _others(r["kind"], m, s))
        lines.append(f"| {r['task']} | {r['kind']} | {m} | {r['shots']} | {r['test_items']} | "
                     f"{100 * s[m]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | {other} | {s['tokens_in_mean']:.0f} | "
                     f"{s['tokens_out_mean']:.0f} |")
    lines += ["", "Items: the first N test items of each task in file order (the whole set where it is smaller).",
              "For SQuAD 2.0 the no-answer rows are in 'other metrics' as HasAns/NoAns splits. Token counts are",
              "means per item; time per item is left out here because these cells ran beside other jobs.",
              "", measured_on(rows[0])]
    return "\n".join(lines) + "\n"


def measured_on(result: dict) -> str:
    return (f"Measured on: git {result.get('git') or 'unknown'}, {result.get('date')}, "
            f"torch {result.get('versions', {}).get('torch')}, "
            f"transformers {result.get('versions', {}).get('transformers')}.")


def _others(kind: str, metric: str, summary: dict) -> list[str]:
    keys = kind_named(kind).SECONDARY_METRICS
    return [k for k in keys if k != metric and k in summary]


def run_card(model: str, runs_dir: str = "runs", progress: bool = True, echo=print,
             tasks: list[str] | None = None) -> list[dict]:
    """Zero-shot on every test item of the tasks the model's card scores (HumanEval, MBPP test), or of those of
    them named in `tasks`."""
    if model not in MODEL_CARDS:
        raise ValueError(f"--card: no published numbers are known for {model}; known: {', '.join(MODEL_CARDS)}")
    names = [t for t in MODEL_CARDS[model] if tasks is None or t in tasks]
    if not names:
        raise ValueError(f"--tasks {','.join(tasks or [])}: the card of {model} scores only "
                         f"{', '.join(MODEL_CARDS[model])}; name one of them or drop --tasks")
    rows = []
    for name in names:
        res = evaluate_model(model, load_task(name), shots=0, limit=None, allow_code_execution=True,
                             runs_dir=runs_dir, progress=progress, echo=echo)
        echo(f"{name} 0-shot, all {res['test_items']} items: {res['metric']} {100 * res['summary'][res['metric']]:.1f}")
        rows.append(res)
    return rows


def render_card(model: str, rows: list[dict], command: str) -> str:
    """The model's card section: the card's tasks in full, zero-shot, next to the published pass@1."""
    card = MODEL_CARDS[model]
    lines = [f"# Baselines: {model} against its model card", "",
             f"Reproduce with `{command}` (finished cells are reused from `runs/`).", "",
             "Every test item, zero-shot, greedy, 384 new tokens at most:", "",
             "| task | items | pass@1 here [95% CI] | model card | difference |", "|---|---|---|---|---|"]
    for r in rows:
        s, m = r["summary"], r["metric"]
        lo, hi = s[f"{m}_ci"]
        published = card[r["task"]]
        lines.append(f"| {r['task']} | {r['test_items']} | {100 * s[m]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | "
                     f"{published:.1f} | {100 * s[m] - published:+.1f} |")
    lines += ["", "The card's numbers are the fp16 model under the Qwen2.5-Coder evaluation harness; here the weights",
              "are the bundled 4-bit Q4_K_M file de-quantised, the prompt is protege's code prompt (the problem, its",
              "tests for MBPP, and 'Reply with the code in one ```python block'), the first code block is run, and",
              "decoding stops at 384 tokens.", "", measured_on(rows[0])]
    return "\n".join(lines) + "\n"


def markers(model: str, part: str = "") -> tuple[str, str]:
    """The marker lines of a model's section of limited cells (part "") or of its card table (part "card")."""
    name = f"baselines{'-' + part if part else ''}"
    return (f"<!-- protege:{name} {model} start (written by protege baselines; edit outside the markers) -->",
            f"<!-- protege:{name} {model} end -->")


def write_baselines(model: str, out: Path, tasks: list[str] | None, limit: int | None, runs_dir: str,
                    command: str, card: bool = False, progress: bool = True, echo=print,
                    card_only: bool = False) -> Path:
    """Measure the model and write its section of `out` (other models' sections and any prose are kept).
    `card_only`: the card's tasks (those in `tasks`, when given) in full and nothing else (no limited cells)."""
    if not card_only:
        rows = run_baselines(model, tasks, limit, runs_dir, progress, echo)
        # a first section of limited cells goes above the model's card table, where that is already written
        write_marked_section(out, *markers(model), render(model, rows, command), before=markers(model, "card")[0])
    if card or card_only:
        card_rows = run_card(model, runs_dir, progress, echo, tasks if card_only else None)
        write_marked_section(out, *markers(model, "card"), render_card(model, card_rows, command))
    return out
