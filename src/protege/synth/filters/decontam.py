"""Decontamination: drop generated items that copy or paraphrase a test or validation item.

    protected = protected_strings(spec.kind, test_items, validation_items)
    matches = decontaminate(generated, protected, "qa", ngram=10, overlap=0.8, common_max=5, cosine=0.9,
                            encode=encode)
    # {position: ("contaminated_ngram", {"match": "test-17", "split": "test", "field": "text", ...}), ...}

Checked strings: the kind's COMPARED_FIELDS of each item (`text`, and for qa its passage, `context`), against
every protected string of the same kinds (a copied passage is a leak even when the question is new). Rules,
strongest first:
  exact       equal after normalisation (lowercase, no punctuation, spaces collapsed)
  ngram       lines of at least 2n words on both sides: a shared word n-gram (n = `ngram`); n-grams found in
              more than `common_max` protected strings are the task's boilerplate ("write a python function to
              check whether the"), not evidence of a leak
  overlap     either line shorter than 2n words: at least `overlap` of the shorter one's word trigrams occur
              in the other (catches short items reworded or reordered a little)
Comparisons go line by line (see NgramIndex), so fixed lines of a task's format are not counted.
  embedding   MiniLM cosine >= `cosine` (paraphrases: "Which city is France's capital?"); texts under
              MIN_EMBED_WORDS words skip it, where the encoder mostly sees the kind of content, not its meaning
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from protege.tasks.text import ngrams, normalise
from protege.tasks.kinds import kind_named

MIN_EMBED_WORDS = 4
TRIGRAM = 3


@dataclass(frozen=True)
class Protected:
    id: str
    split: str  # test or validation
    field: str  # text or context
    text: str


def protected_strings(kind: str, test: list, validation: list) -> list[Protected]:
    """The strings no training item may copy: every test and validation input, and qa passages (each once)."""
    out, seen, fields = [], set(), kind_named(kind).COMPARED_FIELDS
    for split, items in (("test", test), ("validation", validation)):
        for e in items:
            for field in fields:
                value = getattr(e, field)
                if value is None:
                    continue
                key = (field, normalise(value))
                if key[1] and key not in seen:
                    seen.add(key)
                    out.append(Protected(str(e.id), split, field, value))
    return out


class NgramIndex:
    """Exact, n-gram and overlap lookups of one string against all protected strings, line by line.

    Strings are compared a line at a time, and a line found in more than `common_max` protected strings is the
    task's fixed text (MBPP's "Your code should pass these tests:"), skipped on both sides: otherwise it would
    join rare neighbours into n-grams that look rare. N-grams and trigrams mostly of numbers ("1 2 3 4 5 6 7 8
    9 10", "2 3 6"; common test inputs) are not evidence either.
    """

    def __init__(self, protected: list[Protected], n: int, overlap: float, common_max: int):
        self.protected, self.n, self.overlap = protected, n, overlap
        self.exact: dict[str, int] = {}
        lines_of = [_lines(p.text) for p in protected]
        counts = Counter(line for lines in lines_of for line in set(lines))
        self.fixed = {line for line, count in counts.items() if count > common_max}
        self.owner: list[int] = []  # line index -> protected index
        self.n_words: list[int] = []
        self.n_tri: list[int] = []
        self.long: dict[tuple, list[int]] = defaultdict(list)
        self.tri: dict[tuple, list[int]] = defaultdict(list)
        for i, (p, lines) in enumerate(zip(protected, lines_of)):
            self.exact.setdefault(normalise(p.text), i)
            for line in lines:
                if line in self.fixed:
                    continue
                seg, tokens = len(self.owner), line.split()
                self.owner.append(i)
                self.n_words.append(len(tokens))
                if len(tokens) >= 2 * n:
                    for g in ngrams(tokens, n):
                        self.long[g].append(seg)
                tris = _trigrams(tokens)
                self.n_tri.append(len(tris))
                for g in tris:
                    self.tri[g].append(seg)
        self.common = {g for g, segs in self.long.items()
                       if len({self.owner[s] for s in segs}) > common_max or not _informative(g)}

    def match(self, text: str) -> Optional[tuple[str, int, dict]]:
        hit = self.exact.get(normalise(text))
        if hit is not None and normalise(text):
            return "exact", hit, {}
        lines = [line for line in _lines(text) if line not in self.fixed]
        for line in lines:
            tokens = line.split()
            if len(tokens) >= 2 * self.n:
                for g in sorted(ngrams(tokens, self.n)):  # sorted: the same evidence on every run
                    if g in self.long and g not in self.common:
                        return "ngram", self.owner[self.long[g][0]], {"ngram": " ".join(g)}
        best = None
        for line in lines:
            tokens = line.split()
            tris = _trigrams(tokens)
            if not tris:
                continue
            for seg, count in Counter(s for g in tris for s in self.tri.get(g, ())).items():
                if min(len(tokens), self.n_words[seg]) >= 2 * self.n:
                    continue  # long on both sides: the n-gram rule decides
                frac = count / min(len(tris), self.n_tri[seg])
                if frac >= self.overlap and (best is None or frac > best[1]):
                    best = (seg, frac, line)
        if best:
            return "overlap", self.owner[best[0]], {"overlap": round(best[1], 3), "line": best[2][:200]}
        return None


def _lines(text: str) -> list[str]:
    """Normalised non-empty lines, each once, in order."""
    return list(dict.fromkeys(line for line in map(normalise, str(text or "").splitlines()) if line))


def _informative(gram: tuple[str, ...]) -> bool:
    return sum(not token.isdigit() for token in gram) * 2 >= len(gram)


def _trigrams(tokens: list[str]) -> set[tuple[str, ...]]:
    return {g for g in ngrams(tokens, TRIGRAM) if _informative(g)} if len(tokens) >= TRIGRAM else set()


def decontaminate(generated: list[dict], protected: list[Protected], kind: str, ngram: int, overlap: float,
                  common_max: int, cosine: Optional[float],
                  encode: Optional[Callable[[list[str]], np.ndarray]] = None) -> dict[int, tuple[str, dict]]:
    """Position in `generated` -> (reason, detail) for each contaminated item."""
    fields = kind_named(kind).COMPARED_FIELDS
    index = NgramIndex(protected, ngram, overlap, common_max)
    drops: dict[int, tuple[str, dict]] = {}
    for pos, rec in enumerate(generated):
        for field in fields:
            if not rec.get(field):
                continue
            found = index.match(rec[field])
            if found:
                rule, i, evidence = found
                drops[pos] = (f"contaminated_{rule}", {**_where(protected[i]), "field": field, **evidence})
                break
    if cosine is not None:
        for field in fields:
            for pos, (i, sim) in _embedding_matches(generated, protected, field, cosine, encode, drops).items():
                drops[pos] = ("contaminated_embedding", {**_where(protected[i]), "field": field,
                                                         "cosine": round(sim, 4)})
    return dict(sorted(drops.items()))


def _where(p: Protected) -> dict:
    return {"match": p.id, "split": p.split, "matched_text": p.text[:200]}


def _embedding_matches(generated, protected, field, threshold, encode, already) -> dict[int, tuple[int, float]]:
    gen = [(pos, r[field]) for pos, r in enumerate(generated)
           if pos not in already and r.get(field) and len(normalise(r[field]).split()) >= MIN_EMBED_WORDS]
    prot = [i for i, p in enumerate(protected) if p.field == field]
    if not gen or not prot:
        return {}
    p_vecs = encode([protected[i].text for i in prot])
    g_vecs = encode([text for _, text in gen])
    found = {}
    for start in range(0, len(gen), 512):  # chunks keep the similarity matrix small for big test sets
        sims = g_vecs[start : start + 512] @ p_vecs.T
        best = sims.argmax(axis=1)
        for row, col in enumerate(best):
            sim = float(sims[row, col])
            if sim >= threshold:
                found[gen[start + row][0]] = (prot[col], sim)
    return found
