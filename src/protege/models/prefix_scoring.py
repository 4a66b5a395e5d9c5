"""Label scoring over a long shared prompt prefix, computed once and kept between calls.

    scorer = PrefixScorer()                                  # one per LocalLM (local.py holds it)
    scores = scorer.score(model, rows, conts, pad_id, slots)   # None: use the plain path

A few-shot prompt is mostly the same text for every test item (the instruction and the shots; Banking77 with one
shot per label: ~2,700 of ~2,800 tokens). The plain path runs all of it for every item. Here the prefix the
batch's prompts share runs once, is kept (one entry) and reused by the next batches while their prompts start
with it; each prompt's own tokens but its last run over it one row at a time, and the rows are laid out
left-padded as prefilled_batch lays them out for generation (prefix_cache.py). The scoring pass then runs each
row's last prompt token followed by the continuation: its logits at 0 score the continuation's first token, at t
the next. Positions are the unsplit prompt's, so scores equal the plain path's up to float rounding (tested).
Models whose caches drop positions (sliding windows) keep the plain path.
"""
from __future__ import annotations

import torch

from protege.models.prefix_cache import _lcp, caching_supported, left_padded, prefix_states, row_states

MIN_PREFIX = 256  # shared tokens below which the plain path is as fast


class PrefixScorer:
    def __init__(self) -> None:
        self.held: tuple[tuple[int, ...], list] | None = None  # the last shared prefix and its per-layer (k, v)
        self.stats = {"prefix_runs": 0, "prefix_reused": 0}

    def _prefix_states(self, model, prefix: tuple[int, ...]) -> list:
        if self.held is not None:
            held, states = self.held
            shared = _lcp(held, prefix)
            if shared == len(prefix):
                self.stats["prefix_reused"] += 1
                return [(k[:, :, :shared], v[:, :, :shared]) for k, v in states]
        states = prefix_states(model, [prefix], model.device)[0][prefix]
        self.held = (prefix, states)
        self.stats["prefix_runs"] += 1
        return states

    def score(self, model, rows: list[list[int]], conts: list[list[list[int]]], pad_id: int,
              slots: int) -> list[list[float]] | None:
        from transformers import DynamicCache

        if not caching_supported(model) or any(len(r) < 2 for r in rows):
            return None
        shared = min(len(r) for r in rows) - 1
        for row in rows[1:]:
            shared = min(shared, _lcp(rows[0], row))
        if shared < MIN_PREFIX:
            return None
        device = model.device
        prefix = self._prefix_states(model, tuple(rows[0][:shared]))
        per_row = [row_states(model, row, prefix, device) for row in rows]
        n, k = len(rows), len(conts[0])
        width = max(len(r) - 1 for r in rows)
        layout = left_padded(per_row, rows, width)
        del per_row
        mask = torch.zeros((n, width), dtype=torch.long, device=device)
        for i, row in enumerate(rows):
            mask[i, width + 1 - len(row):] = 1
        if tree_supported(model):
            return _tree_scores(model, rows, conts, layout, mask, pad_id)
        steps = 1 + max(len(c) for row in conts for c in row)  # the last prompt token, then the continuation
        group = k if n * k * width <= slots else 1
        scores = [[0.0] * k for _ in range(n)]
        for start in range(0, k, group):
            labels = range(start, min(k, start + group))
            g = len(labels)
            cache = DynamicCache(config=model.config)
            for layer, (keys, values) in enumerate(layout):
                cache.update(keys.repeat_interleave(g, 0) if g > 1 else keys,
                             values.repeat_interleave(g, 0) if g > 1 else values, layer)
            ids = torch.full((n * g, steps), pad_id, dtype=torch.long)
            positions = torch.zeros((n * g, steps), dtype=torch.long)
            for i, row in enumerate(rows):
                for jj, j in enumerate(labels):
                    seq = [row[-1]] + conts[i][j]
                    ids[i * g + jj, : len(seq)] = torch.tensor(seq)
                    positions[i * g + jj] = len(row) - 1 + torch.arange(steps)
            full_mask = torch.cat([mask.repeat_interleave(g, 0), torch.ones((n * g, steps), dtype=torch.long,
                                                                               device=device)], 1)
            logits = model(input_ids=ids.to(device), attention_mask=full_mask, position_ids=positions.to(device),
                           past_key_values=cache).logits
            logp = torch.log_softmax(logits.float(), -1)
            del cache, logits
            for i in range(n):
                for jj, j in enumerate(labels):
                    c, total = conts[i][j], 0.0
                    for t in range(len(c)):
                        total += logp[i * g + jj, t, c[t]].item()
                    scores[i][j] = total
        return scores


def tree_supported(model) -> bool:
    """One pass for every label needs a custom 4D mask (sdpa takes it as given) and a plain output layer."""
    cfg = model.config
    return (getattr(cfg, "_attn_implementation", None) == "sdpa"
            and getattr(cfg, "final_logit_softcapping", None) is None)


def _tree_scores(model, rows, conts, layout, mask, pad_id: int, chunk: int = 256) -> list[list[float]]:
    """Every label of every row in one forward pass over the rows' cached prompts: each label's block (the
    row's last prompt token, then the label) sees the prompt and its own earlier tokens, never another label's
    (a tree of continuations, as speculative decoding verifies draft trees). The output layer then runs only on
    the positions that score a token, `chunk` at a time, so no [rows, blocks, vocabulary] tensor is made."""
    from transformers import DynamicCache

    device = model.device
    n, width = mask.shape
    blocks = [[[row[-1]] + c for c in conts[i]] for i, row in enumerate(rows)]
    q = max(sum(len(b) for b in row_blocks) for row_blocks in blocks)
    ids = torch.full((n, q), pad_id, dtype=torch.long)
    positions = torch.zeros((n, q), dtype=torch.long)
    allowed = torch.zeros((n, 1, q, width + q), dtype=torch.bool)
    allowed[:, 0, :, :width] = mask.bool().cpu()[:, None, :]
    wanted = []  # (row, query position, token it scores, label)
    for i, row in enumerate(rows):
        at = 0
        for j, block in enumerate(blocks[i]):
            span = len(block)
            ids[i, at:at + span] = torch.tensor(block)
            positions[i, at:at + span] = len(row) - 1 + torch.arange(span)
            allowed[i, 0, at:at + span, width + at:width + at + span] = torch.ones(span, span).tril().bool()
            wanted += [(i, at + t, block[t + 1], j) for t in range(span - 1)]
            at += span
        if at < q:  # padding queries see only themselves, so no row of the mask is empty
            allowed[i, 0, torch.arange(at, q), width + torch.arange(at, q)] = True
    cache = DynamicCache(config=model.config)
    for layer, (keys, values) in enumerate(layout):
        cache.update(keys, values, layer)
    hidden = model.base_model(input_ids=ids.to(device), attention_mask=allowed.to(device),
                              position_ids=positions.to(device), past_key_values=cache, use_cache=True)
    hidden = hidden.last_hidden_state
    head = model.get_output_embeddings()
    scores = [[0.0] * len(conts[i]) for i in range(n)]
    for start in range(0, len(wanted), chunk):
        part = wanted[start:start + chunk]
        rows_at = torch.tensor([w[0] for w in part], device=device)
        cols_at = torch.tensor([w[1] for w in part], device=device)
        logp = torch.log_softmax(head(hidden[rows_at, cols_at]).float(), -1)
        picked = logp[torch.arange(len(part), device=device), torch.tensor([w[2] for w in part], device=device)]
        for (i, _, _, j), value in zip(part, picked.tolist()):
            scores[i][j] += value
    return scores
