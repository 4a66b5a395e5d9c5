"""Non-LLM baselines every classification report shows: majority class and TF-IDF + logistic regression.

Each is trained twice: on the same curated synthetic data the student saw (plus seeds), and on the seeds alone,
so a reader can tell whether the distilled student beats what a few minutes of scikit-learn would give.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from protege.tasks.spec import Example


def majority_predictions(train_labels: Sequence[str], n: int) -> list[str]:
    """The most frequent training label for every item (ties broken by label name, for determinism)."""
    counts = Counter(train_labels)
    top = max(sorted(counts), key=counts.__getitem__)
    return [top] * n


def tfidf_logreg_predictions(train_texts: Sequence[str], train_labels: Sequence[str],
                             test_texts: Sequence[str], seed: int = 0) -> list[str]:
    """Word 1-2 gram and character 2-4 gram TF-IDF into a logistic regression; fixed settings, no tuning."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(set(train_labels)) < 2:
        return majority_predictions(train_labels, len(test_texts))
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True))
    model = make_pipeline(features, LogisticRegression(max_iter=2000, C=10.0, random_state=seed))
    model.fit(list(train_texts), list(train_labels))
    return list(model.predict(list(test_texts)))


def cheap_baseline_records(train: Sequence[dict], seeds: Sequence[Example], test: Sequence[Example]) -> dict:
    """Per-item records, in the harness's format, for each cheap baseline: name -> list of records."""
    test_texts = [t.text for t in test]
    sources = {"synthetic+seeds": ([r["text"] for r in train] + [s.text for s in seeds],
                                   [r["label"] for r in train] + [s.label for s in seeds]),
               "seeds only": ([s.text for s in seeds], [s.label for s in seeds])}
    out = {}
    for source, (texts, labels) in sources.items():
        out[f"majority class ({source})"] = majority_predictions(labels, len(test))
        out[f"TF-IDF + logistic regression ({source})"] = tfidf_logreg_predictions(texts, labels, test_texts)
    return {name: [{"id": t.id, "gold": t.label, "prediction": p, "correct": p == t.label, "seconds": 0.0,
                    "tokens_in": 0, "tokens_out": 0} for t, p in zip(test, preds)]
            for name, preds in out.items()}
