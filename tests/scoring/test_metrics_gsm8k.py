"""GSM8K final-number extraction and matching, one number format at a time."""
from fractions import Fraction

import pytest

from protege.scoring.metrics.gsm8k import extract_number, gsm8k_match

GOLD = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is 42", 42),
        ("The answer is 42.", 42),
        ("She earns 1,234 dollars", 1234),
        ("Total: $1,234,567.", 1234567),
        ("It costs $12.50.", Fraction(25, 2)),
        ("The change is -7.", -7),
        ("He owes -$15 overall", -15),
        ("temperature fell to \u22123", -3),
        ("pages 10-15", 15),
        ("first 3 then 4 then 0.5", Fraction(1, 2)),
        ("#### 42", 42),
        ("#### -1,000", -1000),
        ("work: 2+3 = 5\n#### 5\nso 5 apples, 7 pears", 5),
        ("done in 50%", 50),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_no_number_is_none():
    assert extract_number("I do not know.") is None
    assert extract_number("answer: #### none") is None


def test_match_compares_numerically():
    assert gsm8k_match("So she sold 72 clips.", GOLD)
    assert gsm8k_match("72.00", GOLD)
    assert gsm8k_match("The total is $72.", "#### 72")
    assert not gsm8k_match("48 + 24 = 73", GOLD)
    assert not gsm8k_match("no idea", GOLD)
    assert gsm8k_match("1,000", "#### 1000")


def test_gold_without_number_raises():
    with pytest.raises(ValueError, match="no number in the gold answer"):
        gsm8k_match("42", "#### ")
