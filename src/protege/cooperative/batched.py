"""Several cooperative answers decoded together: one model's turns of many answers run as one batch.

    chunks = step_together([s1, s2, s3], [16, 16, 8])   # LocalSessions of ONE model; same as s.step(n) each

Two models taking turns do not batch simply (turns.py), but many answers in flight at once do: at every round
the answers whose turn is the teacher's step together, then those whose turn is the student's (issue 21:
cooperative wall time against the teacher alone, which decodes in batches too). Measured on 2 AVX2 cores, fp32,
Qwen2.5-Coder-1.5B with 300 cached tokens per row (session 15): one decoding step takes 0.41 s for 1 row, 1.2 s
for 3 and 1.97 s for 16, so 16 answers together run 3.3x faster than one at a time, while 2 or 3 gain nothing
(a Linear layer of 2-3 rows costs as much as 2-3 single ones there; from 4 rows up about the same as 16). Three
real answers of this pair decoded together gave the same texts as one at a time (101.7 s against 97.1 s).

Each session keeps its OWN KV cache between turns (LocalSession's hand-off and rollback rules are unchanged).
A step lays the caches out left-padded with zeros (attention mask 0 on them), runs every row's uncached tokens
(at least its last one; the other side's text since its last turn) in one forward, right-aligned with padding
before them, decodes up to n tokens per row in one forward per step, and splits the batch's cache back into
per-session caches without the padding:

    [zeros][row i's cached tokens][padding][its uncached tokens][new tokens; a row that stopped: padding]

A fresh session's prompt runs on its own first (a prefill, once per answer): the padding before a row's tokens
must have some real key to attend to.

Positions are each row's own (position_ids), so greedy decoding gives each session the tokens it would give
alone, up to the floating-point differences of a batched matmul (tested). Sessions that cannot batch (a remote
one, reencode=True, a model whose cache drops positions) step one by one.
"""
from __future__ import annotations

import torch

from protege.cooperative.session import Chunk, LocalSession


def _batchable(sessions: list) -> bool:
    from protege.models.prefix_cache import caching_supported

    if len(sessions) < 2 or not all(isinstance(s, LocalSession) and not s.reencode for s in sessions):
        return False
    lm = sessions[0].lm
    return all(s.lm is lm for s in sessions) and caching_supported(lm.model)


def step_together(sessions: list, n_tokens: list[int]) -> list[Chunk]:
    """`s.step(n)` for every session (all of one local model), decoded as one batch where it can be."""
    if len(sessions) != len(n_tokens):
        raise ValueError(f"{len(sessions)} sessions but {len(n_tokens)} token budgets")
    if not _batchable(sessions):
        return [s.step(n) for s, n in zip(sessions, n_tokens)]
    for s, n in zip(sessions, n_tokens):
        s._begin_step(n)
        if s._cached == 0 and len(s.ids) > 1:  # a fresh session: its prompt but the last token, on its own
            s._forward(s.ids[:-1])
    if any(s._cached == 0 for s in sessions):  # a one-token prompt: nothing cached to lay out
        return [s.step(n) for s, n in zip(sessions, n_tokens)]
    return _decode_batch(sessions, n_tokens)


def _decode_batch(sessions: list[LocalSession], n_tokens: list[int]) -> list[Chunk]:
    from transformers import DynamicCache

    lm = sessions[0].lm
    model, device = lm.model, lm.device
    rows = len(sessions)
    cached = [s._cached for s in sessions]  # >= 1, < len(ids)
    width = max(cached)
    mask = torch.zeros((rows, width), dtype=torch.long, device=device)
    cache = DynamicCache(config=model.config)
    per_row = [s._cache.layers for s in sessions]
    for layer in range(len(per_row[0])):
        k0 = per_row[0][layer].keys
        keys = k0.new_zeros((rows, k0.shape[1], width, k0.shape[3]))
        values = torch.zeros_like(keys)
        for i, p in enumerate(per_row):
            keys[i, :, width - cached[i]:] = p[layer].keys[0]
            values[i, :, width - cached[i]:] = p[layer].values[0]
        cache.update(keys, values, layer)
    for i, c in enumerate(cached):
        mask[i, width - c:] = 1
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    # The first forward: every row's uncached tokens, right-aligned so that each row's last one comes last.
    fresh = [s.ids[c:] for s, c in zip(sessions, cached)]
    run = max(len(f) for f in fresh)
    ids = torch.tensor([[pad] * (run - len(f)) + f for f in fresh], device=device)
    step_mask = torch.tensor([[0] * (run - len(f)) + [1] * len(f) for f in fresh], device=device)
    pos = torch.tensor([[c] * (run - len(f)) + list(range(c, c + len(f))) for f, c in zip(fresh, cached)],
                       device=device)
    positions = [c + len(f) for f, c in zip(fresh, cached)]
    for s, f in zip(sessions, fresh):
        s.stats["fed"] += len(f)
        s.stats["forwards"] += 1
    feed = [0] * rows
    live = [True] * rows  # the row is still decoding (its next token is fed)
    new: list[list[int]] = [[] for _ in sessions]
    eos = [False] * rows
    for step in range(max(n_tokens)):
        if step:
            ids = torch.tensor([[t if on else pad] for t, on in zip(feed, live)], device=device)
            step_mask = torch.tensor([[int(on)] for on in live], device=device)
            pos = torch.tensor([[p] for p in positions], device=device)
            for i, s in enumerate(sessions):
                if live[i]:
                    s.stats["fed"] += 1
                    s.stats["forwards"] += 1
                    positions[i] += 1
        mask = torch.cat([mask, step_mask], dim=1)
        with torch.inference_mode(), lm.autocast():
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                        use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        for i, s in enumerate(sessions):
            if not live[i]:
                continue
            t = s._pick(out.logits[i, -1].float())
            if t in s.eos_ids:
                eos[i], live[i] = True, False
                continue
            new[i].append(t)
            feed[i] = t
            if len(new[i]) >= n_tokens[i]:  # its last token is fed next turn, and only if it is kept
                live[i] = False
        if not any(live):
            break
    _split(sessions, cache, mask)
    return [s._propose(toks, stopped) for s, toks, stopped in zip(sessions, new, eos)]


def _split(sessions: list[LocalSession], cache, mask: torch.Tensor) -> None:
    """Each session's own cache again: the batch's positions where its mask is 1, in order."""
    from transformers import DynamicCache

    model = sessions[0].lm.model
    for i, s in enumerate(sessions):
        keep = mask[i].nonzero().squeeze(1)
        own = DynamicCache(config=model.config)
        for layer, lay in enumerate(cache.layers):
            own.update(lay.keys[i : i + 1].index_select(2, keep), lay.values[i : i + 1].index_select(2, keep), layer)
        s._cache, s._cached = own, int(keep.numel())
