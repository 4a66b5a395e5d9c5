"""Curate stage: validate, de-duplicate and decontaminate generated examples; count what each filter drops.

Filters run in order and each item is dropped by the first filter it fails; `drops.jsonl` keeps every dropped
item with the reason, `data/train.jsonl` the kept ones.
"""
from __future__ import annotations

import re
from collections import Counter

from protege.config import CurateConfig
from protege.store import StageDir, atomic_write_text
from protege.tasks.spec import TaskSpec


def normalise(text: str) -> str:
    """Lowercase, drop punctuation, collapse spaces: 'What is  X ?' and 'what is x' are the same item."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def curate(spec: TaskSpec, cfg: CurateConfig, generated: list[dict], protected: list[str]) -> tuple[list, list]:
    """Return (kept, dropped); `protected` are texts that must not leak into training (test, validation)."""
    protected_norm = {normalise(t) for t in protected}
    seen: set[str] = set()
    kept, dropped = [], []
    for rec in generated:
        reason = None
        text = rec.get("text") or ""
        norm = normalise(text)
        if not rec.get("ok"):
            reason = "malformed"
        elif rec.get("label") not in spec.label_names:
            reason = "unknown_label"
        elif not cfg.min_chars <= len(text) <= cfg.max_chars:
            reason = "length"
        elif cfg.decontaminate and norm in protected_norm:
            reason = "contaminated"
        elif cfg.dedup and norm in seen:
            reason = "duplicate"
        if reason:
            dropped.append({**rec, "dropped_by": reason})
        else:
            seen.add(norm)
            kept.append({"id": rec["id"], "text": text, "label": rec["label"]})
    return kept, dropped


def run_curate(spec: TaskSpec, cfg: CurateConfig, stage: StageDir, generated: list[dict]) -> dict:
    from protege.evaluate.test_access import LOG_NAME, read_test_set

    test = read_test_set(spec, stage / LOG_NAME, stage, "decontamination", who="curate")
    protected = [e.text for e in test] + [e.text for e in spec.validation_examples()]
    kept, dropped = curate(spec, cfg, generated, protected)
    import json

    atomic_write_text(stage / "data" / "train.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
    atomic_write_text(stage / "drops.jsonl", "".join(json.dumps(r) + "\n" for r in dropped))
    return {"input": len(generated), "kept": len(kept), "test_reads": 1, "dropped": dict(Counter(r["dropped_by"] for r in dropped)),
            "kept_per_label": dict(Counter(r["label"] for r in kept))}
