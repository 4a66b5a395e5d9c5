"""SQuAD 2.0 metrics: hand-computed cases, and golden totals on the real dev-v2.0.json.

The dev set is found under $PROTEGE_DATA/squad2/ (default: ../shared/data next to the repo root);
the golden tests skip when it is absent.
"""
import json
import os
import re
import string
from collections import Counter
from pathlib import Path

import pytest

from protege.scoring.metrics.squad import (
    compute_exact,
    compute_f1,
    flatten_squad_v2,
    get_tokens,
    load_squad_v2,
    normalize_answer,
    per_item_scores,
    score_item,
    squad_v2_scores,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV = Path(os.environ.get("PROTEGE_DATA", REPO_ROOT.parent / "shared" / "data")) / "squad2" / "dev-v2.0.json"


def test_normalize_answer_drops_case_punctuation_articles_whitespace():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"
    assert normalize_answer("  ") == ""
    assert get_tokens("") == [] and get_tokens("A.") == []


def test_exact_and_f1_by_hand():
    assert compute_exact("the Eiffel Tower", "Eiffel tower.") == 1
    assert compute_exact("Eiffel Tower", "Tower") == 0
    # gold {cat, sat, on, mat}, pred {cat, on, mat, today}: 3 shared of 4 each way
    assert compute_f1("the cat sat on the mat", "cat on a mat today") == pytest.approx(0.75)
    # repeated tokens count as a multiset: 2 shared, P = 1, R = 1/2
    assert compute_f1("New York New York", "new york") == pytest.approx(2 / 3)
    assert compute_f1("Paris", "London") == 0


def test_empty_answers_agree_only_with_empty():
    assert compute_f1("", "") == 1 and compute_exact("", "") == 1
    assert compute_f1("", "Paris") == 0 and compute_f1("Paris", "") == 0
    assert compute_f1("the", "") == 1  # normalises to no tokens


def test_score_item_takes_max_and_drops_empty_gold():
    assert score_item(["Denver Broncos", "Broncos"], "the Broncos") == (1, 1.0)
    assert score_item(["the", "Paris"], "") == (0, 0)
    assert score_item(["the"], "") == (1, 1)
    assert score_item([], "") == (1, 1) and score_item([], "anything") == (0, 0)


def _qa(qid, answers, **extra):
    return {"id": qid, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in answers],
            "is_impossible": not answers, **extra}


def _toy():
    qas = [
        _qa("q1", ["Denver Broncos"]),
        _qa("q2", ["Santa Clara, California"]),
        _qa("q3", [], plausible_answers=[{"text": "x", "answer_start": 0}]),
        _qa("q4", []),
    ]
    return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]}


def test_toy_dataset_scores_by_hand():
    preds = {"q1": "Denver Broncos", "q2": "Santa Clara", "q3": "", "q4": "Levi's Stadium", "extra": "ignored"}
    scores = squad_v2_scores(_toy(), preds)
    f1_q2 = 2 * 1.0 * (2 / 3) / (1.0 + 2 / 3)  # 2 of 3 gold tokens, all predicted tokens right
    assert scores == pytest.approx({
        "exact": 50.0, "f1": 100 * (1 + f1_q2 + 1 + 0) / 4, "total": 4,
        "HasAns_exact": 50.0, "HasAns_f1": 100 * (1 + f1_q2) / 2, "HasAns_total": 2,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
    })
    assert squad_v2_scores(flatten_squad_v2(_toy()), preds) == scores


def test_subset_keys_omitted_when_empty_and_missing_prediction_raises():
    items = [it for it in flatten_squad_v2(_toy()) if it["answers"]]
    assert set(squad_v2_scores(items, {"q1": "x", "q2": "y"})) == {
        "exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total"}
    with pytest.raises(ValueError, match="no prediction for 1 of 2"):
        squad_v2_scores(items, {"q1": "x"})


needs_dev = pytest.mark.skipif(not DEV.is_file(), reason=f"SQuAD 2.0 dev set not found at {DEV} (set PROTEGE_DATA)")


@pytest.fixture(scope="module")
def dev_items():
    return load_squad_v2(DEV)


@needs_dev
def test_dev_set_loads(dev_items):
    assert len(dev_items) == 11873
    assert sum(bool(it["answers"]) for it in dev_items) == 5928
    assert sum(it["is_impossible"] for it in dev_items) == 5945
    assert all(it["is_impossible"] == (not it["answers"]) for it in dev_items)


@needs_dev
def test_dev_gold_predictions_score_100(dev_items):
    preds = {it["id"]: (it["answers"][0] if it["answers"] else "") for it in dev_items}
    scores = squad_v2_scores(dev_items, preds)
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
        assert scores[key] == 100.0, key
    assert (scores["total"], scores["HasAns_total"], scores["NoAns_total"]) == (11873, 5928, 5945)


@needs_dev
def test_dev_empty_predictions_score_the_unanswerable_share(dev_items):
    scores = squad_v2_scores(dev_items, {it["id"]: "" for it in dev_items})
    assert scores["exact"] == scores["f1"] == 100.0 * 5945 / 11873
    assert round(scores["exact"], 2) == 50.07
    assert scores["HasAns_exact"] == scores["HasAns_f1"] == 0.0
    assert scores["NoAns_exact"] == scores["NoAns_f1"] == 100.0


def _reference_scores(raw: dict, preds: dict) -> dict:
    """An independent straight-line recomputation from the raw JSON."""
    drop_punct = str.maketrans("", "", string.punctuation)

    def toks(text):
        return re.sub(r"\b(?:a|an|the)\b", " ", text.lower().translate(drop_punct)).split()

    sums = {True: [0, 0.0, 0], False: [0, 0.0, 0]}
    for article in raw["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                golds = [toks(a["text"]) for a in qa["answers"]]
                golds = [g for g in golds if g] or [[]]
                pred = toks(preds[qa["id"]])
                best_em = best_f1 = 0.0
                for gold in golds:
                    best_em = max(best_em, float(gold == pred))
                    shared = sum((Counter(gold) & Counter(pred)).values())
                    if not gold or not pred:
                        best_f1 = max(best_f1, float(gold == pred))
                    elif shared:
                        best_f1 = max(best_f1, 2 * shared / (len(gold) + len(pred)))
                bucket = sums[bool(qa["answers"])]
                bucket[0] += best_em
                bucket[1] += best_f1
                bucket[2] += 1
    n = sums[True][2] + sums[False][2]
    return {
        "exact": 100 * (sums[True][0] + sums[False][0]) / n, "f1": 100 * (sums[True][1] + sums[False][1]) / n,
        "HasAns_exact": 100 * sums[True][0] / sums[True][2], "HasAns_f1": 100 * sums[True][1] / sums[True][2],
        "NoAns_exact": 100 * sums[False][0] / sums[False][2], "NoAns_f1": 100 * sums[False][1] / sums[False][2],
    }


@needs_dev
def test_dev_perturbed_predictions_match_independent_computation(dev_items):
    raw = json.loads(DEV.read_text(encoding="utf-8"))
    preds = {}
    for i, item in enumerate(dev_items):
        if item["answers"]:
            words = item["answers"][0].split()
            preds[item["id"]] = " ".join(words[:-1]) if i % 3 else item["answers"][-1].upper() + " the."
        else:
            preds[item["id"]] = "" if i % 2 else " ".join(item["context"].split()[:3])
    scores = squad_v2_scores(raw, preds)
    reference = _reference_scores(raw, preds)
    assert {k: scores[k] for k in reference} == pytest.approx(reference, abs=1e-9)
    assert 0 < scores["HasAns_exact"] < scores["HasAns_f1"] < 100
    per_item = per_item_scores(dev_items, preds)
    assert 100 * sum(s["f1"] for s in per_item.values()) / len(per_item) == pytest.approx(scores["f1"])
