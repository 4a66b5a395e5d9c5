"""Forgetting checks: a fixed general suite (GSM8K, MBPP, NQ-open slices) on the student before and after
training, with gates that fail the run when a headline metric drops more than allowed.

    eval:
      allow_code_execution: true        # MBPP in the suite runs code; without it MBPP is skipped, and says so
      forgetting: {tasks: [gsm8k, mbpp, nq_open], items: 50, max_drop: {gsm8k: 5, nq_open: 5}}

Both models see the same items zero-shot; per-item records go to `forgetting/<task>-before|after.jsonl`.
The eval stage runs the two halves apart, `halves = forgetting_before(...)` before it loads the fine-tuned
student and `forgetting_after(halves, ...)` after its test row, so the untuned work is done first.
A drop is before - after in points (0-100); the paired McNemar p-value says whether it is more than noise.

The "before" records depend on the untuned student and the suite's slice only, not on the run's data or training,
so they are a shared row (shared_rows.py, `runs/<suite task>/eval-row-<key>/`): an experiment that fine-tunes one
student several ways (teachers, methods) evaluates it before training once, and every eval stage keeps its own
copy. A stage that began its own "before" log (before rows were shared) finishes it there.
"""
from __future__ import annotations

import json

from protege.config import EvalConfig
from protege.errors import ConfigError
from protege.scoring.metrics.paired import mcnemar
from protege.evaluate.model_eval import evaluate_lm, evaluate_measured
from protege.evaluate.summary import item_correct, summarize
from protege.evaluate.test_access import LOG_NAME, read_test_set
from protege.store import JsonlLog, StageDir, atomic_write_text
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec, load_task


def skipped_because(task: TaskSpec, spec: TaskSpec, ecfg: EvalConfig) -> str | None:
    """Why the suite task `task` is left out of a run on `spec`, or None when it is measured."""
    if task.name == spec.name:
        return "it is the target task"
    if kind_of(task).EXECUTES_CODE and not ecfg.allow_code_execution:
        return "code execution is off; set eval.allow_code_execution: true to include it"
    return None


def suite_notices(spec: TaskSpec, suite: list[TaskSpec], ecfg: EvalConfig) -> list[str]:
    """One line per task of `suite` (check_suite's, loaded once) that a setting leaves out (the target task's own
    skip is expected, not noted), printed before the first stage of a run that will evaluate: a suite that shrank
    is seen then, not in the report."""
    return [f"forgetting suite: {task.name} will be skipped: {reason}" for task in suite
            if task.name != spec.name and (reason := skipped_because(task, spec, ecfg))]


def forgetting_before(spec: TaskSpec, ecfg: EvalConfig, stage: StageDir, student: str,
                      progress: bool = True) -> list[dict]:
    """The suite's first half: each suite task's test slice (read once, through the access log) and the untuned
    `student`'s records on it (a model name, loaded only if the shared row must be computed), or why the task is
    skipped. forgetting_after takes the list."""
    suite = check_suite(ecfg)
    halves = []
    for task in suite:
        if reason := skipped_because(task, spec, ecfg):
            halves.append({"task": task.name, "skipped": reason})
            continue
        items = read_test_set(task, stage / LOG_NAME, stage, "final evaluation", who="forgetting suite",
                              limit=ecfg.forgetting.items)
        halves.append({"task": task, "items": items,
                       "before": untuned_records(task, items, stage, student, ecfg, progress)})
    return halves


def forgetting_after(halves: list[dict], ecfg: EvalConfig, stage: StageDir, after_lm, progress: bool = True) -> dict:
    """The suite's second half on `after_lm` (the fine-tuned model), measured against forgetting_before's."""
    entries = []
    for half in halves:
        if "skipped" in half:
            entries.append(half)
            continue
        task = half["task"]
        after = evaluate_lm(after_lm, task, half["items"], [],
                            JsonlLog(stage / "forgetting" / f"{task.name}-after.jsonl"),
                            allow_code_execution=ecfg.allow_code_execution, progress=progress,
                            desc=f"forgetting {task.name} after")
        entries.append(measure(task, half["before"], after, ecfg.forgetting.max_drop, ecfg.bootstrap_resamples))
    failures = [e for e in entries if e.get("passed") is False]
    return {"entries": entries, "passed": not failures,
            "failures": [f"{e['task']} {e['metric']} dropped {e['drop']:.1f} points (allowed {e['max_drop']:g})"
                         for e in failures]}


def untuned_records(task: TaskSpec, items, stage: StageDir, student: str, ecfg: EvalConfig,
                    progress: bool = True) -> list[dict]:
    """The untuned student's records on one suite task's items, from the shared row (computed there once, or
    adopted from a finished `protege baselines`/`protege eval` run of the same slice); the stage keeps a copy."""
    from protege.evaluate.shared_rows import SharedRow
    from protege.models.resolve import load_lm

    own = JsonlLog(stage / "forgetting" / f"{task.name}-before.jsonl")
    desc = f"forgetting {task.name} before"
    if {it.id for it in items} <= own.ids():  # this stage's copy (a rerun after a kill in the "after" half)
        by_id = {r["id"]: r for r in own.read()}
        return [by_id[it.id] for it in items]
    if own.ids():  # a stage that started this log itself, before the rows were shared: it finishes it
        return evaluate_lm(load_lm(student), task, items, [], own, allow_code_execution=ecfg.allow_code_execution,
                           progress=progress, desc=desc)
    scoring = "likelihood"  # evaluate_lm's default, what the suite has always used
    slice_cfg = ecfg.model_copy(update={"max_test_items": ecfg.forgetting.items})
    row = SharedRow(stage.path.parent.parent / task.name, task, student, [], slice_cfg, scoring)

    def compute(log: JsonlLog) -> tuple[list[dict], dict]:
        return evaluate_measured(load_lm(student), task, items, [], log, scoring, ecfg.allow_code_execution, desc,
                                 progress)

    records, _ = row.records_or_compute(task, student, 0, items, ecfg.allow_code_execution, compute, desc)
    atomic_write_text(own.path, "".join(json.dumps(r) + "\n" for r in records))
    return records


def measure(task: TaskSpec, before: list[dict], after: list[dict], max_drop: dict[str, float],
            resamples: int = 1000) -> dict:
    """Before/after scores of one suite task, the drop, the paired test and the gate's verdict."""
    metric = task.headline_metric
    sb, sa = summarize(task, before, resamples), summarize(task, after, resamples)
    drop = 100 * (sb[metric] - sa[metric])
    test = mcnemar([item_correct(task, r) for r in before], [item_correct(task, r) for r in after])
    limit = max_drop.get(f"{task.name}.{metric}", max_drop.get(task.name))
    return {"task": task.name, "metric": metric, "items": len(before),
            "before": sb[metric], "before_ci": sb[f"{metric}_ci"], "after": sa[metric], "after_ci": sa[f"{metric}_ci"],
            "drop": drop, "p_value": test["p_value"], "only_before_right": test["b"], "only_after_right": test["c"],
            "max_drop": limit, "passed": None if limit is None else drop <= limit}


def at_floor(entries: list[dict]) -> list[str]:
    """The forgetting-suite tasks the student scored 0 on before training: nothing there to lose, so their drop
    cannot be above 0 whatever training did."""
    return [e["task"] for e in entries if "skipped" not in e and e["before"] == 0]


def check_suite(ecfg: EvalConfig) -> list[TaskSpec]:
    """Load the suite's tasks and check the gate keys, up front (before any stage spends time)."""
    suite = []
    for name in ecfg.forgetting.tasks:
        try:
            suite.append(load_task(name))
        except ConfigError as e:
            raise ConfigError(e.source, e.problems + ["(this task is in eval.forgetting.tasks; point PROTEGE_DATA at "
                                                      "the data sets, or drop it from the suite)"]) from None
    _check_gate_keys(suite, ecfg.forgetting.max_drop)
    return suite


def _check_gate_keys(suite: list[TaskSpec], max_drop: dict[str, float]) -> None:
    known = {t.name for t in suite} | {f"{t.name}.{t.headline_metric}" for t in suite}
    bad = [k for k in max_drop if k not in known]
    if bad:
        raise ConfigError("eval.forgetting.max_drop", [f"{k}: not a task of the suite (or task.metric); "
                                                        f"use one of {sorted(known)}" for k in bad])
