"""Forgetting checks: a fixed general suite (GSM8K, MBPP, NQ-open slices) on the student before and after
training, with gates that fail the run when a headline metric drops more than allowed.

    eval:
      allow_code_execution: true        # MBPP in the suite runs code; without it MBPP is skipped, and says so
      forgetting: {tasks: [gsm8k, mbpp, nq_open], items: 50, max_drop: {gsm8k: 5, nq_open: 5}}

Both models see the same items zero-shot; per-item records go to `forgetting/<task>-before|after.jsonl`.
A drop is before - after in points (0-100); the paired McNemar p-value says whether it is more than noise.
"""
from __future__ import annotations

from protege.config import EvalConfig
from protege.errors import ConfigError
from protege.scoring.metrics.paired import mcnemar
from protege.evaluate.model_eval import evaluate_lm
from protege.evaluate.summary import item_correct, summarize
from protege.evaluate.test_access import LOG_NAME, read_test_set
from protege.store import JsonlLog, StageDir
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec, load_task


def run_forgetting(spec: TaskSpec, ecfg: EvalConfig, stage: StageDir, before_lm, after_lm,
                   progress: bool = True) -> dict:
    fcfg = ecfg.forgetting
    suite = check_suite(ecfg)
    entries = []
    for task in suite:
        if task.name == spec.name:
            entries.append({"task": task.name, "skipped": "it is the target task"})
            continue
        if kind_of(task).EXECUTES_CODE and not ecfg.allow_code_execution:
            entries.append({"task": task.name, "skipped": "code execution is off; set eval.allow_code_execution: "
                                                          "true to include it"})
            continue
        items = read_test_set(task, stage / LOG_NAME, stage, "final evaluation", who="forgetting suite",
                              limit=fcfg.items)
        records = {}
        for when, lm in (("before", before_lm), ("after", after_lm)):
            records[when] = evaluate_lm(lm, task, items, [], JsonlLog(stage / "forgetting" / f"{task.name}-{when}.jsonl"),
                                        allow_code_execution=ecfg.allow_code_execution, progress=progress,
                                        desc=f"forgetting {task.name} {when}")
        entries.append(measure(task, records["before"], records["after"], fcfg.max_drop, ecfg.bootstrap_resamples))
    failures = [e for e in entries if e.get("passed") is False]
    return {"entries": entries, "passed": not failures,
            "failures": [f"{e['task']} {e['metric']} dropped {e['drop']:.1f} points (allowed {e['max_drop']:g})"
                         for e in failures]}


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
