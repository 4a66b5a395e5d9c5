"""Decoding over shared prompt prefixes (cascade attention): the same tokens as transformers' generate running each
prompt alone, for grouped-query Llama and Qwen2 models, with end of turn, stop strings, sampling and int8."""
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from protege.models import shared_prefix_decode as spd
from protege.models.base import GenerationConfig
from protege.models.local import LocalLM
from tiny import INSTRUCTION, SEED_A, SEED_B

PROMPTS = [
    INSTRUCTION + SEED_A + "How many people live in Tokyo ?",
    INSTRUCTION + SEED_B + "Who wrote Hamlet ?",
    INSTRUCTION + SEED_A + "What does NASA stand for ?",
    INSTRUCTION + SEED_B + "a number , a count , a date .",
    INSTRUCTION + "Write one new , different example labelled .",  # shares only the instruction (nested prefix)
    "Text : Write one new example",  # shares nothing: all its tokens are its own
    INSTRUCTION + SEED_A + "Who wrote Hamlet ? a human , a person . What is the capital of France ?",  # longer
]

# These tests compare tokens for exact equality, which holds in one precision: both sides run in fp32 on every
# CPU (on a bf16 CPU auto would run both in bf16, whose rounding differs between the batched cascade and the
# per-prompt reference). The bf16 paths have their own tests below and in test_precision.py.
pytestmark = pytest.mark.precision("fp32")


def _lm(tiny_model_dir, family: str, seed: int = 0) -> LocalLM:
    """A 2-layer model with 4 query heads reading 2 key/value heads, weights scaled up so greedy choices are
    clear-cut (float noise must not flip a near-tie and hide or fake a difference)."""
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    shape = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**shape)) if family == "llama" else Qwen2ForCausalLM(Qwen2Config(**shape))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5)
    return LocalLM(f"tiny-{family}", model, tok, batch_size=16)


def _alone(lm: LocalLM, prompts, config: GenerationConfig) -> list:
    """The reference: transformers' generate on each prompt by itself, no cache tricks, no padding."""
    lm.prefix_caching, lm.shared_decoding, lm.batch_size = False, False, 1
    try:
        return lm.generate(prompts, config)
    finally:
        lm.prefix_caching, lm.shared_decoding, lm.batch_size = True, True, 16


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_greedy_tokens_match_generate_on_each_prompt_alone(tiny_model_dir, family):
    lm = _lm(tiny_model_dir, family)
    assert lm.shared_decoding
    config = GenerationConfig(max_new_tokens=14)
    reference = _alone(lm, PROMPTS, config)
    before = dict(lm.prompt_tokens)
    shared = lm.generate(PROMPTS, config)
    assert [g.text for g in shared] == [g.text for g in reference]
    assert [g.tokens_out for g in shared] == [g.tokens_out for g in reference]
    assert len({g.text for g in shared}) > 3  # the rows really differ, so a row mixed up with another would show
    assert lm.prompt_tokens["cached"] > before["cached"]


def test_one_prefix_group_with_many_rows_and_long_own_parts(tiny_model_dir):
    """Every row in one group; own parts of very different lengths (several prefill chunks)."""
    lm = _lm(tiny_model_dir, "llama", seed=1)
    prompts = [INSTRUCTION + SEED_A + " ".join(["Paris is a location ."] * k) for k in range(1, 9)]
    config = GenerationConfig(max_new_tokens=10)
    assert [g.text for g in lm.generate(prompts, config)] == [g.text for g in _alone(lm, prompts, config)]


def test_rows_ending_early_keep_their_tokens_and_leave_the_others_unchanged(tiny_model_dir):
    """A row that writes end of turn stops there; finished rows first ride along, then are dropped from the
    batch (compaction), and neither may change another row's tokens."""
    lm = _lm(tiny_model_dir, "llama", seed=2)
    rows = [lm.tokenizer(lm.render(p), add_special_tokens=False)["input_ids"] for p in PROMPTS]
    with torch.inference_mode():
        full = spd.decode(lm.model, rows, spd.Sampling(max_new_tokens=16, eos_ids=set())).tokens
    # an end-of-turn id that some rows write early and others never: the test's own "eos"
    counts = {t: sum(t in r[:8] for r in full) for r in full for t in r[:8]}
    eos = next(t for t, n in sorted(counts.items(), key=lambda kv: -kv[1]) if 1 < n < len(full) - 1)
    with torch.inference_mode():
        cut = spd.decode(lm.model, rows, spd.Sampling(max_new_tokens=16, eos_ids={eos})).tokens
    for whole, short in zip(full, cut):
        assert short == (whole[: whole.index(eos)] if eos in whole else whole)
    assert sum(eos in r for r in full) >= 2


def test_stop_strings_match_generate(tiny_model_dir):
    lm = _lm(tiny_model_dir, "llama", seed=3)
    plain = lm.generate(PROMPTS, GenerationConfig(max_new_tokens=16))
    stop = next(g.text[3:5] for g in plain if len(g.text) > 6)  # a string some row really writes
    config = GenerationConfig(max_new_tokens=16, stop=[stop])
    reference, shared = _alone(lm, PROMPTS, config), lm.generate(PROMPTS, config)
    assert [g.text for g in shared] == [g.text for g in reference]
    assert any(len(g.text) < len(p.text) for g, p in zip(shared, plain))  # some row really stopped early


def test_a_stop_pattern_ends_rows_the_same_way_in_both_decoders(tiny_model_dir):
    """GenerationConfig.stop_pattern (a code answer's closed block): a row ends as soon as its new text matches,
    in the shared decoder and in transformers' generate (a StoppingCriteria), keeping the text written so far."""
    import re

    lm = _lm(tiny_model_dir, "llama", seed=3)
    plain = lm.generate(PROMPTS, GenerationConfig(max_new_tokens=16))
    long = next(g.text for g in plain if len(g.text) > 8)
    pattern = re.escape(long[2]) + ".{2}" + re.escape(long[5])  # spans several tokens: a regex, not a stop string
    config = GenerationConfig(max_new_tokens=16, stop_pattern=pattern)
    reference, shared = _alone(lm, PROMPTS, config), lm.generate(PROMPTS, config)
    assert [g.text for g in shared] == [g.text for g in reference]
    for g, p in zip(shared, plain):
        assert p.text.startswith(g.text)  # nothing is cut from the text: decoding just ends there
        if g.tokens_out < p.tokens_out:  # ended early: right after its first match, not later
            assert re.search(pattern, g.text) and not re.search(pattern, lm.tokenizer.decode(
                lm.tokenizer(g.text, add_special_tokens=False)["input_ids"][:-1]))
    assert sum(g.tokens_out for g in shared) < sum(p.tokens_out for p in plain)


def test_sampling_is_seeded_and_top_k_one_is_greedy(tiny_model_dir):
    lm = _lm(tiny_model_dir, "llama", seed=4)
    with torch.no_grad():
        for p in lm.model.parameters():
            p.div_(5)  # soft distributions, so samples differ between seeds
    sampled = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=7)
    first, again = lm.generate(PROMPTS, sampled), lm.generate(PROMPTS, sampled)
    other = lm.generate(PROMPTS, GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=8))
    assert [g.text for g in first] == [g.text for g in again]
    assert [g.text for g in first] != [g.text for g in other]
    rows = [lm.tokenizer(lm.render(p), add_special_tokens=False)["input_ids"] for p in PROMPTS]
    with torch.inference_mode():
        greedy = spd.decode(lm.model, rows, spd.Sampling(max_new_tokens=8, eos_ids=set())).tokens
        top1 = spd.decode(lm.model, rows, spd.Sampling(max_new_tokens=8, eos_ids=set(), temperature=0.7, top_k=1,
                                                       seed=3)).tokens
    assert top1 == greedy


def test_int8_teacher_decodes_through_its_own_layers(tiny_model_dir):
    """The quantised Linear layers run in place of the float ones. Dynamic int8 scales activations over the whole
    batch, so a row's tokens depend on its batch-mates; one prompt at a time, both paths run the same numbers."""
    from protege.models.quantize import int8_dynamic

    lm = _lm(tiny_model_dir, "llama", seed=5)
    lm.model = int8_dynamic(lm.model)
    assert lm.shared_decoding
    config = GenerationConfig(max_new_tokens=10)
    for prompt in PROMPTS[:3]:
        assert lm.generate([prompt], config)[0].text == _alone(lm, [prompt], config)[0].text


def test_the_portable_attention_equals_the_cpu_kernel():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 7, 8), torch.randn(3, 2, 7, 8)
    bias = torch.zeros(3, 1, 5, 7).masked_fill_(torch.rand(3, 1, 5, 7) < 0.3, float("-inf"))
    bias[..., 0] = 0  # every query sees at least one key
    fused = spd._partial(q, k, v, 0.4, bias)
    portable = spd._partial_math(q, k, v, 0.4, bias)
    for a, b in zip(fused, portable):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_prefill_chunks_group_similar_lengths_within_their_limits():
    counts = [8, 9, 8, 300, 310, 10, 600]
    chunks = spd.prefill_chunks(counts, slack=1.25, free=32, most=2048)
    assert sorted(i for c in chunks for i in c) == list(range(len(counts)))
    assert [sorted(c) for c in chunks] == [[0, 1, 2, 5], [3, 4], [6]]
    assert spd.prefill_chunks([100] * 30, most=1000) == [list(range(10)), list(range(10, 20)), list(range(20, 30))]


def test_unsupported_models_fall_back_to_generate(tiny_model_dir):
    lm = _lm(tiny_model_dir, "llama")
    lm.model.config.model_type = "somethingelse"
    assert not spd.shared_decoding_supported(lm.model)
    gen_config = lm.model.generation_config
    gen_config.update(max_new_tokens=4, repetition_penalty=1.3)
    assert spd.sampling_from(gen_config, seed=0) is None  # a setting only generate implements


def test_prefixes_of_similar_length_share_an_attention_call():
    assert spd.length_banks([10, 12, 13, 20, 21, 40], ratio=1.3) == [[0, 1, 2], [3, 4], [5]]
    assert spd.length_banks([], ratio=1.3) == []


def test_the_test_prompts_exercise_several_banks_and_a_row_without_prefix(tiny_model_dir):
    """The greedy-equality tests above cover the merge across banks only if their prompts make several."""
    from protege.models.prefix_cache import shared_prefix_lengths

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    split = shared_prefix_lengths(rows)
    lengths = sorted({n for n in split if n})
    assert len(spd.length_banks(lengths)) >= 2 and 0 in split


@pytest.mark.precision("bf16")
def test_every_decoder_runs_under_bf16_autocast(tiny_model_dir):
    """AMX CPUs and GPUs generate under bf16 autocast, where projections come out bf16 and caches are fp32 (forced
    here on any CPU). The caches must take the values in their own dtype; transformers' static cache cannot, so
    that path falls back to full prompts."""
    lm = _lm(tiny_model_dir, "llama", seed=6)
    config = GenerationConfig(max_new_tokens=8)
    texts = {}
    for label, caching, shared in (("plain", False, False), ("prefix", True, False), ("shared", True, True)):
        lm.prefix_caching, lm.shared_decoding = caching, shared
        texts[label] = [g.text for g in lm.generate(PROMPTS, config)]
    assert texts["prefix"] == texts["plain"]  # the fallback
    # Tokens are not compared: bf16 rounding moves a random model's greedy choices in both paths (against fp32,
    # each path's rows diverged after 1 to 18 tokens, alike); the fp32 tests above check the decoder's result.
    assert all(texts["shared"]) and len(texts["shared"]) == len(PROMPTS)
