"""Score a file of predictions from any tool against a task's test references.

    protege score --task trec6 predictions.jsonl      # one {"id": "test-0", "prediction": "NUM"} per line
    protege score --task squad2 preds.jsonl           # prediction: the answer text, "" for unanswerable
    protege score --task mbpp preds.jsonl --allow-code-execution   # prediction: the code (a ```python block is ok)
    protege score --task humaneval samples.jsonl --allow-code-execution   # ids as EvalPlus writes them: HumanEval/0
    protege score --task my-pandas-task.yaml preds.jsonl --allow-code-execution --package pandas --records out.jsonl

Ids are the task's test ids (`test-<row>`), or the data set's own ids where it has them (SQuAD question ids,
HumanEval/MBPP task ids), as lm-eval and EvalPlus write them. Predictions per kind: classification a label name; qa an answer
string; math any text ending in the number; extraction a {slot: value} object or [[slot, value], ...]; code the
program text. Missing or unknown ids are an error that lists a few of them, so a result is never computed on a
silently different item set. The read of the test set is logged next to the predictions file. `--records`
writes one line per item (id, the metrics, and for code: status, reason and the run's seconds); `--package`
shows installed packages to the sandboxed programs (as the task spec's `packages:` does).
"""
from __future__ import annotations

import json
from pathlib import Path

from protege.errors import ConfigError
from protege.evaluate.generative import score_items
from protege.evaluate.summary import summarize
from protege.evaluate.test_access import LOG_NAME, read_test_set
from protege.store import atomic_write_text
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec


def score_predictions(spec: TaskSpec, path: Path, allow_code_execution: bool = False,
                      records_path: Path | None = None) -> dict:
    preds, first_line, problems = {}, {}, []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["no such file; give the JSONL file of predictions to score"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [f"byte {e.start} is not UTF-8 text; save the predictions as UTF-8 JSONL"]) \
            from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            item_id, prediction = str(rec["id"]), rec["prediction"]
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"line {n}: expected a JSON object with 'id' and 'prediction'")
            continue
        if item_id in first_line:
            problems.append(f"line {n}: id {item_id!r} already has a prediction on line {first_line[item_id]}; "
                            "keep one per id")
            continue
        preds[item_id], first_line[item_id] = prediction, n
    items = read_test_set(spec, Path(path).parent / LOG_NAME, "score", "final evaluation", who=str(path))
    ids = {it.id for it in items}
    if preds and not set(preds) & ids:  # the data set's own ids (SQuAD question ids, HumanEval/MBPP task ids)
        from protege.tasks.loaders import native_ids

        native = native_ids(spec, spec.test, "test")
        if set(preds) & set(native):
            preds = {native.get(k, k): v for k, v in preds.items()}
            first_line = {native.get(k, k): v for k, v in first_line.items()}
    missing = [i for i in (it.id for it in items) if i not in preds]
    unknown = [i for i in preds if i not in ids]
    if missing:
        problems.append(f"{len(missing)} test ids have no prediction, e.g. {missing[:3]}")
    if unknown:
        problems.append(f"{len(unknown)} ids are not in the test set of {spec.name}, e.g. {unknown[:3]}")
    if problems:
        raise ConfigError(str(path), problems)
    kind = kind_of(spec)
    predictions = []
    for it in items:
        try:
            predictions.append(kind.read_prediction(spec, preds[it.id]))
        except (ValueError, TypeError) as e:
            problems.append(f"line {first_line[it.id]} (id {it.id}): {e}")
    if problems:
        raise ConfigError(str(path), problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10
                                                      else []))
    scores = score_items(spec, items, predictions, allow_code_execution)
    records = [{"id": it.id, "gold": it.label, "prediction": p, **s}
               for it, p, s in zip(items, predictions, scores)]
    if records_path is not None:
        write_records(records_path, [{"id": it.id, **_renamed(s)} for it, s in zip(items, scores)])
    return summarize(spec, records)


def _renamed(scores: dict) -> dict:
    """Per-item fields as EvalPlus/lm-eval users read them: the sandbox's run time as `seconds`."""
    return {("seconds" if k == "run_s" else k): v for k, v in scores.items()}


def write_records(path: Path, records: list[dict]) -> None:
    try:
        atomic_write_text(Path(path), "".join(json.dumps(r) + "\n" for r in records))
    except OSError as e:
        raise ConfigError(str(path), [f"cannot write the records here ({e.strerror}); give --records a path in a "
                                      "folder you can write"]) from None

