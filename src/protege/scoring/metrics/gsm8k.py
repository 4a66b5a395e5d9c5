"""GSM8K answer matching: pull the final number out of a solution and compare numerically.

    extract_number("... so she pays $1,234.50.")   # Fraction(2469, 2)
    gsm8k_match("The answer is 42.", "6 * 7 = <<6*7=42>>42\\n#### 42")   # True

A text containing "####" (the gold format, and what few-shot prompts teach) is read at the first
number after its last "####"; any other text at its last number. Numbers may carry thousands
commas, a "$", a leading minus and decimals; a sentence-final "." is not a decimal point, and the
"-" of a range such as "10-15" is not a sign. Values are exact Fractions, so 42, 42.0 and 42.00 match.
"""
from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(
    r"(?<!\w)(?P<sign>[-\u2212]?)\$?(?P<sign2>[-\u2212]?)"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
)
_MARKER = "####"


def extract_number(text: str) -> Fraction | None:
    """The answer number in `text` (see the module docstring), or None when there is none."""
    if _MARKER in text:
        match = _NUMBER.search(text.rsplit(_MARKER, 1)[1])
    else:
        match = None
        for match in _NUMBER.finditer(text):
            pass
    if match is None:
        return None
    value = Fraction(match["digits"].replace(",", ""))
    return -value if match["sign"] or match["sign2"] else value


def gsm8k_match(pred_text: str, gold_answer_text: str) -> bool:
    """Whether the prediction's final number equals the gold answer's (a "#### N" line or a bare number)."""
    gold = extract_number(gold_answer_text)
    if gold is None:
        raise ValueError(f"no number in the gold answer {gold_answer_text[-80:]!r}; expected a '#### N' line")
    return extract_number(pred_text) == gold
