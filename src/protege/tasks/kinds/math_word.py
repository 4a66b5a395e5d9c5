"""Maths word problems (GSM8K): the assistant reasons, then writes `#### <number>`; the number is scored."""
from __future__ import annotations

import re
from typing import Optional, Sequence

from protege.scoring.metrics.gsm8k import extract_number
from protege.scoring.summaries import mean_metric
from protege.tasks.kinds.chat import (chat_with_shots, closed_book, first_seeds, input_key, mean_metric_fn,
                                       one_group, own_value)
from protege.tasks.kinds.sections import Missing, item_request, need, read_sections
from protege.tasks.spec import Example, TaskSpec

NAME = "math"
METRICS = ("number_match",)
COLUMNS = [("number_match", "answer right")]
SECONDARY_METRICS: tuple[str, ...] = ()
REQUIRED_FIELDS = ("text", "answers")
LABELLED = False
EXECUTES_CODE = False
REWRITES_ANSWERS = True
MAX_NEW_TOKENS = 256
STOP: list[str] = []
STOP_PATTERN: str | None = None
FEW_SHOTS = 4
GENERATION_MAX_NEW_TOKENS = 256
MAX_TEXT_CHARS = 1000  # a GSM8K problem is ~250 characters, the longest ~900
COMPARED_FIELDS = ("text",)
HEADERS = ["Problem", "Solution", "Final answer"]


def check_spec(spec: TaskSpec) -> list[str]:
    return []


def read_row(spec: TaskSpec, row: dict) -> tuple[dict, None]:
    """GSM8K style: the answer field is a worked solution ending in "#### N"; N is the answer."""
    row = dict(row)
    answers = row["answers"]
    worked = answers if isinstance(answers, str) else None
    if worked and "####" in worked:
        row["reference"] = worked
        answers = worked.rsplit("####", 1)[1].strip()
    row["answers"] = answers
    return row, None


few_shot_examples = first_seeds
generation_groups = one_group
is_open_book = closed_book
dedup_key = input_key
item_score = own_value
metric_fn = mean_metric_fn


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, spec.description, lambda ex: f"Problem: {ex.text}", shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    # Worked GSM8K solutions carry calculator annotations <<a*b=c>>; they are noise to a student.
    if item.reference:
        return re.sub(r"<<[^>]*>>", "", item.reference)
    return f"#### {item.answers[0]}"


def parse(spec: TaskSpec, output: str) -> str | None:
    value = extract_number(output)
    if value is None:
        return None
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def read_prediction(spec: TaskSpec, value):
    return parse(spec, str(value))  # any text ending in the number


def score_items(spec: TaskSpec, items: Sequence[Example], predictions: list, allow_code_execution: bool) -> list[dict]:
    out = []
    for item, prediction in zip(items, predictions):
        gold = extract_number(item.answers[0])
        out.append({"number_match": float(prediction is not None and extract_number(prediction) == gold)})
    return out




def item_correct(record: dict) -> bool:
    return bool(record["number_match"])


def summarize(spec: TaskSpec, records: list[dict], resamples: int) -> dict:
    return {"n": len(records), **mean_metric(spec.headline_metric, records, resamples)}




# --- synthetic data ------------------------------------------------------------------------------------------



def show(spec: TaskSpec, ex: Example) -> str:
    """One seed in the section format the teacher answers in (calculator annotations removed)."""
    worked = target(spec, ex).split("####")[0].strip()
    return f"Problem: {ex.text}\nSolution: {worked}\nFinal answer: {ex.answers[0]}"


def generation_prompt(spec: TaskSpec, group: Optional[str], shown: Sequence[Example], topic: str | None = None,
                      persona: str | None = None) -> list[dict]:
    what = "a word problem, a step-by-step solution, and the final number"
    return item_request(spec, HEADERS, what, lambda ex: show(spec, ex), shown, topic, persona)


def generation_max_new_tokens(spec: TaskSpec) -> int:
    return GENERATION_MAX_NEW_TOKENS


def read_generated(spec: TaskSpec, raw: str) -> tuple[Optional[dict], Optional[str]]:
    def read(got: dict) -> dict:
        problem, solution = need(got, "Problem"), need(got, "Solution")
        number = parse(spec, need(got, "Final answer"))  # the number as evaluation reads it
        if number is None:
            raise Missing("the final answer is not a number")
        return {"text": problem, "answers": [number], "reference": f"{solution}\n#### {number}"}

    return read_sections(raw, HEADERS, read)




def check_item(spec: TaskSpec, item: Example, open_book: bool):
    if not item.answers or not item.answers[0].strip():
        return "empty_answer", {"answers": item.answers}
    gold = extract_number(item.answers[0])
    if gold is None:
        return "non_numeric_answer", {"answer": item.answers[0]}
    if item.reference and extract_number(item.reference) != gold:
        return "reference_disagrees", {"answer": item.answers[0], "reference_tail": item.reference[-120:]}
    return None




def answer_record(spec: TaskSpec, item: dict, text: str) -> dict:
    """The teacher's worked answer as the reference, kept only when its final number is the item's."""
    number = parse(spec, text)
    if number is None or number != item["answers"][0]:
        return {"ok": False, "error": f"the answer's final number {number} is not the item's {item['answers'][0]}"}
    return {"ok": True, "reference": text.strip()}
