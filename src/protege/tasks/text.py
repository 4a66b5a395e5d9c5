"""Text helpers for comparing items (curation filters, the loaders' test-twin check): normalisation, words,
word n-grams, an item's comparable input.

    normalise("What is  X ?") == "what is x";  ngrams(words("a b c d"), 3) == {("a","b","c"), ("b","c","d")}
"""
from __future__ import annotations

import re

_PUNCT = re.compile(r"[^\w\s]")


def normalise(text: str | None) -> str:
    """Lowercase, drop punctuation, collapse spaces: 'What is  X ?' and 'what is x' are the same item."""
    return " ".join(_PUNCT.sub(" ", str(text or "").lower()).split())


def words(text: str | None) -> list[str]:
    return normalise(text).split()


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """Distinct n-grams; a sequence shorter than n is its own single n-gram (so short texts still compare)."""
    if not tokens:
        return set()
    if len(tokens) <= n:
        return {tuple(tokens)}
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def item_input(rec: dict) -> str:
    """What makes an item the item it is, for duplicate checks: the input, and the passage or prompt context."""
    return normalise(rec.get("text")) + (" || " + normalise(rec["context"]) if rec.get("context") else "")


def natural_key(item_id: str | None) -> list:
    """'gen-a-10' sorts after 'gen-a-9': digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(item_id or "")) if part]
