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

import re
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


# Characters that join two words into one: a cut after "step-" would let the other side finish "step-by-step"
# (session 27: the 1.5B teacher went on from a student's "Here's a step-" with " by-step", 7 of 16 answers).
WORD_JOINERS = "'’-"


def wordish(text: str, i: int) -> bool:
    c = text[i]
    if c.isalnum() or c == "_":
        return True
    # An apostrophe or hyphen between word characters is inside a word: "let's", "don’t", "step-by-step", "n-1".
    return c in WORD_JOINERS and 0 < i < len(text) - 1 and wordish(text, i - 1) and wordish(text, i + 1)


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


# A clause or line ends after , ; : . ! ? followed by whitespace (so "x.y" and "3.5" do not), or at a line end;
# the whitespace after the mark stays with the clause it closes (turns.py then leaves spaces to the next side).
_CLAUSE_END = re.compile(r"[,;:.!?](?=\s)\s*|\n\s*")


def clause_end(text: str, pos: int) -> int | None:
    """The end of the clause or line that `pos` falls in or closes (after its mark and the whitespace that follows
    it): `pos` itself when a clause ends exactly there; None when no clause ends in `text` at or after `pos`."""
    if pos == 0:
        return 0
    for match in _CLAUSE_END.finditer(text):
        if match.end() >= pos:
            return match.end()
    return None


class ClauseHandoff:
    """A predictor whose cut is moved forward to the end of the clause or line it falls in: the active side
    finishes what it started before the other takes over (cooperative.handoff: clause). A chunk whose clause runs
    past its end is kept whole: the side hands over at the chunk's end, and its clause goes on when the turn
    comes back to it (the other side keeps nothing until a clause starts)."""

    def __init__(self, inner: BoundaryPredictor):
        self.inner = inner

    def cut(self, context: str, chunk: str, side: Side) -> int:
        cut = self.inner.cut(context, chunk, side)
        if cut >= len(chunk):
            return len(chunk)
        tail = context[-CONTEXT_CHARS:]
        end = clause_end(tail + chunk, len(tail) + cut)
        return len(chunk) if end is None else min(len(chunk), end - len(tail))


class LexicalPredictor:
    """The curated phrase lists of lexicon.py; no model, no files."""

    def label(self, text: str) -> list[Span]:
        return annotate(text)

    def cut(self, context: str, chunk: str, side: Side) -> int:
        return cut_at_first(context, chunk, side, self.label)


def load_predictor(spec: str, handoff: str = "word") -> BoundaryPredictor:
    """"lexical", or the directory of a classifier written by `train_boundary_classifier`; handoff "clause" wraps
    it so each side finishes its clause or line first."""
    if handoff == "clause":
        return ClauseHandoff(load_predictor(spec))
    if spec == "lexical":
        return LexicalPredictor()
    path = Path(spec)
    from protege.cooperative.classifier import MODEL_FILE, ClassifierPredictor

    if not (path / MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"predictor {spec!r}: no {MODEL_FILE} there; use predictor: lexical, or train one with "
            "protege.cooperative.classifier.train_boundary_classifier(texts, out_dir)")
    return ClassifierPredictor(path)
