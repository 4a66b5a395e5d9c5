"""SQuAD 2.0 exact match and F1, scored exactly as the official `evaluate-v2.0.py` scores them.

    items = load_squad_v2("dev-v2.0.json")      # or flatten_squad_v2(parsed_json)
    scores = squad_v2_scores(items, {"56ddde6b9a695914005b9628": "France", ...})
    scores["exact"], scores["f1"], scores["HasAns_f1"], scores["NoAns_exact"]

Scores are percentages (0-100) with the official script's rules: answers are compared after
`normalize_answer`; gold answers that normalise to "" are dropped and a question left with none is
scored against [""], so an empty prediction is correct on an unanswerable question; each question
takes its best score over its gold answers; a question counts as HasAns when its raw answer list is
non-empty. Predictions for ids outside the dataset are ignored, as the official script ignores them.
The script's no-answer-probability options are not reproduced: at their defaults they change nothing.
"""
from __future__ import annotations

import json
import re
import string
from collections import Counter
from os import PathLike
from typing import Iterable, Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def get_tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """Token-overlap F1; when either side has no tokens it is 1 if both are empty, else 0."""
    gold_toks, pred_toks = get_tokens(a_gold), get_tokens(a_pred)
    if not gold_toks or not pred_toks:
        return int(gold_toks == pred_toks)
    num_same = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if num_same == 0:
        return 0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: Sequence[str]) -> list[str]:
    """The answers a prediction is scored against: non-empty after normalising, else [""]."""
    return [a for a in answers if normalize_answer(a)] or [""]


def score_item(answers: Sequence[str], prediction: str) -> tuple[int, float]:
    """(exact, f1) of one prediction, each the max over the question's gold answers."""
    golds = gold_answers(answers)
    return max(compute_exact(g, prediction) for g in golds), max(compute_f1(g, prediction) for g in golds)


def flatten_squad_v2(dataset_json: Mapping) -> list[dict]:
    """Official SQuAD JSON -> items {id, question, context, answers: [texts], is_impossible}, in file order."""
    items = []
    for article in dataset_json["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                items.append({
                    "id": qa["id"],
                    "question": qa["question"],
                    "context": paragraph["context"],
                    "answers": [a["text"] for a in qa["answers"]],
                    "is_impossible": bool(qa.get("is_impossible", not qa["answers"])),
                })
    return items


def load_squad_v2(path: str | PathLike) -> list[dict]:
    """Read an official SQuAD 2.0 file (e.g. dev-v2.0.json) and flatten it."""
    with open(path, encoding="utf-8") as f:
        return flatten_squad_v2(json.load(f))


def per_item_scores(dataset: Mapping | Iterable[Mapping], predictions: Mapping[str, str]) -> dict[str, dict]:
    """qid -> {exact, f1, has_ans} for every question, in dataset order.

    `dataset` is the parsed official JSON or flattened items. Every question needs a prediction:
    the official script would crash on a missing one, so this says which are missing instead.
    """
    items = _as_items(dataset)
    missing = [item["id"] for item in items if item["id"] not in predictions]
    if missing:
        raise ValueError(
            f"no prediction for {len(missing)} of {len(items)} questions (first: {missing[:3]}); "
            "predict '' for questions judged unanswerable, or score only the items you predicted"
        )
    scores = {}
    for item in items:
        if item["id"] in scores:
            raise ValueError(f"question id {item['id']!r} appears twice in the dataset; ids must be unique")
        exact, f1 = score_item(item["answers"], predictions[item["id"]])
        scores[item["id"]] = {"exact": exact, "f1": f1, "has_ans": bool(item["answers"])}
    return scores


def squad_v2_scores(dataset: Mapping | Iterable[Mapping], predictions: Mapping[str, str]) -> dict:
    """exact, f1, total, then HasAns_* and NoAns_* (each omitted when that subset is empty)."""
    scores = per_item_scores(dataset, predictions)
    if not scores:
        raise ValueError("the dataset has no questions to score")
    out = _summary(list(scores.values()))
    for prefix, has_ans in (("HasAns", True), ("NoAns", False)):
        subset = [s for s in scores.values() if s["has_ans"] is has_ans]
        if subset:
            out.update({f"{prefix}_{k}": v for k, v in _summary(subset).items()})
    return out


def _summary(scores: list[dict]) -> dict:
    total = len(scores)
    return {
        "exact": 100.0 * sum(s["exact"] for s in scores) / total,
        "f1": 100.0 * sum(s["f1"] for s in scores) / total,
        "total": total,
    }


def _as_items(dataset: Mapping | Iterable[Mapping]) -> list[Mapping]:
    if isinstance(dataset, Mapping):
        if "data" not in dataset:
            raise ValueError("expected the official SQuAD JSON (a dict with 'data') or a list of flattened items")
        return flatten_squad_v2(dataset)
    return list(dataset)
