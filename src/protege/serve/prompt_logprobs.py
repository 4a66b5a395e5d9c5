"""Prompt log-probabilities for `protege serve` (echo + logprobs + max_tokens 0, as vLLM serves them).

    rows = score_prompts(lm, ["Paris is"], top_k=5)
    rows[0]["ids"], rows[0]["logprobs"][1], rows[0]["top"][1]   # token ids; log p(token 1 | token 0); top-5 there

Position t's distribution is the model's prediction of token t from the tokens before it (temperature 1, the
full vocabulary normalised), so `top[t]` is what a distillation cache stores for the logits at t - 1. The first
token has no prediction (None), as in the OpenAI format.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def prompt_ids(lm, prompt) -> list[int]:
    """Token ids as sent, or a string tokenized the way the model reads raw text (its special tokens added)."""
    return list(prompt) if isinstance(prompt, list) else lm.tokenizer(prompt)["input_ids"]


@torch.inference_mode()
def score_prompts(lm, prompts: list, top_k: int) -> list[dict]:
    rows = []
    for prompt in prompts:
        ids = prompt_ids(lm, prompt)
        with lm.autocast():
            logits = lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0, :-1]
        logp = F.log_softmax(logits.float(), dim=-1)
        actual = logp.gather(-1, torch.tensor(ids[1:], device=logp.device)[:, None])[:, 0]
        top = logp.topk(top_k, dim=-1) if top_k else None
        rows.append({
            "ids": ids,
            "logprobs": [None] + [float(x) for x in actual.tolist()],
            "top": [None] + ([list(zip(i, v)) for i, v in zip(top.indices.tolist(), top.values.tolist())]
                             if top is not None else [[] for _ in ids[1:]]),
        })
    return rows
