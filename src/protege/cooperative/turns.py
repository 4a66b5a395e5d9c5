"""Cooperative decoding (TESSY, arXiv:2604.14164): teacher and student take turns writing one answer; the
student writes the style (transitions, fillers, tone), the teacher the capability (reasoning, code, formulas).

    sample = cooperate([{"role": "user", "content": q}], teacher_lm, student_lm, CooperativeConfig())
    sample.text, sample.spans   # [{"by": "student", "text": "Okay, so "}, {"by": "teacher", "text": "3 + 4 = 7"}]
    cooperate_batch(prompts, teacher_lm, student_lm, cfg)      # several answers decoded together (batched.py)
    cooperate_many(prompts, teacher_lm, student_lm, cfg)       # in batches of 8, with a progress bar

A turn: the active side decodes a chunk (cfg.<side>_chunk_tokens), the boundary predictor cuts it where the side's
span ends (snapped to a word end; a chunk with nothing cut gives back its trailing word, which the token limit may
have split, unless that word is all it holds), the spaces after its last word are left to the next side (whose
tokens put them before its words), the kept part is appended to BOTH models' sessions, and control passes to
the other side. A cut that keeps nothing passes control without appending; if neither a teacher turn nor the
turn before it kept more than whitespace, the teacher keeps its first word instead (`forced`, a style word
included), so two greedy models cannot hand an empty answer (or spaces) back and forth until max_turns. The
student is never forced: its first word would be capability, the teacher's to write.
Final answer: once a final marker (cfg.final_markers) lies in the kept text, cfg.final_answer_by writes the
rest uncut (the other side keeps the marker itself and hands over). End of sequence (with nothing cut before
it; one cut off with the rest of its chunk is ignored): from the final-answer writer, the answer ends; from the
other side, the final-answer writer takes over and writes on, uncut, until it ends the answer itself.
Stops: "eos", "max_new_tokens" (tokens decoded by both, discarded ones included), "max_turns", "repetition".
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Generator, Sequence

from tqdm.auto import tqdm

from protege.cooperative.boundary import WORD_JOINERS, BoundaryPredictor, wordish, load_predictor, snap_cut
from protege.cooperative.config import CooperativeConfig, Side
from protege.cooperative.session import Chunk, Session, open_session
from protege.models.base import Prompt

_FIRST_UNIT = re.compile(r"\s*(?:\w+(?:['’]\w+)*|[^\w\s])")
MAX_REPEAT_PERIOD = 400  # longest repeated unit looked for, in characters (a chunk is far shorter)


@dataclass
class CooperativeSample:
    text: str
    spans: list[dict]  # {"by": side, "text": ...}; consecutive same-side spans merged; joined they are `text`
    tokens: dict[str, int]  # tokens each side decoded, discarded ones included
    chars: dict[str, int]  # characters of `text` each side wrote
    turns: int
    stop: str  # "eos" | "max_new_tokens" | "max_turns" | "repetition"
    final_from: int | None = None  # where the final-answer writer's uncut part begins; None: no hand-over
    forced: int = 0  # turns that kept the first word to break an empty ping-pong
    session_stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def other(side: Side) -> Side:
    return "teacher" if side == "student" else "student"


def run_turns(sessions: dict[str, Session], cfg: CooperativeConfig, predictor: BoundaryPredictor) -> CooperativeSample:
    """The state machine over two open sessions ({"teacher": ..., "student": ...}) that share one answer."""
    answer = turn_machine(sessions, cfg, predictor)
    try:
        side, n = next(answer)
        while True:
            side, n = answer.send(sessions[side].step(n))
    except StopIteration as done:
        return done.value


def run_turns_together(answers: list[dict[str, Session]], cfg: CooperativeConfig,
                       predictor: BoundaryPredictor) -> list[CooperativeSample]:
    """run_turns for many answers at once: each round, the answers waiting on the teacher decode their chunks as
    one batch (batched.step_together), then those waiting on the student. Same samples as one at a time."""
    from protege.cooperative.batched import step_together

    machines = [turn_machine(s, cfg, predictor) for s in answers]
    waiting: dict[int, tuple[Side, int]] = {}
    done: dict[int, CooperativeSample] = {}

    def advance(i: int, chunk=None) -> None:
        try:
            waiting[i] = next(machines[i]) if chunk is None else machines[i].send(chunk)
        except StopIteration as finished:
            waiting.pop(i, None)
            done[i] = finished.value

    for i in range(len(answers)):
        advance(i)
    while waiting:
        for side in ("teacher", "student"):
            rows = [i for i, (s, _) in waiting.items() if s == side]
            if rows:
                chunks = step_together([answers[i][side] for i in rows], [waiting[i][1] for i in rows])
                for i, chunk in zip(rows, chunks):
                    advance(i, chunk)
    return [done[i] for i in range(len(answers))]


def turn_machine(sessions: dict[str, Session], cfg: CooperativeConfig, predictor: BoundaryPredictor
                 ) -> Generator[tuple[Side, int], Chunk, CooperativeSample]:
    """The turns of one answer as a generator: it yields (side, tokens) for the chunk it needs next, is sent that
    side's Chunk (sessions[side].step(tokens), run by the caller so that many answers can batch), appends the
    kept text to both sessions itself, and returns the CooperativeSample."""
    text, spans = "", []
    tokens = {"student": 0, "teacher": 0}
    active: Side = cfg.first
    final_from: int | None = None
    turns = forced = 0
    empty_before = False
    while True:
        if turns >= cfg.max_turns:
            stop = "max_turns"
            break
        budget = cfg.max_new_tokens - sum(tokens.values())
        if budget <= 0:
            stop = "max_new_tokens"
            break
        chunk = yield active, min(cfg.chunk_tokens(active), budget)
        turns += 1
        tokens[active] += chunk.n_tokens
        c = chunk.text
        uncut = final_from is not None  # the final-answer writer goes on with its own text: kept as written
        if uncut:
            keep = len(c)
        else:
            keep = snap_cut(text, c, predictor.cut(text, c, active))
            if empty_before and not c[:keep].strip() and c.strip() and active == "teacher":
                keep = snap_cut(text, c, _FIRST_UNIT.match(c).end())
                forced += 1
            if keep == len(c) and not chunk.eos:
                keep = _before_last_word(c)
            marker_end = _marker_end(text, c, keep, cfg.final_markers)
            if marker_end is not None:
                if active == cfg.final_answer_by:
                    keep = len(c)
                    final_from = len(text) + marker_end
                else:  # keep the marker, not what this side wrote after it
                    keep = snap_cut(text, c, marker_end)
                    final_from = len(text) + keep
        whole = keep == len(c)
        if final_from is None:  # the other side writes next: it brings the space with its first word
            keep = _before_trailing_spaces(c, keep)
        kept = c[:keep]
        if not uncut and (lead := _doubled_space(text, kept)):  # final_from, set from c, moves back with the cut
            kept = kept[lead:]
            if final_from is not None and final_from > len(text):
                final_from = max(len(text), final_from - lead)
        for s in sessions.values():  # the active side's proposal is reconciled with (or dropped for) `kept`
            s.append(kept)
        text += kept
        if kept:
            if spans and spans[-1]["by"] == active:
                spans[-1]["text"] += kept
            else:
                spans.append({"by": active, "text": kept})
        empty_before = not kept.strip()
        if chunk.eos and whole:
            if active == cfg.final_answer_by:  # (always the case once in the final answer)
                stop = "eos"
                break
            if final_from is None:  # the other side says it is done: the final-answer writer finishes
                final_from = len(text)
        if _repeats(text, cfg.repeat_times, cfg.repeat_min_chars):
            stop = "repetition"
            break
        if final_from is not None:
            active = cfg.final_answer_by
        else:
            active = other(active)
    chars = {side: sum(len(s["text"]) for s in spans if s["by"] == side) for side in ("student", "teacher")}
    stats = {side: dict(getattr(s, "stats", {})) for side, s in sessions.items()}
    return CooperativeSample(text, spans, tokens, chars, turns, stop, final_from, forced, stats)


def _doubled_space(text: str, kept: str) -> int:
    """How many leading spaces of a side's kept text to drop: where the answer already ends in whitespace (a line
    end; hand-offs leave no trailing spaces since session 24), this side's first token often brings its own
    (" in"), a spacing neither model writes alone."""
    return len(kept) - len(kept.lstrip(" ")) if text[-1:].isspace() else 0


def _before_trailing_spaces(chunk: str, keep: int) -> int:
    """Where the kept part ends once the spaces after its last word are left out. Both tokenizers attach a space
    to the word after it (" we"), so an answer that ends in a space reads to the next model as a token it rarely
    saw there: at 61 hand-offs of cooperative MBPP answers ("...1D lists, "), SmolLM2-135M-Instruct's greedy next
    token was a line break 41 times, and 1 time with the space taken off (session 24). The next side writes the
    space with its word."""
    return len(chunk[:keep].rstrip(" \t"))


def _before_last_word(chunk: str) -> int:
    """Where a chunk kept whole should end so that it does not stop inside a word: a chunk cut off by the token
    limit may end mid-word ("5" of "50"), and the other side would finish the word. So the trailing word goes
    back (its side writes it again next turn), unless it is all the chunk holds. A chunk that ends in a joiner after
    a word ("step-", "Here'") ends inside a word too: the joiner goes back with it."""
    end = len(chunk)
    if end > 1 and chunk[-1] in WORD_JOINERS and wordish(chunk, end - 2):
        end -= 1
    while end > 0 and wordish(chunk, end - 1):
        end -= 1
    return end if chunk[:end].strip() else len(chunk)


def _marker_end(text: str, chunk: str, keep: int, markers: Sequence[str]) -> int | None:
    """End (in chunk) of the first final marker that starts inside the kept part (it may begin in `text`)."""
    if not markers:
        return None
    back = max(len(m) for m in markers) - 1
    window = (text[-back:] if back else "") + chunk
    lead = len(window) - len(chunk)
    low = window.lower()
    best = None
    for m in markers:
        at = low.find(m.lower(), max(0, lead - len(m) + 1))
        if at != -1 and at - lead < keep and (best is None or at < best[0]):
            best = (at, at + len(m) - lead)
    return best[1] if best else None


def _repeats(text: str, times: int, min_chars: int) -> bool:
    """True when `text` ends with one string of >= min_chars characters repeated `times` times in a row."""
    for p in range(min_chars, min(MAX_REPEAT_PERIOD, len(text) // times) + 1):
        unit = text[-p:]
        if all(text[len(text) - (k + 1) * p: len(text) - k * p] == unit for k in range(1, times)):
            return True
    return False


def open_pair(prompt: Prompt, teacher, student, cfg: CooperativeConfig, reencode: bool = False,
              render: Callable[[Prompt], str] | None = None) -> dict[str, Session]:
    """Both sides' sessions for one answer to `prompt`, each under its own chat template."""
    sessions = {}
    for side, lm in (("teacher", teacher), ("student", student)):
        temperature, top_p = cfg.sampling(side)
        sessions[side] = open_session(lm, prompt, temperature, top_p, cfg.seed, reencode, render)
    return sessions


def cooperate(prompt: Prompt, teacher, student, cfg: CooperativeConfig | None = None,
              predictor: BoundaryPredictor | None = None, reencode: bool = False,
              render: Callable[[Prompt], str] | None = None) -> CooperativeSample:
    """One cooperative answer to `prompt`; each model sees it under its own chat template.

    reencode=True re-encodes each model's whole prefix every turn (the slow baseline; same tokens when greedy).
    render: the chat template of a remote (OpenAI-compatible) model, which has none here.
    """
    cfg = cfg or CooperativeConfig()
    predictor = predictor or load_predictor(cfg.predictor, cfg.handoff)
    return run_turns(open_pair(prompt, teacher, student, cfg, reencode, render), cfg, predictor)


def cooperate_batch(prompts: Sequence[Prompt], teacher, student, cfg: CooperativeConfig | None = None,
                    predictor: BoundaryPredictor | None = None, render: Callable[[Prompt], str] | None = None
                    ) -> list[CooperativeSample]:
    """`cooperate` for several prompts decoded together: each side's turns of all of them batch (local models;
    remote ones step one answer at a time). Hold as many answers as fit in memory: each keeps both KV caches."""
    cfg = cfg or CooperativeConfig()
    predictor = predictor or load_predictor(cfg.predictor, cfg.handoff)
    return run_turns_together([open_pair(p, teacher, student, cfg, render=render) for p in prompts], cfg, predictor)


def cooperate_many(prompts: Sequence[Prompt], teacher, student, cfg: CooperativeConfig | None = None,
                   predictor: BoundaryPredictor | None = None, progress: bool = True, batch_size: int = 8,
                   **kwargs) -> list[CooperativeSample]:
    """`cooperate` over many prompts, `batch_size` answers decoded together (cooperate_batch), with a progress
    bar; batch_size=1 (or reencode=True) runs them one after another."""
    cfg = cfg or CooperativeConfig()
    predictor = predictor or load_predictor(cfg.predictor, cfg.handoff)
    bar = tqdm(total=len(prompts), desc="cooperative", unit="prompt", disable=not progress)
    out: list[CooperativeSample] = []
    step = 1 if batch_size <= 1 or kwargs.get("reencode") else batch_size
    for start in range(0, len(prompts), step):
        part = prompts[start : start + step]
        if step == 1:
            out.append(cooperate(part[0], teacher, student, cfg, predictor, **kwargs))
        else:
            out += cooperate_batch(part, teacher, student, cfg, predictor, render=kwargs.get("render"))
        bar.update(len(part))
    bar.close()
    return out
