"""Slot extraction: the assistant writes a JSON object of slot -> value copied from the text ({} if none).

Scored by slot F1, micro-averaged over (slot, value) pairs, and the share of items with every slot right.
"""
from __future__ import annotations

import json
import re
from typing import Optional, Sequence

from protege.scoring.metrics.spans import span_counts
from protege.scoring.summaries import item_f1, mean_metric, mean_of, metric_with_ci, micro_f1
from protege.tasks.kinds.chat import as_is, chat_with_shots, closed_book, first_seeds, input_key, one_group
from protege.tasks.kinds.sections import item_request, need, read_sections
from protege.tasks.spec import Example, TaskSpec

NAME = "extraction"
METRICS = ("slot_f1",)
COLUMNS = [("slot_f1", "slot F1"), ("exact_match", "all slots right")]
SECONDARY_METRICS: tuple[str, ...] = ("exact_match",)
REQUIRED_FIELDS = ("text", "spans")
LABELLED = False
EXECUTES_CODE = False
REWRITES_ANSWERS = False
MAX_NEW_TOKENS = 48
STOP: list[str] = []
STOP_PATTERN: str | None = None
FEW_SHOTS = 4
GENERATION_MAX_NEW_TOKENS = 80
MAX_TEXT_CHARS = 300
COMPARED_FIELDS = ("text",)
HEADERS = ["Asked", "Message", "Slots"]


def check_spec(spec: TaskSpec) -> list[str]:
    if not spec.slots:
        return ["slots: an extraction task needs a list of slots, e.g. [{name: date}, {name: time}]"]
    return []


read_row = as_is
few_shot_examples = first_seeds
generation_groups = one_group
is_open_book = closed_book
dedup_key = input_key


def instruction(spec: TaskSpec) -> str:
    slots = "\n".join(f"- {s.name}: {s.description}" if s.description else f"- {s.name}" for s in spec.slots or [])
    return (f"{spec.description}\nSlots:\n{slots}\nReply with a JSON object mapping each slot that is present to "
            "the exact words from the message; reply {} when none is present.")


def render_input(item: Example) -> str:
    asked = f"(The assistant had just asked for: {item.context}.)\n" if item.context else ""
    return f"{asked}Message: {item.text}"


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, instruction(spec), render_input, shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    return json.dumps({slot: value for slot, value in item.spans or []})


def parse(spec: TaskSpec, output: str) -> list[list[str]]:
    """(slot, value) pairs for known slots: the first JSON object in the output, else `slot: value` lines."""
    known = set(spec.slot_names)
    match = re.search(r"\{.*?\}", output, flags=re.S)
    pairs: list[list[str]] = []
    if match:
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            for slot, value in obj.items():
                if slot in known and isinstance(value, (str, int, float)) and str(value).strip():
                    pairs.append([slot, str(value)])
            return pairs
    for line in output.splitlines():
        slot, sep, value = line.partition(":")
        slot = slot.strip().strip('"-* ')
        if sep and slot in known and value.strip().strip('",'):
            pairs.append([slot, value.strip().strip('",')])
    return pairs


def read_prediction(spec: TaskSpec, value):
    """A {slot: value} object or [[slot, value], ...]."""
    if isinstance(value, dict):
        return [[slot, str(v)] for slot, v in value.items()]
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return [[str(slot), str(v)] for slot, v in value]
    raise ValueError(f"prediction {value!r} is neither a {{slot: value}} object nor a list of [slot, value] pairs")


def score_items(spec: TaskSpec, items: Sequence[Example], predictions: list, allow_code_execution: bool) -> list[dict]:
    out = []
    for item, prediction in zip(items, predictions):
        tp, fp, fn = span_counts([tuple(p) for p in item.spans or []], [tuple(p) for p in prediction])
        out.append({"tp": tp, "fp": fp, "fn": fn, "exact_match": float(fp == 0 and fn == 0)})
    return out


def item_score(metric: str, record: dict) -> float:
    """The item's own slot F1 (the headline is pooled over items)."""
    return item_f1(record) if metric == "slot_f1" else float(record[metric])


def item_correct(record: dict) -> bool:
    return bool(record["exact_match"])


def summarize(spec: TaskSpec, records: list[dict], resamples: int) -> dict:
    return {"n": len(records), **metric_with_ci("slot_f1", micro_f1, records, resamples),
            **mean_metric("exact_match", records, resamples)}


def metric_fn(spec: TaskSpec, name: str):
    if name == "slot_f1":
        return lambda records: micro_f1(records, None)
    return lambda records: mean_of(name)(records, None)


# --- synthetic data ------------------------------------------------------------------------------------------



def show(spec: TaskSpec, ex: Example) -> str:
    """One seed in the section format the teacher answers in."""
    asked = f"Asked: {ex.context}\n" if ex.context else ""
    return f"{asked}Message: {ex.text}\nSlots: {json.dumps(dict(ex.spans or []))}"


def generation_prompt(spec: TaskSpec, group: Optional[str], shown: Sequence[Example], topic: str | None = None,
                      persona: str | None = None) -> list[dict]:
    headers = [h for h in HEADERS if h != "Asked" or any(e.context for e in shown)]
    what = (f"a message and a JSON object of the slots it mentions (slots: {', '.join(spec.slot_names)}), values "
            "copied from it")
    return item_request(spec, headers, what, lambda ex: show(spec, ex), shown, topic, persona)


def generation_max_new_tokens(spec: TaskSpec) -> int:
    return GENERATION_MAX_NEW_TOKENS


def read_generated(spec: TaskSpec, raw: str) -> tuple[Optional[dict], Optional[str]]:
    from protege.tasks.kinds.sections import Missing

    def read(got: dict) -> dict:
        message = need(got, "Message").splitlines()[0].strip()
        slots_text = need(got, "Slots")
        match = re.search(r"\{.*?\}", slots_text, re.S)
        try:
            obj = json.loads(match.group(0)) if match else None
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            raise Missing("'Slots:' is not a JSON object")
        spans = [(str(k), str(v)) for k, v in obj.items() if str(v).strip()]
        asked = got.get("asked", "").splitlines()[0].strip() if got.get("asked") else None
        return {"text": message, "context": asked or None, "spans": spans}

    return read_sections(raw, HEADERS, read)




def check_item(spec: TaskSpec, item: Example, open_book: bool):
    if item.spans is None:
        return "missing_spans", {}
    for slot, value in item.spans:
        if slot not in spec.slot_names:
            return "unknown_slot", {"slot": slot, "slots": spec.slot_names}
        if not value.strip():
            return "empty_answer", {"slot": slot}
        if value.strip().lower() not in item.text.lower():
            return "span_not_in_text", {"slot": slot, "value": value}
    return None




def answer_record(spec: TaskSpec, item: dict, text: str) -> dict:
    return {"ok": False, "error": "an extraction item's answer is its slots; the teacher does not rewrite it"}
