"""Read examples from JSONL, JSON, CSV and TREC's `LABEL:fine text` files, with a field mapping.

Ids are stable: `<split>-<row number in the file>`, so samples and scores can be joined across runs.
"""
from __future__ import annotations

import csv
import json
import random
from collections import defaultdict

from protege.errors import ConfigError
from protege.tasks.spec import DataSource, Example, TaskSpec


def read_rows(path, fmt: str) -> list[dict]:
    if fmt == "trec":
        rows = []
        # TREC files are Latin-1 (a few accented names); coarse label before ':', fine after.
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.strip():
                head, text = line.split(" ", 1)
                rows.append({"label": head.split(":")[0], "fine_label": head, "text": text.strip()})
        return rows
    if fmt == "csv":
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    if fmt == "json":
        data = json.loads(path.read_text())
        return data if isinstance(data, list) else data.get("data", [])
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_examples(spec: TaskSpec, source: DataSource, split: str) -> list[Example]:
    path = spec.resolve_path(source.path)
    rows = read_rows(path, source.format)
    text_field = source.fields.get("text", "text")
    label_field = source.fields.get("label", "label")
    examples, problems = [], []
    for i, row in enumerate(rows):
        if text_field not in row:
            problems.append(f"{split}.fields.text: row {i} of {path} has no field {text_field!r} (has {sorted(row)})")
            break
        label = row.get(label_field)
        if spec.kind == "classification" and label not in spec.label_names:
            problems.append(f"{split}: row {i} of {path} has label {label!r}, not one of {spec.label_names}")
            if len(problems) > 5:
                break
            continue
        examples.append(Example(id=f"{split}-{i}", text=str(row[text_field]), label=label))
    if problems:
        raise ConfigError(spec.source_file or spec.name, problems)
    if source.per_label is not None:
        examples = _per_label(examples, source.per_label, source.skip_per_label)
    if source.limit is not None:
        examples = examples[: source.limit]
    return examples


def _per_label(examples: list[Example], k: int, skip: int) -> list[Example]:
    """A fixed random sample of k examples per label (after skipping `skip`), in file order."""
    by_label = defaultdict(list)
    for ex in examples:
        by_label[ex.label].append(ex)
    chosen = set()
    for label, items in by_label.items():
        rng = random.Random(f"per-label-{label}")
        shuffled = items[:]
        rng.shuffle(shuffled)
        chosen.update(e.id for e in shuffled[skip : skip + k])
    return [e for e in examples if e.id in chosen]
