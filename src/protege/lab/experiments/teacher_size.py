"""A large or a capacity-matched teacher for code: both teachers x both students on one code config.

    python -m protege.lab.experiments.teacher_size configs/teacher-size-code.yaml \\
        --out docs/experiments/teacher-size-code.md [--phase data|all] [--report-only] [overrides...]

Teachers: Qwen2.5-Coder-1.5B-Instruct ("large") and -0.5B-Instruct ("capacity-matched"), bundled (make teachers).
Students: SmolLM2-135M-Instruct (another family and tokenizer) and Qwen2.5-Coder-0.5B depth-pruned to half its
layers by `protege student prune` (the teachers' family and tokenizer). First each teacher answers the config's
problems and curation keeps what passes (`--phase data` stops there); then every student is fine-tuned on the
first N curated rows of each teacher, N the smaller teacher's count, so the arms differ in whose answers they
learn from, not in how many. Every stage is an ordinary run directory: a killed run resumes, a finished one is
reused. The table reads the eval stages' results.json and per-item samples; the capacity diagnostic is the
student's NLL on each teacher's curated rows before training (benchmark/capacity.py).
"""
from __future__ import annotations

import sys

from protege.config import load_config
from protege.evaluate.rows import Row
from protege.lab.experiments.compare import fine_tuned, paired, paired_test, row, test_reads, train_seconds
from protege.lab.experiments.doc_table import phased_command, run_or_read
from protege.pipeline import Pipeline
from protege.store import ANSWERS, RESULTS, JsonlLog, read_json

TEACHERS = {"capacity-matched (0.5B)": "bundled:qwen2.5-coder-0.5b-instruct",
            "large (1.5B)": "bundled:qwen2.5-coder-1.5b-instruct"}
PRUNE_FROM, PRUNE_KEEP = "bundled:qwen2.5-coder-0.5b-instruct", 12  # of 24 decoder layers


def pruned_student(run: bool = True) -> str:
    """The half-depth Qwen2.5-Coder-0.5B (pruned once, then reused from the cache); `run=False`: its cache folder
    named, not made (the arms' stage keys need only the name)."""
    from protege.models.prune import cached_prune, pruned_dir

    return f"hf:{cached_prune(PRUNE_FROM, PRUNE_KEEP) if run else pruned_dir(PRUNE_FROM, PRUNE_KEEP)}"


def students(run: bool = True) -> dict[str, str]:
    return {"SmolLM2-135M-Instruct": "bundled:smollm2-135m-instruct",
            f"Qwen2.5-Coder-0.5B pruned to {PRUNE_KEEP} layers": pruned_student(run)}


def data_phase(config: str, overrides: list[str], run: bool = True) -> dict[str, dict]:
    """Each teacher answers the problems; curation keeps the passing answers. {teacher label: facts}. `run=False`
    reads them, and raises Unfinished where one is not finished."""
    out = {}
    for label, teacher in TEACHERS.items():
        cfg = load_config(config, list(overrides) + [f"generate.teacher={teacher}"])
        pipe = Pipeline(cfg)
        run_or_read(pipe, "curate", label, run)
        answers = JsonlLog(pipe.stages["answers"] / ANSWERS).read()
        out[label] = {"teacher": teacher, "curate": pipe.stages["curate"],
                      "kept": read_json(pipe.stages["curate"] / "MANIFEST.json")["summary"]["kept"],
                      "answered": len(answers),
                      "tokens_out": sum(a.get("tokens", {}).get("teacher", 0) for a in answers),
                      "seconds": _all_runs(read_json(pipe.stages["answers"] / "MANIFEST.json")["summary"])}
    return out


def _all_runs(summary: dict) -> float | None:
    """A stage's seconds over every process that worked on it (a resumed stage's earlier runs included)."""
    return summary.get("stage_seconds_all_runs", summary.get("stage_seconds"))


def arms(config: str, overrides: list[str], data: dict[str, dict], run: bool = True) -> list[dict]:
    """Every student x teacher arm, run to its evaluation; `run=False` reads the arms whose evaluation is done
    and lists the others as pending (the table of a run still going on in another process)."""
    from protege.benchmark.capacity import run_capacity

    n = min(d["kept"] for d in data.values())
    results = []
    for student_label, student in students(run).items():
        for teacher_label, facts in data.items():
            cfg = load_config(config, list(overrides) + [f"generate.teacher={facts['teacher']}",
                                                        f"train.student={student}", f"train.max_examples={n}"])
            pipe = Pipeline(cfg)
            if not run and not pipe.stages["eval"].complete:
                results.append({"student": student_label, "teacher": teacher_label, "pending": True})
                continue
            capacity = run_capacity(cfg)
            pipe.run("eval")
            results.append({"student": student_label, "teacher": teacher_label, "n": n, "cfg": cfg, "spec": pipe.spec,
                            "capacity_nll": capacity["nll_per_token"], "eval_dir": str(pipe.stages["eval"].path),
                            "eval": read_json(pipe.stages["eval"] / RESULTS),
                            "train": pipe.train_summary()})
    return results


def _pct(value: float, ci=None) -> str:
    return f"{100 * value:.1f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def _suite(result: dict, task: str) -> str:
    """A forgetting-suite task's headline before -> after fine-tuning, in points."""
    entries = {e["task"]: e for e in result["eval"].get("forgetting", {}).get("entries", [])}
    e = entries.get(task)
    return "n/a" if e is None or "skipped" in e else f"{100 * e['before']:.1f} -> {100 * e['after']:.1f}"


def table(data: dict[str, dict], results: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "Teachers' data (the same problems for both):", "",
             "| teacher | problems answered | kept by curation | teacher tokens out | answer time (s) |",
             "|---|---|---|---|---|"]
    for label, d in data.items():
        lines.append(f"| {label} | {d['answered']} | {d['kept']} | {d['tokens_out']:,} | {d['seconds']} |")
    pending = [r for r in results if r.get("pending")]
    results = [r for r in results if not r.get("pending")]
    if pending:
        lines += ["", "Arms still running (their rows appear when their evaluation is done): "
                  + "; ".join(f"{r['student']} <- {r['teacher']}" for r in pending) + "."]
    if not results:
        return "\n".join(lines) + "\n"
    metric = results[0]["eval"]["metric"]
    lines += ["", f"Students: fine-tuned on the first {results[0]['n']} curated rows of each teacher. MBPP test: "
              f"{results[0]['eval']['test_items']} problems, {metric} in points with 95% bootstrap CIs. HumanEval "
              "pass@1 (all 164) and NQ-open exact match (first 164) before -> after fine-tuning.", "",
              "| student | teacher | zero-shot | fine-tuned | teacher row | HumanEval | NQ-open "
              "| capacity NLL | train s | eval run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        zero, teacher_row = row(r, Row.ZERO_SHOT), next((x for x in r["eval"]["rows"] if x["row"] == Row.TEACHER), None)
        value, ci = fine_tuned(r)
        lines.append(f"| {r['student']} | {r['teacher']} | {_pct(zero[metric])} | {_pct(value, ci)} | "
                     f"{_pct(teacher_row[metric]) if teacher_row else 'n/a'} | {_suite(r, 'humaneval')} | "
                     f"{_suite(r, 'nq_open')} | "
                     f"{r['capacity_nll']:.3f} | {train_seconds(r)} | `{r['eval_dir']}` |")
    lines += ["", "Paired (exact McNemar on the same MBPP test items), the capacity-matched vs the large teacher's "
              "student:", ""]
    for student in dict.fromkeys(r["student"] for r in results):
        pair = [r for r in results if r["student"] == student]
        if len(pair) == 2:
            lines.append(f"- {student}: {paired(pair[0], pair[1])}. {capacity_verdict(pair)}")
    lines += ["", test_reads(results)]
    return "\n".join(lines) + "\n"


def capacity_verdict(pair: list[dict], alpha: float = 0.05) -> str:
    """Whether the capacity diagnostic (the teacher on whose data the untouched student has the lower NLL) picked
    the teacher whose fine-tuned student passes more MBPP test items; a difference McNemar cannot separate from
    chance at `alpha` has no winner to predict, and the sentence says so."""
    a, b = pair
    picked = a if a["capacity_nll"] < b["capacity_nll"] else b
    nll = f"NLL {a['capacity_nll']:.3f} vs {b['capacity_nll']:.3f}"
    test = paired_test(a, b)
    if test["p_value"] >= alpha or test["b"] == test["c"]:
        return (f"The diagnostic picks the {picked['teacher']} teacher ({nll}); the two students are not separable "
                f"at p < {alpha}, so this arm pair cannot confirm or refute it.")
    winner = a if test["b"] > test["c"] else b
    verdict = "predicted" if winner is picked else "did not predict"
    return (f"The diagnostic picks the {picked['teacher']} teacher ({nll}); the {winner['teacher']} teacher's student "
            f"wins (p < {alpha}): the diagnostic {verdict} the winner.")


def main(argv: list[str]) -> None:
    phased_command(argv, __doc__, "protege.lab.experiments.teacher_size", data_phase, arms, table,
                   lambda data: {k: {**v, "curate": str(v["curate"].path)} for k, v in data.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
