"""Continuation scoring with a shared prompt cache equals scoring each full sequence from scratch."""
import torch

from protege.models.local import LocalLM


def test_cached_scoring_matches_full_reencoding(tiny_model_dir):
    lm = LocalLM.from_dir(tiny_model_dir, name="tiny")
    chat = [{"role": "user", "content": "Is 4 even ?"}]
    conts = ["yes", "no", "abbreviation"]
    fast = lm.score_continuations(chat, conts)
    tok = lm.tokenizer
    prefix = tok(lm.render(chat), add_special_tokens=False)["input_ids"]
    for cont, got in zip(conts, fast):
        full = tok(lm.render(chat) + cont + tok.eos_token, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(torch.tensor([full])).logits[0].float(), -1)
        want = sum(logp[i - 1, full[i]].item() for i in range(len(prefix), len(full)))
        assert abs(got - want) < 0.05, (cont, got, want)  # bf16 autocast where the CPU has it


def test_batched_scoring_of_prompts_of_different_lengths_matches_one_at_a_time(tiny_model_dir):
    lm = LocalLM.from_dir(tiny_model_dir, name="tiny")
    prompts = [[{"role": "user", "content": "Is 4 even ?"}],
               [{"role": "user", "content": "Classify the question by the type of answer it asks for . Is 7 even ?"}],
               "plain text prompt"]
    conts = ["yes", "no", "a number"]
    batched = lm.score_many(prompts, conts)
    for prompt, row in zip(prompts, batched):
        single = lm.score_many([prompt], conts)[0]
        assert row == __import__("pytest").approx(single, abs=0.05)
