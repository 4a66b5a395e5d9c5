"""Many cooperative answers decoded together (cooperative/batched.py) give each answer what it gets alone: one
model's chunks of several sessions of different lengths batch into one forward per token, and each session's
own KV cache comes back holding exactly its sequence."""
import pytest

from protege.cooperative import (CooperativeConfig, LocalSession, cooperate_many, run_turns, run_turns_together,
                                 step_together)

from test_coop_sessions import KeepWords, assert_cache_holds_the_sequence, check_sessions_hold_the_text

PROMPTS = [[{"role": "user", "content": q}] for q in (
    "How many people live in Tokyo ? Let's see , a number .",
    "What is 3 + 4 ?",
    "Write a function add ( a , b ) that returns the total count of x_1 and more words to make it longer .",
)]


def pairs(tiny_pair, cfg, prompts=PROMPTS):
    teacher, student = tiny_pair
    return [{side: LocalSession(lm, p, *cfg.sampling(side), cfg.seed) for side, lm in
             (("teacher", teacher), ("student", student))} for p in prompts]


@pytest.fixture(params=["own layers", "transformers"])
def layout(request, tiny_pair, monkeypatch):
    """Both ways a batch runs: protege's own decoder layers (Llama-family models, the tiny pair's) and
    transformers' forward over left-padded caches (every other model), forced here by hiding the first."""
    from protege.models import shared_prefix_decode

    assert shared_prefix_decode.shared_decoding_supported(tiny_pair[0].model)
    if request.param == "transformers":
        monkeypatch.setattr(shared_prefix_decode, "shared_decoding_supported", lambda model: False)
    return request.param


@pytest.mark.precision("fp32")  # exact equality: bf16 rounding legitimately moves near-tied greedy choices
def test_sessions_of_different_lengths_step_together_as_each_steps_alone(tiny_pair, layout):
    teacher, _ = tiny_pair
    together = [LocalSession(teacher, p) for p in PROMPTS]
    alone = [LocalSession(teacher, p) for p in PROMPTS]
    budgets = [[5, 2, 7], [3, 8, 1], [6, 6, 6]]
    foreign = [" 3 + 4 = 7", "", " Tokyo and more"]
    for turn, n in enumerate(budgets):
        got = step_together(together, n)
        want = [s.step(k) for s, k in zip(alone, n)]
        assert got == want
        # each cache holds what the session alone ran, no more (a row that stopped early runs nothing further)
        assert [s._cached for s in together] == [s._cached for s in alone]
        for i, (a, b) in enumerate(zip(together, alone)):
            kept = want[i].text[: len(want[i].text) // 2] if (turn + i) % 2 else want[i].text
            for s in (a, b):
                s.append(kept)
                s.append(foreign[(turn + i) % 3])
    for a, b in zip(together, alone):
        assert a.ids == b.ids
        assert_cache_holds_the_sequence(a)
    assert together[0].stats["rollbacks"] > 0  # cuts inside its own proposal rolled its own cache back


@pytest.mark.precision("fp32")
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_answers_decoded_together_equal_answers_decoded_one_at_a_time(tiny_pair, temperature, layout):
    cfg = CooperativeConfig(max_new_tokens=120, final_markers=[], repeat_times=40, student_temperature=temperature,
                            teacher_temperature=temperature)
    batch, single = pairs(tiny_pair, cfg), pairs(tiny_pair, cfg)
    together = run_turns_together(batch, cfg, KeepWords(2))
    alone = [run_turns(s, cfg, KeepWords(2)) for s in single]
    assert [s.text for s in together] == [s.text for s in alone]
    assert [(s.spans, s.tokens, s.turns, s.stop) for s in together] == [(s.spans, s.tokens, s.turns, s.stop)
                                                                      for s in alone]
    for sessions, sample in zip(batch, together):
        check_sessions_hold_the_text(sessions, sample.text)


@pytest.mark.precision("fp32")
def test_cooperate_many_batches_and_keeps_prompt_order(tiny_pair):
    teacher, student = tiny_pair
    cfg = CooperativeConfig(max_new_tokens=60, final_markers=[], repeat_times=40, student_temperature=1.0,
                            teacher_temperature=1.0)
    batched = cooperate_many(PROMPTS, teacher, student, cfg, KeepWords(3), progress=False, batch_size=2)
    one_by_one = cooperate_many(PROMPTS, teacher, student, cfg, KeepWords(3), progress=False, batch_size=1)
    assert [s.text for s in batched] == [s.text for s in one_by_one]
    # in prompt order, not shuffled by the batches: each answer ran its own prompt's tokens (the prompts' lengths
    # differ; the random tiny models write much the same text whatever the prompt)
    fed = [[s.session_stats[side]["fed"] for side in ("teacher", "student")] for s in batched]
    assert fed == [[s.session_stats[side]["fed"] for side in ("teacher", "student")] for s in one_by_one]
    assert len({tuple(f) for f in fed}) == len(PROMPTS)
