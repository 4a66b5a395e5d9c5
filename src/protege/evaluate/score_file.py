"""Score a file of predictions from any tool against a task's test references.

    protege score --task trec6 predictions.jsonl      # one {"id": "test-0", "prediction": "NUM"} per line

Ids are the task's test ids (`test-<row>`). Missing or unknown ids are an error that lists a few of them,
so a result is never computed on a silently different item set.
"""
from __future__ import annotations

import json
from pathlib import Path

from protege.errors import ConfigError
from protege.evaluate.summary import classification_summary
from protege.tasks.spec import TaskSpec


def score_predictions(spec: TaskSpec, path: Path) -> dict:
    if spec.kind != "classification":
        raise NotImplementedError(f"task {spec.name}: scoring kind {spec.kind!r} from a file is not built yet")
    preds, problems = {}, []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            preds[str(rec["id"])] = rec["prediction"]
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"line {n}: expected a JSON object with 'id' and 'prediction'")
    items = spec.test_examples()
    ids = {it.id for it in items}
    missing = [i for i in (it.id for it in items) if i not in preds]
    unknown = [i for i in preds if i not in ids]
    if missing:
        problems.append(f"{len(missing)} test ids have no prediction, e.g. {missing[:3]}")
    if unknown:
        problems.append(f"{len(unknown)} ids are not in the test set of {spec.name}, e.g. {unknown[:3]}")
    if problems:
        raise ConfigError(str(path), problems)
    records = [{"id": it.id, "gold": it.label, "prediction": preds[it.id], "correct": preds[it.id] == it.label,
                "seconds": 0.0, "tokens_in": 0} for it in items]
    return classification_summary(records, spec.label_names)
