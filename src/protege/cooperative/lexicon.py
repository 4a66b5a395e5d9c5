"""Lexical style/capability annotation: which words of a reasoning trace are style (the student's) and which are
capability (the teacher's).

    annotate("Well, so 3 + 4 = 7.")
    # [Span(0, 4, 'style'), Span(6, 8, 'style'), Span(9, 10, 'capability'), Span(11, 12, 'capability'), ...]

Style is a curated list of transitional and filler phrases ("well", "let's see", "in other words", "hmm",
"wait", ...). Everything else that is a word or a symbol is capability: digits, operators, code, identifiers,
content words and function words alike. Whitespace and sentence punctuation (. , ; : ! ? quotes, dashes) are
neutral: they belong to whichever side is writing, so they are not annotated. Ambiguous words ("so", "then",
"first", "well", "right", ...) count as style only at the start of a clause ("Well, ..." but not "as well").
This is a heuristic, honest about being one: it is the default predictor and the teacher of the trainable
classifier (classifier.py), not a linguistic truth.
"""
from __future__ import annotations

import re
from typing import Literal, NamedTuple

Label = Literal["style", "capability"]

# Words (with inner apostrophes: "let's"), whitespace runs, or one other character.
_UNIT = re.compile(r"\w+(?:['’]\w+)*|\s+|[^\w\s]")
NEUTRAL_PUNCT = set(".,;:!?\"'…—–")
_CLAUSE_END = set(".!?;:,\n")

# Style anywhere in a sentence.
ANYWHERE = """
hmm | hm | um | uh | oh | ah | okay | ok | alright | yeah | wait | actually | basically | anyway | however |
therefore | thus | hence | consequently | moreover | furthermore | additionally | meanwhile | similarly |
alternatively | in other words | let's see | let me see | let me think | let me check | let me | let's | let us |
that means | this means | which means | to do this | first of all | on the other hand | i think | i guess | i see |
it seems | it looks like | as a result | in summary | to sum up | for example | for instance | of course |
in fact | note that | notice that | recall that | remember that | keep in mind | hold on | in this case |
in that case | after that | and then | now that | that is | we need to | we know that | we can | we have | we get |
step by step | break it down | break this down
"""
# Style only at the start of a clause (after . ! ? ; : , a newline, another style phrase, or the beginning).
CLAUSE_START = """
well | so | now | first | firstly | second | secondly | third | next | then | right | also | but | finally |
lastly | again | yes | no | sure | great | perfect | indeed | clearly | obviously | maybe | perhaps | instead |
here's | here is | here's how | to solve this problem | to solve this | to find out |
otherwise | still | besides | good
"""


def _phrases(block: str) -> list[tuple[str, ...]]:
    items = [tuple(p.split()) for p in block.replace("\n", " ").split("|") if p.strip()]
    return sorted(items, key=len, reverse=True)  # longest match first: "let me see" before "let me"


ANYWHERE_PHRASES = _phrases(ANYWHERE)
CLAUSE_START_PHRASES = _phrases(CLAUSE_START)


def _by_first_word(phrases: list[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    index: dict[str, list[tuple[str, ...]]] = {}
    for p in sorted(phrases, key=len, reverse=True):
        index.setdefault(p[0], []).append(p)
    return index


# Candidates by first word, longest first: (anywhere only, anywhere + clause-start).
_INDEX = (_by_first_word(ANYWHERE_PHRASES), _by_first_word(ANYWHERE_PHRASES + CLAUSE_START_PHRASES))


class Unit(NamedTuple):
    start: int
    end: int
    kind: Literal["word", "space", "neutral", "symbol"]


class Span(NamedTuple):
    start: int
    end: int
    label: Label


def units(text: str) -> list[Unit]:
    """The text cut into words, whitespace runs and single punctuation/symbol characters."""
    out = []
    for m in _UNIT.finditer(text):
        s = m.group()
        kind = "space" if s.isspace() else "word" if (s[0].isalnum() or s[0] == "_") else \
            "neutral" if s in NEUTRAL_PUNCT else "symbol"
        out.append(Unit(m.start(), m.end(), kind))
    return out


def norm(word: str) -> str:
    return word.lower().replace("’", "'")


def clause_start(text: str, us: list[Unit], i: int) -> bool:
    """True when unit i opens a clause: nothing but whitespace/clause punctuation since the last clause end."""
    for j in range(i - 1, -1, -1):
        u = us[j]
        if u.kind == "space":
            if "\n" in text[u.start:u.end]:
                return True
            continue
        return u.kind == "neutral" and text[u.start:u.end] in _CLAUSE_END
    return True


def _match(text: str, us: list[Unit], i: int, phrase: tuple[str, ...]) -> int | None:
    """Index after the phrase's last unit if `phrase` starts at unit i (words separated by whitespace only)."""
    j = i
    for k, word in enumerate(phrase):
        if k:
            if j >= len(us) or us[j].kind != "space":
                return None
            j += 1
        if j >= len(us) or us[j].kind != "word" or norm(text[us[j].start:us[j].end]) != word:
            return None
        j += 1
    return j


def annotate(text: str) -> list[Span]:
    """Style/capability label of every word and symbol in `text` (whitespace and sentence punctuation left out)."""
    us = units(text)
    style = [False] * len(us)
    i = 0
    while i < len(us):
        end = None
        if us[i].kind == "word":
            # A style phrase right before also opens a clause: "Okay so", "Hmm, well".
            opens = clause_start(text, us, i) or _prev_word_is_style(us, style, i)
            for phrase in _INDEX[opens].get(norm(text[us[i].start:us[i].end]), ()):
                end = _match(text, us, i, phrase)
                if end is not None:
                    break
        if end is None:
            i += 1
            continue
        for j in range(i, end):
            style[j] = us[j].kind == "word"
        i = end
    return [Span(u.start, u.end, "style" if s else "capability")
            for u, s in zip(us, style) if u.kind in ("word", "symbol")]


def _prev_word_is_style(us: list[Unit], style: list[bool], i: int) -> bool:
    for j in range(i - 1, -1, -1):
        if us[j].kind == "space":
            continue
        return us[j].kind == "word" and style[j]
    return False
