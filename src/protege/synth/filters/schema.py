"""Schema filter: is a generated record a well-formed item of the task's kind? Returns why not, or None.

    check = SchemaCheck(spec, cfg)
    check(record)       # None, or ("unknown_label", {"label": "maybe", "labels": [...]})

Per kind: classification needs a known label; extraction known slots with values found in the message; qa
non-empty answers found in the passage (an empty list is an unanswerable question, allowed only with a
passage); math a numeric answer that the worked solution, when given, agrees with; code tests, a solution that
parses and defines the function under test, and tests that call it. Every kind: the teacher's output parsed
(`ok`), the fields have Example's types, and text, passage and solution lengths are within the limits.

The function under test is `entry_point` when the record names one, else the solution's top-level function
that the asserts call. Curated rows keep `entry_point` only for check(candidate) tests, as the task's own items
do: with assert-style (MBPP) tests an entry point would make the code kind treat the statement as a signature.
"""
from __future__ import annotations

import ast
import re
from typing import Optional

from pydantic import ValidationError

from protege.config import CurateConfig
from protege.tasks.spec import Example, TaskSpec

# Longest `text` per kind when curate.max_chars is not set: a TREC question is ~60 characters, a GSM8K problem
# ~250 (the longest ~900), an MBPP statement ~80, a SQuAD question ~60.
MAX_CHARS = {"classification": 300, "extraction": 300, "qa": 500, "math": 1000, "code": 1000}
EXAMPLE_FIELDS = tuple(Example.model_fields)

Verdict = Optional[tuple[str, dict]]


def example_fields(rec: dict) -> dict:
    """The Example part of a generated record (metadata such as raw, teacher and tokens left out)."""
    return {k: rec[k] for k in EXAMPLE_FIELDS if rec.get(k) is not None}


def curated_row(rec: dict) -> dict:
    row = {"id": rec.get("id"), **example_fields(rec)}
    if "entry_point" in row and "def check(" not in (row.get("tests") or ""):
        del row["entry_point"]
    return row


def entry_point_of(rec: dict) -> Optional[str]:
    """The record's entry_point, else the first top-level function of the solution that the tests call."""
    if rec.get("entry_point"):
        return rec["entry_point"]
    try:
        tree = ast.parse(rec.get("reference") or "")
    except (SyntaxError, ValueError):
        return None
    tests = rec.get("tests") or ""
    called = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
              and re.search(rf"\b{re.escape(n.name)}\s*\(", tests)]
    return min(called, key=lambda name: re.search(rf"\b{re.escape(name)}\s*\(", tests).start(), default=None)


class SchemaCheck:
    def __init__(self, spec: TaskSpec, cfg: CurateConfig, open_book: Optional[bool] = None):
        self.spec, self.cfg = spec, cfg
        self.max_chars = cfg.max_chars if cfg.max_chars is not None else MAX_CHARS[spec.kind]
        if open_book is None and spec.kind == "qa":
            open_book = any(s.context for s in spec.seed_examples())  # SQuAD-style seeds carry passages
        self.open_book = bool(open_book)

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
        return getattr(self, f"_{self.spec.kind}")(ex)

    def _classification(self, ex: Example) -> Verdict:
        if ex.label not in self.spec.label_names:
            return "unknown_label", {"label": ex.label, "labels": self.spec.label_names}
        return None

    def _extraction(self, ex: Example) -> Verdict:
        if ex.spans is None:
            return "missing_spans", {}
        for slot, value in ex.spans:
            if slot not in self.spec.slot_names:
                return "unknown_slot", {"slot": slot, "slots": self.spec.slot_names}
            if not value.strip():
                return "empty_answer", {"slot": slot}
            if value.strip().lower() not in ex.text.lower():
                return "span_not_in_text", {"slot": slot, "value": value}
        return None

    def _qa(self, ex: Example) -> Verdict:
        if ex.answers is None:
            return "missing_answers", {}
        if self.open_book and not (ex.context or "").strip():
            return "missing_context", {}
        if any(not a.strip() for a in ex.answers) or (not ex.answers and not ex.context):
            return "empty_answer", {"answers": ex.answers}
        passage = _squash(ex.context) if ex.context else None
        for answer in ex.answers:
            if passage is not None and _squash(answer) not in passage:
                return "answer_not_in_context", {"answer": answer}
        return None

    def _math(self, ex: Example) -> Verdict:
        from protege.evaluate.metrics.gsm8k import extract_number

        if not ex.answers or not ex.answers[0].strip():
            return "empty_answer", {"answers": ex.answers}
        gold = extract_number(ex.answers[0])
        if gold is None:
            return "non_numeric_answer", {"answer": ex.answers[0]}
        if ex.reference and extract_number(ex.reference) != gold:
            return "reference_disagrees", {"answer": ex.answers[0], "reference_tail": ex.reference[-120:]}
        return None

    def _code(self, ex: Example) -> Verdict:
        tests = (ex.tests or "").strip()
        if not tests or not re.search(r"^\s*(assert\b|def check\()", tests, re.M):
            return "no_tests", {}
        if not (ex.reference or "").strip():
            return "no_solution", {}
        entry = entry_point_of(ex.model_dump())
        if "def check(" in tests and not ex.entry_point:
            return "no_entry_point", {"why": "check(candidate) tests need entry_point"}
        if entry is not None and not entry.isidentifier():
            return "no_entry_point", {"entry_point": entry}
        for field, source in (("reference", ex.reference), ("tests", tests)):
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError) as e:
                return "syntax_error", {"field": field, "error": f"line {getattr(e, 'lineno', '?')}: {e}"}
            if field == "reference":
                defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
                if entry is None:
                    return "tests_do_not_call_entry_point", {"defines": sorted(defined)}
                if entry not in defined:
                    return "no_entry_point_function", {"entry_point": entry, "defines": sorted(defined)}
        if "def check(" not in tests and not re.search(rf"\b{re.escape(entry)}\b", tests):
            return "tests_do_not_call_entry_point", {"entry_point": entry}
        return None


def _squash(text: str) -> str:
    return " ".join(text.lower().split())
