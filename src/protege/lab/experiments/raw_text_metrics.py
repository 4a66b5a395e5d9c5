"""Held-out measures of a causal LM on raw-text blocks: per-token NLL, top-1 next-token accuracy, and line
completion (given the code before a line, greedy-complete the line; exact match after stripping).

    m = held_out_metrics(model, tokenizer, blocks, lines_per_block=4)

NLL is a mean over every predicted token; its 95% CI is a bootstrap over blocks (tokens within a block are not
independent). Line completion prompts start at line starts in the second half of each block, so each has at
least half a block of context; the completion must reproduce the line from its first non-space character.
"""
from __future__ import annotations

import numpy as np
import torch


@torch.inference_mode()
def block_stats(model, blocks: list[list[int]], batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per block: (summed NLL, correct top-1 predictions) over its len - 1 predicted tokens."""
    nll, correct = [], []
    for start in range(0, len(blocks), batch):
        ids = torch.tensor(blocks[start: start + batch])
        logits = model(input_ids=ids).logits[:, :-1].float()
        target = ids[:, 1:]
        logp = torch.log_softmax(logits, -1).gather(-1, target[..., None])[..., 0]
        nll += (-logp).sum(1).tolist()
        correct += (logits.argmax(-1) == target).sum(1).tolist()
    return np.array(nll), np.array(correct)


def line_prompts(tokenizer, blocks: list[list[int]], per_block: int) -> list[tuple[list[int], str]]:
    """(context token ids, the rest of the line) at up to `per_block` non-blank lines per block, from the
    second half on. The context is the block's text up to the line's first non-space character, tokenised
    afresh (a BPE token often spans a newline and the next line's indent, so token boundaries rarely fall at
    line starts)."""
    out = []
    for ids in blocks:
        text = tokenizer.decode(ids)
        found, pos = 0, text.find("\n", len(text) // 2)
        while pos != -1 and found < per_block:
            end = text.find("\n", pos + 1)
            if end == -1:
                break  # the block's last line may be cut short: never a target
            line = text[pos + 1: end]
            if line.strip():
                start = pos + 1 + len(line) - len(line.lstrip())
                context = tokenizer(text[:start], add_special_tokens=False)["input_ids"]
                out.append((context, line.strip()))
                found += 1
            pos = end
    return out


@torch.inference_mode()
def line_completion(model, tokenizer, prompts: list[tuple[list[int], str]], max_new_tokens: int = 24) -> np.ndarray:
    hits = []
    for context, line in prompts:
        out = model.generate(input_ids=torch.tensor([context]), attention_mask=torch.ones(1, len(context), dtype=torch.long),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        text = tokenizer.decode(out[0, len(context):])
        hits.append(float(text.split("\n", 1)[0].strip() == line))
    return np.array(hits)


def _boot(values_fn, n: int, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    stats = [values_fn(rng.integers(0, n, n)) for _ in range(resamples)]
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def paired_nll_delta(a: list[float], b: list[float]) -> tuple[float, tuple[float, float]]:
    """Mean per-token NLL of `a` minus `b` on the same blocks (equal-sized blocks), with a paired bootstrap CI
    over blocks: the test of one training run against another that the two separate CIs are too wide for."""
    diff = np.array(a) - np.array(b)
    return float(diff.mean()), _boot(lambda idx: diff[idx].mean(), len(diff))


def held_out_metrics(model, tokenizer, blocks: list[list[int]], lines_per_block: int = 4) -> dict:
    model.eval()
    nll, correct = block_stats(model, blocks)
    per_block = len(blocks[0]) - 1
    lines = line_completion(model, tokenizer, line_prompts(tokenizer, blocks, lines_per_block)) \
        if lines_per_block else np.array([])
    return {
        "nll": float(nll.sum() / (per_block * len(blocks))),
        "nll_ci": _boot(lambda idx: nll[idx].sum() / (per_block * len(idx)), len(blocks)),
        "block_nll": (nll / per_block).tolist(),  # per block, for paired comparisons (paired_nll_delta)
        "top1": float(correct.sum() / (per_block * len(blocks))),
        "top1_ci": _boot(lambda idx: correct[idx].sum() / (per_block * len(idx)), len(blocks)),
        "line_em": float(lines.mean()) if len(lines) else float("nan"),
        "line_em_ci": _boot(lambda idx: lines[idx].mean(), len(lines)) if len(lines) else (float("nan"),) * 2,
        "lines": int(len(lines)), "tokens": per_block * len(blocks),
    }
