"""Slot/span micro F1: normalisation, multiset counting, per-item matching."""
import pytest

from protege.scoring.metrics.spans import micro_span_prf, normalize_value, span_counts, span_prf


def test_values_normalised_slots_exact():
    assert normalize_value("  New \t York ") == "new york"
    assert span_counts([("city", "New York")], [("city", " new  york")]) == (1, 0, 0)
    assert span_counts([("city", "Paris")], [("City", "Paris")]) == (0, 1, 1)
    with pytest.raises(TypeError, match="strings"):
        normalize_value(3)


def test_duplicates_are_a_multiset():
    gold = [("item", "apple"), ("item", "apple"), ("item", "pear")]
    assert span_counts(gold, [("item", "apple")] * 3) == (2, 1, 1)
    assert span_counts(gold, [("item", "Apple"), ("item", "pear")]) == (2, 0, 1)


def test_prf_by_hand():
    out = span_prf([("a", "1"), ("b", "2"), ("c", "3")], [("a", "1"), ("b", "x")])
    assert out == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "tp": 1, "fp": 1, "fn": 2})
    assert span_prf([], [])["f1"] == 1.0
    assert span_prf([("a", "1")], [])["f1"] == 0.0 and span_prf([], [("a", "1")])["f1"] == 0.0


def test_micro_sums_counts_and_never_matches_across_items():
    gold = [[("city", "Paris")], [("city", "Rome"), ("date", "May 3")]]
    pred = [[("city", "Rome")], [("city", "Paris"), ("date", "may 3")]]
    out = micro_span_prf(gold, pred)
    assert (out["tp"], out["fp"], out["fn"]) == (1, 2, 2)
    assert out["f1"] == pytest.approx(2 * (1 / 3) * (1 / 3) / (2 / 3))
    with pytest.raises(ValueError, match="aligned"):
        micro_span_prf(gold, pred[:1])
