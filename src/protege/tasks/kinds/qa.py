"""Question answering: a short answer, from the passage (SQuAD) or from memory (NQ-open); "" = unanswerable.

Scored exactly as the official SQuAD v2.0 script: normalised exact match and token F1, max over gold answers,
and an empty prediction is right only for an unanswerable question.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from protege.scoring.metrics.squad import score_item
from protege.scoring.summaries import mean_metric, mean_of
from protege.tasks.kinds.chat import (as_is, chat_with_shots, first_line, first_seeds, input_key,
                                       mean_metric_fn, one_group, own_value)
from protege.tasks.kinds.sections import Missing, item_request, need, read_sections
from protege.tasks.spec import Example, TaskSpec

NAME = "qa"
METRICS = ("f1", "exact_match")
COLUMNS = [("exact_match", "EM"), ("f1", "F1")]
SECONDARY_METRICS: tuple[str, ...] = ("exact_match", "f1", "has_answer_f1", "no_answer_f1")
REQUIRED_FIELDS = ("text", "answers")
LABELLED = False
EXECUTES_CODE = False
REWRITES_ANSWERS = False
MAX_NEW_TOKENS = 32
STOP: list[str] = ["\n"]
STOP_PATTERN: str | None = None
FEW_SHOTS = 4
GENERATION_MAX_NEW_TOKENS = 96
PASSAGE_GENERATION_MAX_NEW_TOKENS = 320  # reading-comprehension items carry their own passage
MAX_TEXT_CHARS = 500
COMPARED_FIELDS = ("text", "context")  # a copied passage is a leak even when the question is new
HEADERS = ["Passage", "Question", "Answer"]
UNANSWERABLE = "unanswerable"
_NO_ANSWER = re.compile(r"^(unanswerable|no answer|cannot be answered|not (stated|mentioned|given|answerable))\b", re.I)


def check_spec(spec: TaskSpec) -> list[str]:
    return []


read_row = as_is
few_shot_examples = first_seeds
generation_groups = one_group
dedup_key = input_key
item_score = own_value
metric_fn = mean_metric_fn


def render_input(item: Example) -> str:
    passage = f"Passage: {item.context}\n" if item.context else ""
    return f"{passage}Question: {item.text}"


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, spec.description, render_input, shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    return item.answers[0] if item.answers else UNANSWERABLE


def parse(spec: TaskSpec, output: str) -> str:
    answer = first_line(output)
    answer = re.sub(r"^(the )?answer( is)?\s*[:\-]?\s*", "", answer, flags=re.I).strip().rstrip(".").strip()
    return "" if _NO_ANSWER.match(answer) else answer


def read_prediction(spec: TaskSpec, value):
    """The answer text; null or "" means unanswerable; a number is read as its text."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"prediction {value!r} is not an answer string (use \"\" or null for unanswerable)")
    return value


def score_items(spec: TaskSpec, items: Sequence[Example], predictions: list, allow_code_execution: bool) -> list[dict]:
    out = []
    for item, prediction in zip(items, predictions):
        exact, f1 = score_item(item.answers or [], prediction)
        out.append({"exact_match": float(exact), "f1": f1, "has_answer": bool(item.answers)})
    return out




def item_correct(record: dict) -> bool:
    return bool(record["exact_match"])


def summarize(spec: TaskSpec, records: list[dict], resamples: int) -> dict:
    out: dict = {"n": len(records)}
    for name in ("exact_match", "f1"):
        out.update(mean_metric(name, records, resamples))
    answerable = [r for r in records if r["has_answer"]]
    if 0 < len(answerable) < len(records):  # SQuAD 2.0's HasAns / NoAns split
        unanswerable = [r for r in records if not r["has_answer"]]
        for prefix, subset in (("has_answer", answerable), ("no_answer", unanswerable)):
            out[f"{prefix}_n"] = len(subset)
            out[f"{prefix}_exact_match"] = mean_of("exact_match")(subset, subset)
            out[f"{prefix}_f1"] = mean_of("f1")(subset, subset)
    return out




# --- synthetic data ------------------------------------------------------------------------------------------



def show(spec: TaskSpec, ex: Example) -> str:
    """One seed in the section format the teacher answers in."""
    passage = f"Passage: {ex.context}\n" if ex.context else ""
    return f"{passage}Question: {ex.text}\nAnswer: {ex.answers[0] if ex.answers else UNANSWERABLE}"


def generation_prompt(spec: TaskSpec, group: Optional[str], shown: Sequence[Example], topic: str | None = None,
                      persona: str | None = None) -> list[dict]:
    with_context = any(e.context for e in shown)
    headers = [h for h in HEADERS if h != "Passage" or with_context]
    if with_context:
        what = ("a passage, a question about it, and the answer copied word for word from the passage "
                f"(or \"{UNANSWERABLE}\" when the passage does not say)")
    else:
        what = "a factual question and its short answer"
    return item_request(spec, headers, what, lambda ex: show(spec, ex), shown, topic, persona)


def is_open_book(spec: TaskSpec) -> bool:
    return any(s.context for s in spec.seed_examples())  # SQuAD-style seeds carry passages


def generation_max_new_tokens(spec: TaskSpec) -> int:
    return PASSAGE_GENERATION_MAX_NEW_TOKENS if is_open_book(spec) else GENERATION_MAX_NEW_TOKENS


def read_generated(spec: TaskSpec, raw: str) -> tuple[Optional[dict], Optional[str]]:
    def read(got: dict) -> dict:
        question = need(got, "Question").splitlines()[0].strip()
        answer = need(got, "Answer").splitlines()[0].strip().rstrip(".").strip()
        passage = got.get("passage", "").strip() or None
        answers = [] if answer.lower().startswith(UNANSWERABLE) else [answer]
        if passage and answers and answer.lower() not in passage.lower():
            raise Missing("the answer is not copied from the passage")
        if not passage and not answers:
            raise Missing("a closed-book question must have an answer")
        return {"text": question, "context": passage, "answers": answers}

    return read_sections(raw, HEADERS, read)


def check_item(spec: TaskSpec, item: Example, open_book: bool):
    if item.answers is None:
        return "missing_answers", {}
    if open_book and not (item.context or "").strip():
        return "missing_context", {}
    if any(not a.strip() for a in item.answers) or (not item.answers and not item.context):
        return "empty_answer", {"answers": item.answers}
    passage = _squash(item.context) if item.context else None
    for answer in item.answers:
        if passage is not None and _squash(answer) not in passage:
            return "answer_not_in_context", {"answer": answer}
    return None


def _squash(text: str) -> str:
    return " ".join(text.lower().split())




def answer_record(spec: TaskSpec, item: dict, text: str) -> dict:
    return {"ok": False, "error": "a qa item's answer is a span; the teacher does not rewrite it"}
