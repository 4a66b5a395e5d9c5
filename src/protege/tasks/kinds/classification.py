"""Classification: the assistant writes one label word (its verbalizer); the teacher writes new inputs per label.

Scored by accuracy and macro-F1 over the spec's labels; evaluation may instead rank the label words by
likelihood (eval.scoring, protege.evaluate.classify).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from protege.scoring.summaries import classification_summary, mean_of
from protege.tasks.kinds.chat import chat_with_shots, closed_book, input_key
from protege.tasks.spec import Example, TaskSpec

NAME = "classification"
METRICS = ("accuracy", "macro_f1")
COLUMNS = [("accuracy", "accuracy"), ("macro_f1", "macro-F1")]
SECONDARY_METRICS: tuple[str, ...] = ("macro_f1",)
REQUIRED_FIELDS = ("text", "label")
LABELLED = True
EXECUTES_CODE = False
REWRITES_ANSWERS = False
MAX_NEW_TOKENS = 8
STOP: list[str] = ["\n"]
STOP_PATTERN: str | None = None
FEW_SHOTS = 1  # per label
GENERATION_MAX_NEW_TOKENS = 40
MAX_TEXT_CHARS = 300  # a TREC question is ~60 characters
COMPARED_FIELDS = ("text",)
dedup_key = input_key
is_open_book = closed_book


def check_spec(spec: TaskSpec) -> list[str]:
    problems = []
    if not spec.labels:
        problems.append("labels: a classification task needs a list of labels")
    names = spec.label_names
    if len(set(names)) != len(names):
        problems.append("labels: label names must be unique")
    if isinstance(spec.seeds, list):
        for i, ex in enumerate(spec.seeds):
            if ex.label not in names:
                problems.append(f"seeds[{i}].label: {ex.label!r} is not one of the labels {names}")
    return problems


def read_row(spec: TaskSpec, row: dict) -> tuple[Optional[dict], Optional[str]]:
    if row["label"] not in spec.label_names:
        return None, f"has label {row['label']!r}, not one of {spec.label_names}"
    return row, None


# --- answering -----------------------------------------------------------------------------------------------

def instruction(spec: TaskSpec) -> str:
    words = ", ".join(l.word for l in spec.labels or [])
    return f"{spec.description}\nAnswer with one of: {words}."


def few_shot_examples(spec: TaskSpec, per_label: int) -> list[Example]:
    """Shots from the seeds only (never the test set), interleaved across labels in a fixed order."""
    if per_label <= 0:
        return []
    seeds = spec.seed_examples()
    picked = []
    for k in range(per_label):
        for label in spec.label_names:
            of_label = [s for s in seeds if s.label == label]
            if k < len(of_label):
                picked.append(of_label[k])
    return picked


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, instruction(spec), lambda ex: f"Text: {ex.text}", shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    return spec.label(item.label).word


def parse(spec: TaskSpec, output: str) -> str | None:
    """Generate-then-parse: the label whose verbalizer appears first in the output (None if none does)."""
    lowered = output.lower()
    best, best_pos = None, len(lowered) + 1
    for label in spec.labels or []:
        m = re.search(rf"\b{re.escape(label.word.lower())}\b", lowered)
        if m and m.start() < best_pos:
            best, best_pos = label.name, m.start()
    return best


def read_prediction(spec: TaskSpec, value):
    """A label name; null is no answer (wrong). Anything else is refused rather than silently scored wrong."""
    if value is None or value in spec.label_names:
        return value
    raise ValueError(f"prediction {value!r} is not one of the labels {spec.label_names} (or null for no answer)")


def score_items(spec: TaskSpec, items: Sequence[Example], predictions: list, allow_code_execution: bool) -> list[dict]:
    return [{"accuracy": float(p == item.label)} for item, p in zip(items, predictions)]


def item_score(metric: str, record: dict) -> float:
    """Right or wrong (macro-F1 has no per-item form: accuracy stands in)."""
    return float(record["prediction"] == record["gold"])


def item_correct(record: dict) -> bool:
    return record["prediction"] == record["gold"]


def summarize(spec: TaskSpec, records: list[dict], resamples: int) -> dict:
    return classification_summary(records, spec.label_names, resamples)


def metric_fn(spec: TaskSpec, name: str):
    from protege.scoring.metrics.classification import macro_f1

    if name == "macro_f1":
        return lambda records: macro_f1([r["gold"] for r in records], [r["prediction"] for r in records],
                                        spec.label_names)
    if name == "accuracy":
        return lambda records: sum(r["prediction"] == r["gold"] for r in records) / len(records) if records else 0.0
    return lambda records: mean_of(name)(records, None)


# --- synthetic data ------------------------------------------------------------------------------------------

def generation_groups(spec: TaskSpec, seeds: list[Example]) -> dict[Optional[str], list[Example]]:
    return {label: [s for s in seeds if s.label == label] for label in spec.label_names}


def generation_prompt(spec: TaskSpec, label: Optional[str], shown: Sequence[Example], topic: str | None = None,
                      persona: str | None = None) -> list[dict]:
    """Ask the teacher for one new input of the given label, showing a few seeds of that label, optionally
    steered to a topic and written as a persona would."""
    lab = spec.label(label)
    what = f"{lab.word} ({lab.description})" if lab.description else lab.word
    listed = "\n".join(f"- {e.text}" for e in shown)
    steer = (f" It should be about {topic}." if topic else "") + (f" Write it as {persona} would." if persona else "")
    content = (
        f"Task: {spec.description}\n"
        f"Here are examples labelled \"{what}\":\n{listed}\n\n"
        f"Write one new, different example labelled \"{lab.word}\".{steer} "
        "Reply with the example only, on one line."
    )
    return [{"role": "user", "content": content}]


def generation_max_new_tokens(spec: TaskSpec) -> int:
    return GENERATION_MAX_NEW_TOKENS


def parse_generated_text(raw: str) -> str | None:
    """The first non-empty line without list markers or quotes; None when nothing usable is left."""
    for line in raw.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)]|example:|new example:)\s*", "", line.strip(), flags=re.I)
        line = line.strip().strip('"').strip("'").strip()
        if line:
            return line
    return None


def read_generated(spec: TaskSpec, raw: str) -> tuple[Optional[dict], Optional[str]]:
    """The new input (its label is the request's: the generate stage adds it)."""
    text = parse_generated_text(raw)
    return ({"text": text}, None) if text else (None, "empty reply")




def check_item(spec: TaskSpec, item: Example, open_book: bool):
    if item.label not in spec.label_names:
        return "unknown_label", {"label": item.label, "labels": spec.label_names}
    return None




def answer_record(spec: TaskSpec, item: dict, text: str) -> dict:
    return {"ok": False, "error": "a classification item's answer is its label; the teacher does not rewrite it"}
