"""Cooperative sessions under bf16 autocast, forced on every CPU: the hand-off still keeps each model's tokens
decoding to exactly the shared text (exact: it is about tokens, not numbers), and each session's KV cache holds
what a fresh bf16 forward pass over its tokens computes, within bf16's rounding (the fp32 twin of this check,
test_coop_sessions.py, holds to 1e-4)."""
import pytest
import torch

from protege.cooperative import CooperativeConfig, run_turns
from test_coop_sessions import KeepWords, sessions_for

pytestmark = pytest.mark.precision("bf16")


def _cache_error(s) -> float:
    """Largest gap between the session's cached keys/values and a fresh bf16 forward's, relative to the
    largest value in that layer."""
    with torch.inference_mode(), s.lm.autocast():
        ref = s.lm.model(input_ids=torch.tensor([s.ids[: s._cached]]), use_cache=True).past_key_values
    worst = 0.0
    for mine, theirs in zip(s._cache.layers, ref.layers):
        for a, b in ((mine.keys, theirs.keys), (mine.values, theirs.values)):
            worst = max(worst, float((a.float() - b.float()).abs().max() / b.float().abs().max()))
    return worst


def test_bf16_sessions_hand_off_exactly_and_cache_within_bf16_rounding(tiny_pair):
    cfg = CooperativeConfig(max_new_tokens=160, student_temperature=1.0, teacher_temperature=1.0,
                            final_markers=[], repeat_times=40)
    sessions = sessions_for(tiny_pair, cfg)
    sample = run_turns(sessions, cfg, KeepWords(2))
    assert sample.chars["student"] > 0 and sample.chars["teacher"] > 0 and sample.turns >= 10
    for s in sessions.values():
        assert s.lm.resolved_precision() == "bf16"
        assert s.text == sample.text
        assert s.tok.decode(s.answer_ids, clean_up_tokenization_spaces=False) == sample.text
        assert s._cache.get_seq_length() == s._cached <= len(s.ids)
        # bf16 keeps 8 significant bits (a step of 2^-8 = 0.004 of a value); measured on an AVX-512 BF16 CPU:
        # 0.0005 and 0.0009 of the layer's largest value. A stale or misplaced entry is off by the order of 1.
        assert _cache_error(s) < 0.01


def test_bf16_answers_decoded_together_hand_off_exactly_and_cache_within_bf16_rounding(tiny_pair):
    """The batched path (cooperative/batched.py) under bf16: each answer's tokens still decode to its text, and
    its own cache, split back out of the batch, holds a fresh bf16 forward's keys/values within bf16 rounding."""
    from protege.cooperative import LocalSession, run_turns_together

    teacher, student = tiny_pair
    cfg = CooperativeConfig(max_new_tokens=120, final_markers=[], repeat_times=40)
    prompts = [[{"role": "user", "content": q}] for q in ("What is 3 + 4 ?", "How many people live in Tokyo ?")]
    answers = [{side: LocalSession(lm, p, *cfg.sampling(side), cfg.seed)
                for side, lm in (("teacher", teacher), ("student", student))} for p in prompts]
    samples = run_turns_together(answers, cfg, KeepWords(2))
    for sessions, sample in zip(answers, samples):
        assert sample.turns >= 10
        for s in sessions.values():
            assert s.lm.resolved_precision() == "bf16"
            assert s.tok.decode(s.answer_ids, clean_up_tokenization_spaces=False) == sample.text
            assert s._cache.get_seq_length() == s._cached <= len(s.ids)
            assert _cache_error(s) < 0.01  # the same bound as one answer at a time (above)
