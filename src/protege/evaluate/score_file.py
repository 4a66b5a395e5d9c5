"""Score a file of predictions from any tool against a task's test references.

    protege score --task trec6 predictions.jsonl      # one {"id": "test-0", "prediction": "NUM"} per line
    protege score --task squad2 preds.jsonl           # prediction: the answer text, "" for unanswerable
    protege score --task mbpp preds.jsonl --allow-code-execution   # prediction: the code (a ```python block is ok)

Ids are the task's test ids (`test-<row>`). Predictions per kind: classification a label name; qa an answer
string; math any text ending in the number; extraction a {slot: value} object or [[slot, value], ...]; code the
program text. Missing or unknown ids are an error that lists a few of them, so a result is never computed on a
silently different item set. The read of the test set is logged next to the predictions file.
"""
from __future__ import annotations

import json
from pathlib import Path

from protege.errors import ConfigError
from protege.evaluate.generative import score_items
from protege.evaluate.summary import summarize
from protege.evaluate.test_access import LOG_NAME, read_test_set
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec


def score_predictions(spec: TaskSpec, path: Path, allow_code_execution: bool = False) -> dict:
    preds, problems = {}, []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            preds[str(rec["id"])] = rec["prediction"]
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"line {n}: expected a JSON object with 'id' and 'prediction'")
    items = read_test_set(spec, Path(path).parent / LOG_NAME, "score", "final evaluation", who=str(path))
    ids = {it.id for it in items}
    missing = [i for i in (it.id for it in items) if i not in preds]
    unknown = [i for i in preds if i not in ids]
    if missing:
        problems.append(f"{len(missing)} test ids have no prediction, e.g. {missing[:3]}")
    if unknown:
        problems.append(f"{len(unknown)} ids are not in the test set of {spec.name}, e.g. {unknown[:3]}")
    if problems:
        raise ConfigError(str(path), problems)
    kind = kind_of(spec)
    predictions = [kind.read_prediction(spec, preds[it.id]) for it in items]
    scores = score_items(spec, items, predictions, allow_code_execution)
    records = [{"id": it.id, "gold": it.label, "prediction": p, **s}
               for it, p, s in zip(items, predictions, scores)]
    return summarize(spec, records)

