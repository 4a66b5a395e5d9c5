"""Style-boundary predictors: where the active side's span ends inside the chunk it just wrote.

    p = LexicalPredictor()
    p.cut(context="The total is 12. ", chunk="So we divide by 3", side="student")   # -> 3: "So " is style
    p.cut(context="Well, ", chunk="12 / 3 = 4. So the", side="teacher")              # -> 12: "So" is style
    load_predictor("lexical")  /  load_predictor("runs/boundary")   # a trained classifier (classifier.py)

The student keeps its chunk up to the first capability word, the teacher up to the first style word. A cut never
splits a word: when it falls inside one (a chunk that starts mid-word, a classifier that cuts mid-token) it moves
to the end of that word, so the word is finished by the side that started writing it. A chunk kept whole (nothing
cut) may end inside a word, since its last token cannot tell whether the word is over: turns.py gives that
trailing word back, to be written again by the same side.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from protege.cooperative.config import Side
from protege.cooperative.lexicon import Span, annotate

# Context the labellers see before the chunk: enough for clause starts and phrases that span the chunk boundary.
CONTEXT_CHARS = 200


class BoundaryPredictor(Protocol):
    def cut(self, context: str, chunk: str, side: Side) -> int:
        """Characters of `chunk` the active `side` keeps (len(chunk): all of it), at a word boundary."""
        ...


def wordish(text: str, i: int) -> bool:
    c = text[i]
    if c.isalnum() or c == "_":
        return True
    # An apostrophe between letters is inside a word: "let's", "don’t".
    return c in "'’" and 0 < i < len(text) - 1 and wordish(text, i - 1) and wordish(text, i + 1)


def word_end(text: str, pos: int) -> int:
    """`pos`, or the end of the word when `pos` falls strictly inside one."""
    if not 0 < pos < len(text) or not (wordish(text, pos - 1) and wordish(text, pos)):
        return pos
    while pos < len(text) and wordish(text, pos):
        pos += 1
    return pos


def snap_cut(context: str, chunk: str, cut: int) -> int:
    """A cut in `chunk` moved to a word boundary (never back: the kept part only grows)."""
    cut = max(0, min(cut, len(chunk)))
    tail = context[-CONTEXT_CHARS:]
    return word_end(tail + chunk, len(tail) + cut) - len(tail)


def cut_at_first(context: str, chunk: str, side: Side, label: Callable[[str], list[Span]]) -> int:
    """The shared cut rule given a labeller: the first word of the other side's label ends the active span."""
    tail = context[-CONTEXT_CHARS:]
    text, off = tail + chunk, len(tail)
    other = "capability" if side == "student" else "style"
    for span in label(text):
        if span.end > off and span.label == other:
            return word_end(text, max(span.start, off)) - off
    return len(chunk)


class LexicalPredictor:
    """The curated phrase lists of lexicon.py; no model, no files."""

    def label(self, text: str) -> list[Span]:
        return annotate(text)

    def cut(self, context: str, chunk: str, side: Side) -> int:
        return cut_at_first(context, chunk, side, self.label)


def load_predictor(spec: str) -> BoundaryPredictor:
    """"lexical", or the directory of a classifier written by `train_boundary_classifier`."""
    if spec == "lexical":
        return LexicalPredictor()
    path = Path(spec)
    from protege.cooperative.classifier import MODEL_FILE, ClassifierPredictor

    if not (path / MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"predictor {spec!r}: no {MODEL_FILE} there; use predictor: lexical, or train one with "
            "protege.cooperative.classifier.train_boundary_classifier(texts, out_dir)")
    return ClassifierPredictor(path)
