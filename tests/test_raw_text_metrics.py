"""lab/experiments/raw_text_metrics.py: the paired comparison of two students on the same held-out blocks."""
from protege.lab.experiments.raw_text_metrics import paired_nll_delta


def test_a_constant_shift_on_every_block_is_certain_even_when_the_blocks_vary_widely():
    base = [1.0, 5.0, 2.0, 8.0, 3.0, 6.0]
    delta, (lo, hi) = paired_nll_delta([b - 0.1 for b in base], base)
    assert abs(delta + 0.1) < 1e-9 and abs(lo + 0.1) < 1e-9 and abs(hi + 0.1) < 1e-9


def test_differences_of_both_signs_give_an_interval_that_spans_zero():
    delta, (lo, hi) = paired_nll_delta([1.2, 0.8, 1.1, 0.9, 1.3, 0.7], [1.0] * 6)
    assert abs(delta) < 1e-9 and lo < 0 < hi
