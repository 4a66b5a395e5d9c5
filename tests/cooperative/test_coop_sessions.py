"""Incremental sessions on two tiny real models with different tokenizers: the hand-off keeps every model's
token sequence decoding to exactly the shared text, KV-cache reuse gives the same tokens as re-encoding the
whole prefix every turn, and the remote (completions) session sends prompt + answer so far."""
import random
import re

import pytest

from protege.cooperative import CooperativeConfig, LocalSession, cooperate, open_session, run_turns
from protege.models.base import Generation

PROMPT = [{"role": "user", "content": "How many people live in Tokyo ? Let's see , a number ."}]


class KeepWords:
    """Keeps the first n whitespace-separated words of every chunk: cuts that do not depend on random text."""

    def __init__(self, n):
        self.n = n

    def cut(self, context, chunk, side):
        words = list(re.finditer(r"\S+", chunk))
        return words[self.n - 1].end() if len(words) >= self.n else len(chunk)


def sessions_for(pair, cfg, reencode=False):
    teacher, student = pair
    return {side: open_session(lm, PROMPT, *cfg.sampling(side), cfg.seed, reencode)
            for side, lm in (("teacher", teacher), ("student", student))}


def assert_cache_holds_the_sequence(s):
    """The cache holds the keys/values of exactly ids[:_cached], as a fresh forward pass computes them."""
    import torch

    assert s._cache.get_seq_length() == s._cached <= len(s.ids)
    with torch.inference_mode():
        ref = s.lm.model(input_ids=torch.tensor([s.ids[: s._cached]]), use_cache=True).past_key_values
    for mine, theirs in zip(s._cache.layers, ref.layers):
        torch.testing.assert_close(mine.keys, theirs.keys, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(mine.values, theirs.values, rtol=1e-4, atol=1e-5)


def check_sessions_hold_the_text(sessions, text):
    for s in sessions.values():
        assert s.text == text
        assert s.tok.decode(s.answer_ids, clean_up_tokenization_spaces=False) == text
        assert s.ids[: len(s.prompt_ids)] == s.prompt_ids
        assert_cache_holds_the_sequence(s)


@pytest.mark.precision("fp32")  # exact equality: bf16 rounding legitimately moves near-tied greedy choices
def test_cross_tokenizer_hand_off_keeps_each_sequence_equal_to_the_shared_text(tiny_pair):
    teacher, student = tiny_pair
    probe = "Well , so 3 + 4 = 7"
    assert teacher.tokenizer.tokenize(probe) != student.tokenizer.tokenize(probe)  # really different tokenizers
    cfg = CooperativeConfig(max_new_tokens=160, student_temperature=1.0, teacher_temperature=1.0,
                            final_markers=[], repeat_times=40)
    sessions = sessions_for(tiny_pair, cfg)
    sample = run_turns(sessions, cfg, KeepWords(2))
    assert "".join(s["text"] for s in sample.spans) == sample.text
    assert sample.chars["student"] > 0 and sample.chars["teacher"] > 0 and sample.turns >= 10
    assert all(a["by"] != b["by"] for a, b in zip(sample.spans, sample.spans[1:]))  # merged
    check_sessions_hold_the_text(sessions, sample.text)
    # each model encoded only what it did not already hold: far fewer tokens than re-reading every turn
    for s in sessions.values():
        assert s.stats["fed"] < len(s.prompt_ids) + 2 * len(s.answer_ids) + sample.turns


@pytest.mark.precision("fp32")  # exact equality: bf16 rounding legitimately moves near-tied greedy choices
@pytest.mark.parametrize("keep", [1, 3])
def test_kv_cache_reuse_gives_exactly_the_tokens_of_reencoding_every_turn(tiny_pair, keep):
    cfg = CooperativeConfig(max_new_tokens=200, final_markers=[], repeat_times=40)  # greedy
    cached, fresh = sessions_for(tiny_pair, cfg), sessions_for(tiny_pair, cfg, reencode=True)
    a, b = run_turns(cached, cfg, KeepWords(keep)), run_turns(fresh, cfg, KeepWords(keep))
    assert a.turns >= 20 and a.spans == b.spans and a.stop == b.stop
    for side in ("teacher", "student"):
        assert cached[side].ids == fresh[side].ids
        assert cached[side].stats["fed"] * 3 < fresh[side].stats["fed"]  # and it did reuse the cache
    check_sessions_hold_the_text(cached, a.text)


@pytest.mark.precision("fp32")  # exact equality: bf16 rounding legitimately moves near-tied greedy choices
def test_cuts_inside_tokens_roll_the_cache_back_correctly(tiny_pair):
    """Arbitrary character cuts of the own proposal (mid-token), foreign text, empty turns: the cached session
    proposes exactly what a session re-encoding everything proposes, turn after turn."""
    teacher, _ = tiny_pair
    rng = random.Random(0)
    cached, fresh = LocalSession(teacher, PROMPT), LocalSession(teacher, PROMPT, reencode=True)
    for turn in range(25):
        n = rng.randint(1, 8)
        assert cached.step(n) == (x := fresh.step(n))
        kept = x.text[: rng.randint(0, len(x.text))] if turn % 3 else ""  # a character cut, or nothing
        foreign = rng.choice(["", " 3 + 4 = 7", " Tokyo", "é ∑ 😀", " ?"])
        for s in (cached, fresh):
            s.append(kept)
            s.append(foreign)
    assert cached.ids == fresh.ids and cached.stats["rollbacks"] > 0
    assert_cache_holds_the_sequence(cached)


@pytest.mark.precision("fp32")  # exact equality: bf16 rounding legitimately moves near-tied greedy choices
def test_a_sequence_that_stops_decoding_to_the_text_is_retokenised(tiny_pair):
    """Two byte tokens that form "é" together were kept as two separate "�": the sequence no longer decodes to
    the shared text, so the answer is re-tokenised and the cache cut back to the common prefix."""
    teacher, _ = tiny_pair
    s = LocalSession(teacher, PROMPT)
    s.step(3)
    s.append(" a")
    lead, cont = teacher.tokenizer.convert_tokens_to_ids(["Ã", "©"])  # byte-level tokens of 0xC3, 0xA9
    s._proposal = [lead]  # as if the model had proposed the lone lead byte: decodes to "�"
    s.append("\ufffd")
    assert s.stats["retokenized"] == 0
    s.step(1)  # puts the lone byte into the cache (the proposal itself is replaced below)
    s._proposal = [cont]  # ...and then the continuation byte: "é" with the previous one, "�" on its own
    s.append("\ufffd")
    assert s.stats["retokenized"] == 1 and s.text == " a\ufffd\ufffd"
    assert teacher.tokenizer.decode(s.answer_ids) == s.text
    assert_cache_holds_the_sequence(s)
    fresh = LocalSession(teacher, PROMPT, reencode=True)
    fresh.append(" a\ufffd\ufffd")
    assert s.step(6).text == fresh.step(6).text  # the cache cut back holds what the sequence says


class StubRemote:
    """An OpenAI-compatible LM as OpenAILM looks from outside: generate(prompts, config), no tokenizer."""

    name = "stub"

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def generate(self, prompts, config):
        self.calls.append((prompts[0], config.max_new_tokens))
        text, n = self.answers.pop(0)
        return [Generation(text=text, tokens_in=len(prompts[0]) // 4, tokens_out=n)]


def test_remote_session_sends_prompt_and_answer_so_far_and_reads_a_short_answer_as_the_end():
    teacher = StubRemote([(" 3 + 4 = 7. So", 10), (" = 7", 2)])
    student = StubRemote([("Okay, so the", 5), (" Right. ", 5)])
    cfg = CooperativeConfig()
    sample = cooperate("Q: 3 + 4?\nA:", teacher, student, cfg)
    assert sample.text == "Okay, so 3 + 4 = 7. Right. = 7" and sample.stop == "eos"
    assert student.calls == [("Q: 3 + 4?\nA:", 5), ("Q: 3 + 4?\nA:Okay, so 3 + 4 = 7.", 5)]
    assert teacher.calls[1] == ("Q: 3 + 4?\nA:Okay, so 3 + 4 = 7. Right.", 10)
    with pytest.raises(ValueError, match="render="):
        cooperate(PROMPT, teacher, student, cfg)
    s = open_session(StubRemote([]), PROMPT, render=lambda chat: "<rendered>")
    assert s.prompt_text == "<rendered>"


def test_cooperate_on_tiny_models_with_the_lexical_predictor(tiny_pair):
    from protege.cooperative import cooperate_many

    teacher, student = tiny_pair
    cfg = CooperativeConfig(max_new_tokens=60, student_temperature=1.0, teacher_temperature=1.0)
    samples = cooperate_many([PROMPT, "Plain text prompt ."], teacher, student, cfg, progress=False)
    for s in samples:
        assert "".join(x["text"] for x in s.spans) == s.text
        assert s.stop in ("eos", "max_new_tokens", "max_turns", "repetition")
        assert sum(s.tokens.values()) <= cfg.max_new_tokens
        assert set(s.to_dict()) >= {"text", "spans", "tokens", "turns", "stop"}
