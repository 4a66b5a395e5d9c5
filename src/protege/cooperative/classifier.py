"""A small trainable style/capability token classifier, taught by the lexical annotations of real traces.

    out = train_boundary_classifier(traces, "runs/boundary")        # writes boundary_classifier.json + meta
    p = ClassifierPredictor(out)                                     # or CooperativeConfig(predictor=str(out))
    agreement(p, [(t, annotate(t)) for t in held_out])              # token accuracy against the lexicon
    agreement(p, held, metric="style_f1")

Logistic regression (scikit-learn) over features of each word/symbol: the word, its shape and character
trigrams, whether it opens a clause, and the two units on either side. Its labels are the lexicon's, so high
agreement means it imitates the lexicon (and may generalise to unlisted fillers that look like listed ones),
not that it knows style better; it is the hook for labels from a better source (the paper's own annotations,
a judge model). The weights are saved as JSON (feature -> weight): readable, and no pickle to load.
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Literal, Sequence

from protege.cooperative.boundary import cut_at_first
from protege.cooperative.config import Side
from protege.cooperative.lexicon import Span, annotate, clause_start, norm, units
from protege.store import atomic_write_json

MODEL_FILE = "boundary_classifier.json"
META_FILE = "meta.json"


def features(text: str) -> list[tuple[Span, dict[str, float]]]:
    """(span with a placeholder label, features) for every word and symbol of `text`."""
    us = units(text)
    solid = [i for i, u in enumerate(us) if u.kind != "space"]
    tok = [norm(text[us[i].start:us[i].end]) for i in solid]
    out = []
    for k, i in enumerate(solid):
        u = us[i]
        if u.kind not in ("word", "symbol"):
            continue
        w = tok[k]
        f = {"w=" + w: 1.0, "shape=" + _shape(text[u.start:u.end]): 1.0, "bias": 1.0}
        if clause_start(text, us, i):
            f["clause_start"] = 1.0
        for d in (1, 2):
            f[f"p{d}=" + (tok[k - d] if k - d >= 0 else "<s>")] = 1.0
            f[f"n{d}=" + (tok[k + d] if k + d < len(tok) else "</s>")] = 1.0
        padded = f"<{w}>"
        for j in range(len(padded) - 2):
            f["g=" + padded[j:j + 3]] = 1.0
        out.append((Span(u.start, u.end, "capability"), f))
    return out


def _shape(s: str) -> str:
    if s.isdigit():
        return "digits"
    if any(c.isdigit() for c in s) or "_" in s:
        return "mixed"
    if s.isalpha():
        return "Title" if s[0].isupper() else "lower"
    return "symbol"


class ClassifierPredictor:
    """Style/capability labels from a trained logistic regression; cuts follow the shared rule of boundary.py."""

    def __init__(self, path: str | Path):
        data = json.loads((Path(path) / MODEL_FILE).read_text())
        self.weights: dict[str, float] = data["weights"]
        self.intercept: float = data["intercept"]

    def label(self, text: str) -> list[Span]:
        spans = []
        for span, f in features(text):
            z = self.intercept + sum(self.weights.get(k, 0.0) * v for k, v in f.items())
            spans.append(span._replace(label="style" if z > 0 else "capability"))
        return spans

    def cut(self, context: str, chunk: str, side: Side) -> int:
        return cut_at_first(context, chunk, side, self.label)


def train_boundary_classifier(texts: Sequence[str], out_dir: str | Path, held_out_fraction: float = 0.2,
                              seed: int = 0, c: float = 1.0) -> Path:
    """Fit the classifier on lexical annotations of `texts`; the held-out texts' agreement goes into meta.json."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    if not 0 <= held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in [0, 1) (got {held_out_fraction})")
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    n_held = int(len(texts) * held_out_fraction)
    held, train = texts[:n_held], texts[n_held:]
    rows, labels = [], []
    for t in train:
        gold = {(s.start, s.end): s.label for s in annotate(t)}
        for span, f in features(t):
            rows.append(f)
            labels.append(int(gold[(span.start, span.end)] == "style"))
    if len(set(labels)) < 2:
        raise ValueError(f"the {len(train)} training texts need both style and capability words under the "
                         "lexical rules; pass reasoning traces (transitions like 'so', 'well', 'let's see')")
    vec = DictVectorizer()
    model = LogisticRegression(C=c, max_iter=2000).fit(vec.fit_transform(rows), labels)
    weights = {name: float(w) for name, w in zip(vec.get_feature_names_out(), model.coef_[0]) if abs(w) > 1e-6}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MODEL_FILE, {"intercept": float(model.intercept_[0]), "weights": weights})
    meta = {"train_texts": len(train), "train_tokens": len(rows), "held_out_texts": len(held), "c": c,
            "seed": seed, "labels": "lexical (protege.cooperative.lexicon.annotate)"}
    if held:
        gold_held = [(t, annotate(t)) for t in held]
        p = ClassifierPredictor(out)
        meta.update(held_out_accuracy=agreement(p, gold_held), held_out_style_f1=agreement(p, gold_held, "style_f1"))
    atomic_write_json(out / META_FILE, meta)  # written last: the directory is complete
    return out


def agreement(predictor, held_out: Sequence[tuple[str, list[Span]]],
              metric: Literal["accuracy", "style_f1"] = "accuracy") -> float:
    """Token-level agreement of `predictor.label` with reference spans: the share of reference tokens given the
    same label ("accuracy"), or F1 of the style class ("style_f1"; most tokens are capability, so accuracy alone
    flatters a predictor that never says style)."""
    same = total = tp = fp = fn = 0
    for text, gold in held_out:
        pred = {(s.start, s.end): s.label for s in predictor.label(text)}
        for s in gold:
            p = pred.get((s.start, s.end), "capability")  # a token the predictor did not label is not style
            same += p == s.label
            total += 1
            tp += p == s.label == "style"
            fp += p == "style" != s.label
            fn += s.label == "style" != p
    if metric == "accuracy":
        return same / total if total else math.nan
    if metric == "style_f1":
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    raise ValueError(f'metric must be "accuracy" or "style_f1" (got {metric!r})')
