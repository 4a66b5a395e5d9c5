"""Evaluate any model on any task, outside a distillation run: `protege eval --model M --task T`.

    results = evaluate_model("bundled:smollm2-135m-instruct", load_task("gsm8k"), shots=4, limit=200)
    results = evaluate_model(model, load_task("mbpp"), split="validation", allow_code_execution=True)

`split="validation"` scores the task's validation split instead (to choose a model, a depth, a setting): the
test set is not read, and the loader drops validation rows that repeat a test item.

The output folder `runs/<task>/model-eval-<key>/` (key = hash of model, task spec, shots, limit and scoring, and
the split when not test) holds samples.jsonl (one record per item: id, prompt and target hashes, raw output,
prediction, scores, time, tokens), results.json (metrics with 95% bootstrap intervals, config, versions, git
hash, date) and MANIFEST.json. An interrupted evaluation resumes from samples.jsonl; a finished one is reused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, get_args

from protege.choices import Split
from protege.evaluate.summary import summarize
from protege.evaluate.test_access import LOG_NAME, ensure_not_test, read_test_set
from protege.models.precision import key_part
from protege.provenance import provenance
from protege.store import RESULTS, SAMPLES, JsonlLog, StageDir, atomic_write_json, content_key, read_json
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec

SPLITS = get_args(Split)


def pick_shots(spec: TaskSpec, shots: int) -> list[Example]:
    """Few-shot examples from the seeds only (never the test set): `shots` per label for classification,
    else the first `shots` seeds."""
    if shots <= 0:
        return []
    picked = kind_of(spec).few_shot_examples(spec, shots)
    return ensure_not_test(spec, picked, "few-shot examples")


def evaluate_lm(lm, spec: TaskSpec, items: Sequence[Example], shots: Sequence[Example], log: JsonlLog,
                scoring: str = "likelihood", allow_code_execution: bool = False, desc: str = "eval",
                progress: bool = True) -> list[dict]:
    """Per-item records of one model in one prompting mode: label likelihood or generate-then-parse for
    classification, generate-then-score for every other kind. Prompts that do not fit the model's context
    stop it before the first item (context_check.py)."""
    from protege.evaluate.context_check import check_context

    kind = kind_of(spec)
    if kind.LABELLED:
        answer = (max(lm.count_tokens(w) for w in (l.word for l in spec.labels or [])) + 2
                  if scoring == "likelihood" and hasattr(lm, "count_tokens") else 8)
    else:
        answer = kind.MAX_NEW_TOKENS
    check_context(lm, spec, items, shots, answer)
    if kind.LABELLED:
        from protege.evaluate.classify import evaluate_classification

        return evaluate_classification(lm, spec, items, shots, log, scoring=scoring, desc=desc, progress=progress)
    from protege.evaluate.generative import evaluate_generative

    return evaluate_generative(lm, spec, items, shots, log, desc=desc, progress=progress,
                               allow_code_execution=allow_code_execution)


def evaluate_measured(lm, spec: TaskSpec, items: Sequence[Example], shots: Sequence[Example], log: JsonlLog,
                      scoring: str, allow_code_execution: bool, desc: str, progress: bool = True,
                      remote: bool = False) -> tuple[list[dict], dict]:
    """evaluate_lm, and the memory it took: the row's cost columns (None for a remote model, whose memory is the
    server's, not this process's) and the scoring it used ("generate" for kinds without labels)."""
    from protege.evaluate.memory import PeakMemory, weights_mb

    with PeakMemory() as peak:
        records = evaluate_lm(lm, spec, items, shots, log, scoring=scoring,
                              allow_code_execution=allow_code_execution, desc=desc, progress=progress)
    return records, {"peak_rss_mb": None if remote else peak.mb, "weights_mb": None if remote else weights_mb(lm),
                     "scoring": scoring if kind_of(spec).LABELLED else "generate"}


def model_eval_stage(runs_dir: str | Path, spec: TaskSpec, model: str, shots: int, limit: int | None,
                     scoring: str, split: str = "test") -> tuple[dict, StageDir]:
    """The setting of one model's evaluation and its folder `runs/<task>/model-eval-<key>/` (not created).
    The split enters the key only when it is not the test set, so the test evaluations keep their folders."""
    setting = {"model": model, "shots": shots, "limit": limit,
               "scoring": scoring if kind_of(spec).LABELLED else "generate"}
    if split != "test":
        setting["split"] = split
    key = content_key({"task": spec.key_fields(), **setting, **key_part(model)})
    return setting, StageDir(Path(runs_dir), spec.name, "model-eval", key)


def validation_items(spec: TaskSpec, limit: int | None = None) -> list[Example]:
    """The task's validation items (the first `limit`); a task without a validation split is refused, and so is
    an item with a test id (rows repeating a test item's text are already dropped by the loader)."""
    from protege.errors import ConfigError

    if spec.validation is None:
        raise ConfigError(f"task {spec.name}", [
            "it declares no validation split: add `validation:` to the task spec (a source other than the test "
            "set), or evaluate on the test set (split test) for a final score"])
    return ensure_not_test(spec, spec.validation_examples()[:limit], "validation evaluation")


def evaluate_model(model: str, spec: TaskSpec, shots: int = 0, limit: int | None = None,
                   scoring: str = "likelihood", allow_code_execution: bool = False, runs_dir: str | Path = "runs",
                   resamples: int = 1000, progress: bool = True, echo=print, executor=None,
                   split: str = "test") -> dict:
    """`executor`: ExecutorSettings of kind ray to score on Ray workers (evaluate/sharded.py); None: here.
    `split`: "test" (the final evaluation, logged in the test-access log) or "validation"."""
    from protege.errors import ConfigError
    from protege.models.resolve import load_lm

    if limit is not None and limit < 1:
        raise ConfigError("--limit", [f"{limit} test items would give no score; give at least 1, or leave --limit "
                                      "out for the whole test set"])
    if kind_of(spec).EXECUTES_CODE and not allow_code_execution:
        from protege.scoring.sandbox import CodeExecutionNotAllowed

        raise CodeExecutionNotAllowed()
    if model.startswith("openai:") and scoring == "likelihood" and kind_of(spec).LABELLED:
        echo(f"[eval] {model} is an endpoint, which cannot score label likelihoods: generating and parsing instead")
        scoring = "generate"
    if split not in SPLITS:
        raise ConfigError("split", [f"unknown split {split!r}: choose one of {', '.join(SPLITS)}"])
    setting, stage = model_eval_stage(runs_dir, spec, model, shots, limit, scoring, split)
    if stage.complete:
        echo(f"[eval] reused {stage.path}")
        return {**read_json(stage / RESULTS), "path": str(stage.path)}
    stage.start({"task": spec.name, **setting})
    examples = pick_shots(spec, shots)
    items = (read_test_set(spec, stage / LOG_NAME, stage, "final evaluation", who=model, limit=limit)
             if split == "test" else validation_items(spec, limit))
    if executor is not None and executor.kind == "ray" and not model.startswith("openai:"):
        from protege.evaluate.sharded import evaluate_on_ray

        records = evaluate_on_ray(model, None, spec, items, examples, JsonlLog(stage / SAMPLES), scoring,
                                  allow_code_execution, executor, progress=progress, desc=f"eval {model} {shots}-shot")
    else:
        lm = load_lm(model, batch_size=32)
        records = evaluate_lm(lm, spec, items, examples, JsonlLog(stage / SAMPLES), scoring=scoring,
                              allow_code_execution=allow_code_execution, progress=progress,
                              desc=f"eval {model} {shots}-shot")
    results = {"task": spec.name, "kind": spec.kind, "metric": spec.headline_metric, **setting,
               f"{split}_items": len(items), "shot_ids": [e.id for e in examples],
               "summary": summarize(spec, records, resamples), **provenance()}
    atomic_write_json(stage / RESULTS, results)
    stage.finish({"metric": spec.headline_metric, "value": results["summary"][spec.headline_metric]})
    results["path"] = str(stage.path)
    return results
