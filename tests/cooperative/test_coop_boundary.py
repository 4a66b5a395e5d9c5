"""Lexical boundary predictor: where each side's span ends, and that no cut ever splits a word."""
import random
import re

import pytest

from protege.cooperative import LexicalPredictor, annotate
from protege.cooperative.boundary import snap_cut, word_end

P = LexicalPredictor()


@pytest.mark.parametrize("context, chunk, side, kept", [
    ("", "Well, let's see, the total", "student", "Well, let's see, "),
    ("", "Hmm. 3 + 4", "student", "Hmm. "),
    ("", "the answer", "student", ""),
    ("", "Okay so then", "student", "Okay so then"),
    ("The total is 12. ", "So we divide by 3", "student", "So "),
    ("x = 3. ", "Now, first, we need to compute", "student", "Now, first, we need to "),
    ("Well, ", "in other words, x", "student", "in other words, "),
    ("Hmm, ", "3 + 4 = 7. So the", "teacher", "3 + 4 = 7. "),
    ("", "the ratio as well as the sum", "teacher", "the ratio as well as the sum"),  # "well" mid-clause
    ("", "x_total = 12; in other words", "teacher", "x_total = 12; "),
    ("", "12 / 4 = 3, wait", "teacher", "12 / 4 = 3, "),
    ("", "def f(x):\n    return x + 1", "teacher", "def f(x):\n    return x + 1"),
    ("", "7 apples.\nNext we", "teacher", "7 apples.\n"),
    ("So ", "then we add", "teacher", ""),  # "then" right after a style word opens the clause too
    ("x = 2 ", "so", "teacher", "so"),  # ...but not after capability
])
def test_lexical_cuts(context, chunk, side, kept):
    assert chunk[:P.cut(context, chunk, side)] == kept


def test_a_chunk_that_starts_mid_word_finishes_the_word_first():
    # "Tok|yo" is capability: the student cannot stop inside it, so it keeps "yo" and stops there.
    assert P.cut("The city is Tok", "yo has 14 million", "student") == 2
    # "Wel|l" opens a clause after ". ", so it is style: the teacher keeps "l" and stops.
    assert P.cut("So x = 3. Wel", "l, 3 + 4", "teacher") == 1
    # An apostrophe inside a word does not end it: "let|'s" is finished as one word.
    assert P.cut("x = 1. Let", "'s see: 4", "teacher") == 2


def test_word_end_and_snap():
    assert word_end("hello world", 2) == 5
    assert word_end("hello world", 5) == 5 and word_end("hello world", 0) == 0
    assert word_end("let's go", 3) == 5 and word_end("it's", 2) == 4
    assert word_end("3.14", 1) == 1  # "." ends the "3": a cut there is at a boundary
    assert word_end("a step-by-step plan", 7) == len("a step-by-step")  # a cut after "step-" finishes the word
    assert word_end("16 - 3", 3) == 3 and word_end("top-\n", 4) == 4  # a hyphen joins only word to word
    assert snap_cut("Tok", "yo has", 0) == 2 and snap_cut("Tok ", "yo has", 0) == 0
    assert snap_cut("", "abc", 99) == 3 and snap_cut("", "abc", -4) == 0


TRACE = ("Okay, so let's see. Janet has 16 eggs per day; she eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs "
         "remain. Hmm, wait: in other words she sells 9 * $2 = $18 every day. Now, first, let me check "
         "x_total = 9*2 (that's 18). Therefore the answer is 18.\nWell, def f(n): return n*2  # code too")


def _inside_word(text, pos):
    return 0 < pos < len(text) and re.match(r"\w", text[pos - 1]) and re.match(r"\w", text[pos])


@pytest.mark.parametrize("side", ["student", "teacher"])
def test_no_cut_ever_splits_a_word_whatever_the_chunk_boundaries(side):
    rng = random.Random(0)
    for _ in range(400):
        a = rng.randrange(len(TRACE))
        b = rng.randrange(a, min(len(TRACE), a + 40) + 1)
        context, chunk = TRACE[:a], TRACE[a:b]
        cut = P.cut(context, chunk, side)
        assert 0 <= cut <= len(chunk)
        assert not _inside_word(TRACE, a + cut) or cut == len(chunk), (context[-10:], chunk, cut)
        # and so does any cut once snapped (what the state machine does to a predictor's answer)
        raw = rng.randrange(len(chunk) + 1)
        snapped = snap_cut(context, chunk, raw)
        assert snapped >= raw and (not _inside_word(TRACE, a + snapped) or snapped == len(chunk))


def test_annotate_labels_words_and_symbols_and_leaves_punctuation_out():
    text = "Well, so 3 + x_1 = 7. As well: done!"
    got = [(text[s.start:s.end], s.label) for s in annotate(text)]
    assert got == [("Well", "style"), ("so", "style"), ("3", "capability"), ("+", "capability"),
                   ("x_1", "capability"), ("=", "capability"), ("7", "capability"), ("As", "capability"),
                   ("well", "capability"), ("done", "capability")]


class FixedCut:
    """A predictor that always cuts at one character of the chunk (the rule under test is the hand-off's)."""

    def __init__(self, at):
        self.at = at

    def cut(self, context, chunk, side):
        return min(self.at, len(chunk))


def test_clause_handoff_lets_the_side_finish_its_clause_or_line():
    from protege.cooperative.boundary import ClauseHandoff, clause_end

    chunk = "To solve this problem, we loop over the list. Then"
    assert ClauseHandoff(FixedCut(3)).cut("", chunk, "student") == len("To solve this problem, ")
    first_two = "To solve this problem, we loop over the list. "
    assert ClauseHandoff(FixedCut(27)).cut("", chunk, "student") == len(first_two)
    code = "def f(xs):\n    total = sum(xs)\n    return total"
    assert ClauseHandoff(FixedCut(17)).cut("", code, "teacher") == len("def f(xs):\n    total = sum(xs)\n    ")
    assert ClauseHandoff(FixedCut(14)).cut("", code, "teacher") == len("def f(xs):\n    ")  # a line start
    # a cut already at a clause end stays; "3.5" and "x.y" are not clause ends
    assert clause_end("First, second", len("First, ")) == len("First, ")
    assert clause_end("It is 3.5 now. Next", 3) == len("It is 3.5 now. ")
    assert clause_end("call x.y(z) then", 2) is None


def test_a_clause_longer_than_the_chunk_keeps_the_chunk_and_nothing_cut_stays_uncut():
    from protege.cooperative.boundary import ClauseHandoff

    assert ClauseHandoff(FixedCut(5)).cut("", "so the total of all the", "student") == len("so the total of all the")
    assert ClauseHandoff(FixedCut(99)).cut("", "abc, def", "teacher") == len("abc, def")


def test_clause_handoff_is_a_setting_that_keeps_old_keys():
    from protege.config import RunConfig
    from protege.stage_keys import key_dump
    from protege.cooperative.boundary import ClauseHandoff, LexicalPredictor, load_predictor

    assert isinstance(load_predictor("lexical"), LexicalPredictor)
    assert isinstance(load_predictor("lexical", "clause"), ClauseHandoff)
    assert "handoff" not in key_dump(RunConfig().generate.cooperative)
