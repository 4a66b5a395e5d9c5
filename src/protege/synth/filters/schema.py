"""Schema filter: is a generated record a well-formed item of the task's kind? Returns why not, or None.

    check = SchemaCheck(spec, cfg)
    check(record)       # None, or ("unknown_label", {"label": "maybe", "labels": [...]})

Every kind: the teacher's output parsed (`ok`), the fields have Example's types, and text, passage and solution
lengths are within the limits (the kind's MAX_TEXT_CHARS unless curate.max_chars is set). Then the kind's own
`check_item`: a known label, known slots found in the message, answers found in the passage, a numeric answer the
worked solution agrees with, code with tests that call the function it defines (protege.tasks.kinds).

Curated rows keep `entry_point` only for check(candidate) tests, as the task's own items do: with assert-style
(MBPP) tests an entry point would make the code kind treat the statement as a signature.
"""
from __future__ import annotations

from typing import Optional

from pydantic import ValidationError

from protege.config import CurateConfig
from protege.tasks.kinds import kind_of
from protege.tasks.kinds.protocol import Verdict
from protege.tasks.spec import Example, TaskSpec

EXAMPLE_FIELDS = tuple(Example.model_fields)


def example_fields(rec: dict) -> dict:
    """The Example part of a generated record (metadata such as raw, teacher and tokens left out)."""
    return {k: rec[k] for k in EXAMPLE_FIELDS if rec.get(k) is not None}


def curated_row(rec: dict) -> dict:
    row = {"id": rec.get("id"), **example_fields(rec)}
    if "entry_point" in row and "def check(" not in (row.get("tests") or ""):
        del row["entry_point"]
    return row


class SchemaCheck:
    def __init__(self, spec: TaskSpec, cfg: CurateConfig, open_book: Optional[bool] = None):
        self.spec, self.cfg, self.kind = spec, cfg, kind_of(spec)
        self.max_chars = cfg.max_chars if cfg.max_chars is not None else self.kind.MAX_TEXT_CHARS
        self.open_book = self.kind.is_open_book(spec) if open_book is None else bool(open_book)

    def __call__(self, rec: dict) -> Verdict:
        if not rec.get("ok", True):
            return "malformed", {"error": rec.get("error") or "the teacher's output did not parse"}
        try:
            ex = Example(**example_fields(rec))
        except ValidationError as e:
            return "malformed", {"error": "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}"
                                                   for x in e.errors())}
        text = ex.text.strip()
        if not self.cfg.min_chars <= len(text) <= self.max_chars:
            return "length", {"field": "text", "chars": len(text), "min": self.cfg.min_chars, "max": self.max_chars}
        for field, limit in (("context", self.cfg.max_context_chars), ("reference", self.cfg.max_reference_chars)):
            value = getattr(ex, field)
            if value is not None and len(value) > limit:
                return "length", {"field": field, "chars": len(value), "max": limit}
        return self.kind.check_item(self.spec, ex, self.open_book)
