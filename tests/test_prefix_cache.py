"""Prompt-prefix caching in batched local generation: the same greedy tokens as running every prompt in full,
with each shared prefix run through the model once."""
import pytest
import torch

from protege.models.base import GenerationConfig
from protege.models.local import LocalLM
from protege.models.prefix_cache import _lcp, prefilled_batch, shared_prefix_lengths
from tiny import INSTRUCTION, SEED_A, SEED_B

PROMPTS = [
    INSTRUCTION + SEED_A + "How many people live in Tokyo ?",
    INSTRUCTION + SEED_A + "What does NASA stand for ?",
    INSTRUCTION + SEED_B + "Who wrote Hamlet ?",
    INSTRUCTION + SEED_B + "a number , a count , a date .",
    INSTRUCTION + "Write one new , different example labelled .",
    "Text : Write one new example",  # shares nothing with the others: runs in full
]

# Exact token equality and transformers' static-cache path, both fp32 things: pinned on every CPU (under bf16 the
# static cache is not used at all, prefix_cache.prefilled_batch; test_precision.py covers bf16).
pytestmark = pytest.mark.precision("fp32")


@pytest.fixture(scope="module")
def sharp_lm(tiny_model_dir):
    """The tiny model with weights scaled up, so its next-token distributions are peaked (a near-uniform random
    model would let float noise flip greedy ties and test nothing)."""
    lm = LocalLM.from_dir(tiny_model_dir, batch_size=8)
    with torch.no_grad():
        for p in lm.model.parameters():
            p.mul_(6)
    return lm


def test_shared_prefix_lengths_take_the_longest_neighbour_and_leave_a_token():
    rows = [[1, 2, 3, 4, 5], [1, 2, 3, 9], [1, 2, 3, 4, 7], [8, 8], [1, 2, 3, 4, 5]]
    assert shared_prefix_lengths(rows, min_shared=2) == [4, 3, 4, 0, 4]
    assert shared_prefix_lengths(rows, min_shared=4) == [4, 0, 4, 0, 4]


@pytest.mark.parametrize("shared_decoding", [True, False], ids=["shared-prefix decoding", "transformers generate"])
def test_cached_generation_gives_the_same_tokens_as_full_prompts(sharp_lm, shared_decoding):
    config = GenerationConfig(max_new_tokens=12)
    sharp_lm.prefix_caching = False
    plain = sharp_lm.generate(PROMPTS, config)
    sharp_lm.prefix_caching, sharp_lm.shared_decoding = True, shared_decoding
    before = dict(sharp_lm.prompt_tokens)
    cached = sharp_lm.generate(PROMPTS, config)
    assert [g.text for g in cached] == [g.text for g in plain]
    assert [g.tokens_out for g in cached] == [g.tokens_out for g in plain]
    assert [g.tokens_in for g in cached] == [g.tokens_in for g in plain]
    assert sharp_lm.prompt_tokens["cached"] > before["cached"]
    assert len({g.text for g in cached}) > 1  # the rows really differ, so a mixed-up row would show
    sharp_lm.shared_decoding = True


def test_each_distinct_prefix_is_computed_once_and_nested_ones_are_sliced(sharp_lm):
    tok = sharp_lm.tokenizer
    rows = [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS[:5]]
    with torch.inference_mode():
        batch = prefilled_batch(sharp_lm.model, rows, tok.pad_token_id, max_new_tokens=4, min_shared=8)
    split = shared_prefix_lengths(rows, min_shared=8)
    assert split[-1] < min(split[:4])  # the instruction-only row shares only the instruction
    # the longer seed group runs in full; the other continues after the opening they share; the
    # instruction-only prefix is a slice of the first
    distinct = {tuple(r[:n]) for r, n in zip(rows, split)}
    first, second = sorted(distinct, key=len, reverse=True)[:2]
    common = _lcp(first, second)
    assert common >= len(tok(INSTRUCTION + "Here are examples .")["input_ids"]) - 1
    assert batch.computed_tokens == len(first) + len(second) - common
    assert batch.cached_tokens == sum(split)
    assert batch.cache.get_seq_length() == max(len(r) for r in rows) - 1  # all but the last token of each
    assert batch.cache.get_max_length() == batch.cache.get_seq_length() + 1 + 4
    assert batch.attention_mask.sum().item() == sum(len(r) for r in rows)
    assert batch.input_ids.shape[1] == batch.cache.get_seq_length() + 1


def test_rows_sharing_nothing_still_decode_as_full_prompts(sharp_lm):
    prompts = ["Paris is a location .", "Who wrote Hamlet ? a human , a person ."]
    config = GenerationConfig(max_new_tokens=10)
    sharp_lm.prefix_caching = False
    plain = sharp_lm.generate(prompts, config)
    sharp_lm.prefix_caching = True
    before = dict(sharp_lm.prompt_tokens)
    assert [g.text for g in sharp_lm.generate(prompts, config)] == [g.text for g in plain]
    assert sharp_lm.prompt_tokens["cached"] == before["cached"]  # nothing shared, nothing counted as saved


@pytest.mark.precision("fp32")
def test_label_scoring_in_groups_gives_the_same_scores_in_bounded_memory(tiny_model_dir):
    """Many labels after a long prompt are scored in groups of labels (the repeated KV cache bounded by
    score_slots) with the scores of one pass over all of them."""
    lm = LocalLM.from_dir(tiny_model_dir)
    prompts = ["Paris is a location . " * 8, "Who wrote Hamlet ?"]
    labels = [" a location", " a human , a person", " yes", " no", " Paris", " Hamlet is", " what", " who"]
    whole = lm.score_many(prompts, labels)
    lm.score_slots = 1  # one label at a time over the one cache, cropped after each
    grouped = lm.score_many(prompts, labels)
    lm.score_slots = 10 ** 9  # all at once again
    assert grouped == whole == lm.score_many(prompts, labels)


@pytest.mark.precision("fp32")
def test_a_long_shared_prompt_prefix_is_scored_once_with_the_plain_scores(tiny_model_dir):
    """Few-shot label scoring: the shots shared by every prompt run once and are kept for the next batch; the
    scores equal the plain path's (prefix caching off) up to float rounding, every label in one pass (a tree
    mask) or, without sdpa, one label at a time."""
    shots = "".join(f"Question : Is {i} even ? Answer : {'yes' if i % 2 == 0 else 'no'} . " for i in range(40))
    prompts = [shots + f"Question : Is {i} an even number ?" for i in range(3)]
    labels = [" yes", " no", " a location", " a human , a person"]
    lm = LocalLM.from_dir(tiny_model_dir)
    plain = LocalLM.from_dir(tiny_model_dir, prefix_caching=False)
    for model in (lm.model, plain.model):  # sharp attention, so a position off by one changes the scores
        for name, weight in model.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                weight.data *= 30
    assert len(lm.tokenizer(shots)["input_ids"]) > 256  # long enough for the shared path
    expected = plain.score_many(prompts, labels)
    got = lm.score_many(prompts, labels)
    assert torch.allclose(torch.tensor(got), torch.tensor(expected), atol=1e-4)
    assert lm._prefix_scorer.stats == {"prefix_runs": 1, "prefix_reused": 0}
    again = lm.score_many(prompts[1:], labels)
    assert torch.allclose(torch.tensor(again), torch.tensor(expected[1:]), atol=1e-4)
    assert lm._prefix_scorer.stats["prefix_reused"] == 1  # the next batch reused the kept prefix
    # without a custom-mask attention (eager), the labels run one at a time over the one cache instead
    lm.model.config._attn_implementation = "eager"
    lm.score_slots = 1
    looped = lm.score_many(prompts, labels)
    assert torch.allclose(torch.tensor(looped), torch.tensor(expected), atol=1e-4)
