"""Duplicate filters: exact (normalised input) and near (MinHash word-shingle Jaccard, or MiniLM cosine).

    exact_duplicates(records, kind)                        # {position: ("duplicate", {"duplicate_of": id})}
    near_duplicates(records, jaccard=0.8, shingle_words=3)  # {position: ("near_duplicate", {..., "jaccard": 0.86})}
    embedding_duplicates(records, cosine=0.95, encode=encode)

Records come in id order and the first of a group is kept, so which one survives does not depend on the order
generation happened to append them. An item is compared with the items kept before it, not with dropped ones.
The exact key is the kind's `dedup_key`: for code it includes the solution, so different solutions of one problem
reach the simplicity filter, which keeps the simplest.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from protege.synth.filters.minhash import MinHashLSH, estimated_jaccard
from protege.tasks.text import item_input, ngrams
from protege.tasks.kinds import kind_named


def exact_duplicates(records: list[dict], kind: str) -> dict[int, tuple[str, dict]]:
    task_kind = kind_named(kind)
    first: dict[str, str] = {}
    drops = {}
    for pos, rec in enumerate(records):
        key = task_kind.dedup_key(rec, item_input(rec))
        if key in first:
            drops[pos] = ("duplicate", {"duplicate_of": first[key]})
        else:
            first[key] = rec.get("id")
    return drops


def near_duplicates(records: list[dict], jaccard: float, shingle_words: int = 3, num_perm: int = 128,
                    bands: int = 32) -> dict[int, tuple[str, dict]]:
    """Drop an item whose word-shingle Jaccard with an earlier kept item is >= `jaccard`. LSH proposes the
    candidates; their exact Jaccard on the shingle sets decides."""
    lsh = MinHashLSH(num_perm=num_perm, bands=bands)
    shingles: list[set] = []
    signatures: list[np.ndarray] = []
    drops = {}
    for pos, rec in enumerate(records):
        grams = {" ".join(g) for g in ngrams(item_input(rec).split(), shingle_words)}
        sig = lsh.signature(grams)
        shingles.append(grams)
        signatures.append(sig)
        best = None
        for other in sorted(lsh.query(sig)):
            union = len(grams | shingles[other])
            score = len(grams & shingles[other]) / union if union else 1.0
            if score >= jaccard and (best is None or score > best[1]):
                best = (other, score)
        if best:
            other, score = best
            drops[pos] = ("near_duplicate", {"duplicate_of": records[other].get("id"), "jaccard": round(score, 4),
                                             "minhash_estimate": estimated_jaccard(sig, signatures[other])})
        else:
            lsh.insert(pos, sig)
    return drops


def embedding_duplicates(records: list[dict], cosine: float,
                         encode: Callable[[list[str]], np.ndarray]) -> dict[int, tuple[str, dict]]:
    """Drop an item whose MiniLM cosine with an earlier kept item is >= `cosine` (text, plus passage for qa)."""
    if not records:
        return {}
    vecs = encode([_embed_text(r) for r in records])
    kept: list[int] = []
    drops = {}
    for pos in range(len(records)):
        if kept:
            sims = vecs[kept] @ vecs[pos]
            best = int(sims.argmax())
            if sims[best] >= cosine:
                drops[pos] = ("near_duplicate_embedding", {"duplicate_of": records[kept[best]].get("id"),
                                                           "cosine": round(float(sims[best]), 4)})
                continue
        kept.append(pos)
    return drops


def _embed_text(rec: dict) -> str:
    return (rec.get("text") or "") + ("\n" + rec["context"] if rec.get("context") else "")

