"""The trainable boundary classifier: the agreement metric on a hand example, and a classifier trained on
lexical annotations agreeing with held-out annotations (synthetic traces always; GSM8K solutions when the
built-in data is present)."""
import json
import random
import re

import pytest

from protege.cooperative import (ClassifierPredictor, LexicalPredictor, Span, agreement, annotate,
                                 load_predictor, train_boundary_classifier)
from protege.cooperative.classifier import META_FILE
from protege.tasks.spec import data_dir


class Fixed:
    """A predictor that labels given spans, whatever the text."""

    def __init__(self, spans):
        self.spans = spans

    def label(self, text):
        return self.spans


def test_agreement_on_a_hand_example():
    text = "Well, so 3 + 4"
    gold = [Span(0, 4, "style"), Span(6, 8, "style"), Span(9, 10, "capability"), Span(11, 12, "capability"),
            Span(13, 14, "capability")]
    assert annotate(text) == gold
    # one style word called capability, one capability word called style, and "4" left unlabelled (which
    # counts as capability, so it agrees): 3 of 5 tokens agree
    pred = [Span(0, 4, "style"), Span(6, 8, "capability"), Span(9, 10, "style"), Span(11, 12, "capability")]
    assert agreement(Fixed(pred), [(text, gold)]) == pytest.approx(3 / 5)
    # style: tp=1 ("Well"), fp=1 ("3"), fn=1 ("so") -> F1 = 2*1 / (2*1 + 1 + 1)
    assert agreement(Fixed(pred), [(text, gold)], "style_f1") == pytest.approx(0.5)
    assert agreement(LexicalPredictor(), [(text, gold)]) == 1.0
    never_style = Fixed([s._replace(label="capability") for s in gold])
    assert agreement(never_style, [(text, gold)]) == pytest.approx(3 / 5)  # accuracy flatters it...
    assert agreement(never_style, [(text, gold)], "style_f1") == 0.0  # ...style F1 does not


OPENERS = ["Okay, so", "Well,", "Hmm, wait.", "Let's see:", "In other words,", "So", "Now,", "First,",
           "Alright, then", "Actually,", "Therefore", "That means", "I think", "Right,", "Next,", ""]
BODIES = ["{a} + {b} = {c}.", "the total is {c} apples.", "she buys {a} pens as well.", "x_{a} = {b} * {a}.",
          "we multiply {a} by {b} so that it is {c}.", "the first number is {a}.", "def f(n): return n + {a}",
          "{name} has {a} marbles and gives {b} away.", "the rate is {a}/{b} per hour.", "then {name} left."]
NAMES = ["Janet", "Tom", "Priya", "Kwame", "Lena"]


def synthetic_traces(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(2, 5)):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            body = rng.choice(BODIES).format(a=a, b=b, c=a + b, name=rng.choice(NAMES))
            parts.append((rng.choice(OPENERS) + " " + body).strip())
        out.append(" ".join(parts))
    return out


def test_classifier_trained_on_lexical_annotations_agrees_on_held_out_traces(tmp_path):
    out = train_boundary_classifier(synthetic_traces(300, seed=1), tmp_path / "bc", held_out_fraction=0.2)
    meta = json.loads((out / META_FILE).read_text())
    assert meta["train_texts"] == 240 and meta["held_out_texts"] == 60
    held = [(t, annotate(t)) for t in synthetic_traces(100, seed=2)]
    p = load_predictor(str(out))
    assert isinstance(p, ClassifierPredictor)
    accuracy, f1 = agreement(p, held), agreement(p, held, "style_f1")
    print(f"synthetic held-out: accuracy {accuracy:.4f}, style F1 {f1:.4f}")
    assert accuracy >= 0.97 and f1 >= 0.9
    assert p.cut("The total is 12. ", "So we divide by 3", "student") == 3
    assert p.cut("Well, ", "12 / 3 = 4. So the", "teacher") == 12


def test_untrained_or_missing_predictors_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_boundary_classifier"):
        load_predictor(str(tmp_path))
    with pytest.raises(ValueError, match="both style and capability"):
        train_boundary_classifier(["3 + 4 = 7"] * 10, tmp_path / "bc")


@pytest.mark.skipif(not (data_dir() / "gsm8k" / "train.jsonl").exists(), reason="GSM8K data not found (PROTEGE_DATA)")
def test_classifier_on_gsm8k_solutions(tmp_path):
    lines = (data_dir() / "gsm8k" / "train.jsonl").read_text().splitlines()[:1000]
    texts = [re.sub(r"<<[^>]*>>", "", json.loads(line)["answer"]) for line in lines]  # calculator annotations
    meta = json.loads((train_boundary_classifier(texts, tmp_path / "bc") / META_FILE).read_text())
    print(f"GSM8K held-out ({meta['held_out_texts']} solutions): accuracy {meta['held_out_accuracy']:.4f}, "
          f"style F1 {meta['held_out_style_f1']:.4f}")
    # Measured 0.9985 / 0.965 on 3000 solutions; few style words in GSM8K's terse solutions (about 2%).
    assert meta["held_out_accuracy"] >= 0.99 and meta["held_out_style_f1"] >= 0.85
