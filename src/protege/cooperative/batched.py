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
A step copies the caches into one batch, runs every row's uncached tokens (at least its last one; the other
side's text since its last turn) in one forward, decodes up to n tokens per row in one forward per step, and
splits the batch's cache back into per-session caches. Two layouts:
  - Llama-family models (SmolLM2, Qwen2.5; shared_prefix_decode.SUPPORTED) run through protege's own decoder
    layers, each row's keys left-aligned with its own length, one fused attention call per layer:
        [row i's cached tokens][its uncached tokens][new tokens][unused]
  - any other model through transformers' forward, caches left-padded with zeros (attention mask 0 on them),
    the uncached tokens right-aligned after padding:
        [zeros][row i's cached tokens][padding][its uncached tokens][new tokens; a row that stopped: padding]
On the 1.5B teacher, 16 MBPP answers with ~24 tokens each written after their prompts, 32 tokens more per row
(2 AVX2 cores, fp32, session 16, an experiment paused meanwhile): 1.49-1.59 s per step with the own layers
against 1.80-1.99 s through transformers (two runs each, identical texts); the Linear layers are most of it.

A fresh session's prompt runs on its own first (a prefill, once per answer): in transformers' layout the padding
before a row's tokens must have some real key to attend to (the own layers would not need it; both do it).

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
    """Up to n_tokens[i] new tokens for every row, one forward per step; each session's cache is its own again
    afterwards. Llama-family models run through protege's own decoder layers (shared_prefix_decode), others
    through transformers' forward."""
    from protege.models.shared_prefix_decode import shared_decoding_supported

    cached = [s._cached for s in sessions]  # >= 1, < len(ids)
    fresh = [s.ids[c:] for s, c in zip(sessions, cached)]  # the other side's text since the last turn, at least 1
    layout = _OwnLayers if shared_decoding_supported(sessions[0].lm.model) else _Transformers
    batch = layout(sessions, cached, fresh, n_tokens)
    for s, f in zip(sessions, fresh):
        s.stats["fed"] += len(f)
        s.stats["forwards"] += 1
    logits = batch.first()
    rows = len(sessions)
    feed = [0] * rows
    live = [True] * rows  # the row is still decoding (its next token is fed)
    new: list[list[int]] = [[] for _ in sessions]
    eos = [False] * rows
    while True:
        for i, s in enumerate(sessions):
            if not live[i]:
                continue
            t = s._pick(logits[i].float())
            if t in s.eos_ids:
                eos[i], live[i] = True, False
                continue
            new[i].append(t)
            feed[i] = t
            if len(new[i]) >= n_tokens[i]:  # its last token is fed next turn, and only if it is kept
                live[i] = False
        if not any(live):
            break
        for i, s in enumerate(sessions):
            if live[i]:
                s.stats["fed"] += 1
                s.stats["forwards"] += 1
        logits = batch.next(feed, live)
    batch.split()
    return [s._propose(toks, stopped) for s, toks, stopped in zip(sessions, new, eos)]


class _OwnLayers:
    """Rows through shared_prefix_decode's layer code (no shared prefix: every row reads its own keys, one fused
    attention call per layer): each session's cache copied in left-aligned, [its cached tokens][its uncached
    tokens][new tokens], each row with its own length and positions (see the module docstring for its speed)."""

    def __init__(self, sessions, cached, fresh, n_tokens):
        from protege.models.shared_prefix_decode import _Batch, _empty_cache, _forward

        self._forward = _forward  # imported once per batch, not once per decoding step
        self.sessions, self.fresh = sessions, fresh
        self.lm = sessions[0].lm
        self.model = self.lm.decoding_model()
        device, rows = self.lm.device, len(sessions)
        # the first forward writes every row's padding too: room for the longest uncached run after any cache
        capacity = max(cached) + max(len(f) for f in fresh) + max(n_tokens)
        keys, values = _empty_cache(self.model, rows, capacity), _empty_cache(self.model, rows, capacity)
        self.dtype = sessions[0]._cache.layers[0].keys.dtype
        for i, (s, c) in enumerate(zip(sessions, cached)):
            for layer, lay in enumerate(s._cache.layers):
                keys[layer][i, :, :c] = lay.keys[0]
                values[layer][i, :, :c] = lay.values[0]
        at = torch.tensor(cached, device=device)
        self.batch = _Batch(rows=list(range(rows)), positions=at, lengths=at.clone(), own_keys=keys,
                            own_values=values, group_of=[-1] * rows)

    def _run(self, tokens: list[list[int]], counts: list[int]) -> torch.Tensor:
        device = self.lm.device
        with torch.inference_mode(), self.lm.autocast():
            return self._forward(self.model, self.batch, torch.tensor(tokens, device=device),
                            torch.tensor(counts, device=device))

    def first(self) -> torch.Tensor:
        width = max(len(f) for f in self.fresh)
        return self._run([f + [f[-1]] * (width - len(f)) for f in self.fresh], [len(f) for f in self.fresh])

    def next(self, feed: list[int], live: list[bool]) -> torch.Tensor:
        # a row that stopped runs a token it does not keep (count 0: its length and position stay)
        return self._run([[t] for t in feed], [int(on) for on in live])

    def split(self) -> None:
        from transformers import DynamicCache

        for i, s in enumerate(self.sessions):
            n = int(self.batch.lengths[i])
            own = DynamicCache(config=self.lm.model.config)
            for layer, (k, v) in enumerate(zip(self.batch.own_keys, self.batch.own_values)):
                own.update(k[i : i + 1, :, :n].to(self.dtype), v[i : i + 1, :, :n].to(self.dtype), layer)
            s._cache, s._cached = own, n


class _Transformers:
    """Rows through transformers' forward: the caches left-padded with zeros (attention mask 0 on them), every
    row's uncached tokens right-aligned after padding in the first forward, per-row position_ids."""

    def __init__(self, sessions, cached, fresh, n_tokens):
        from transformers import DynamicCache

        self.sessions, self.fresh, self.cached = sessions, fresh, cached
        self.lm = sessions[0].lm
        model, device, rows = self.lm.model, self.lm.device, len(sessions)
        width = max(cached)
        self.mask = torch.zeros((rows, width), dtype=torch.long, device=device)
        self.cache = DynamicCache(config=model.config)
        per_row = [s._cache.layers for s in sessions]
        for layer in range(len(per_row[0])):
            k0 = per_row[0][layer].keys
            keys = k0.new_zeros((rows, k0.shape[1], width, k0.shape[3]))
            values = torch.zeros_like(keys)
            for i, p in enumerate(per_row):
                keys[i, :, width - cached[i]:] = p[layer].keys[0]
                values[i, :, width - cached[i]:] = p[layer].values[0]
            self.cache.update(keys, values, layer)
        for i, c in enumerate(cached):
            self.mask[i, width - c:] = 1
        self.pad = self.lm.tokenizer.pad_token_id if self.lm.tokenizer.pad_token_id is not None else 0
        self.positions = [c + len(f) for f, c in zip(fresh, cached)]

    def _run(self, ids, step_mask, pos) -> torch.Tensor:
        device = self.lm.device
        self.mask = torch.cat([self.mask, torch.tensor(step_mask, device=device)], dim=1)
        with torch.inference_mode(), self.lm.autocast():
            out = self.lm.model(input_ids=torch.tensor(ids, device=device), attention_mask=self.mask,
                                position_ids=torch.tensor(pos, device=device), past_key_values=self.cache,
                                use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        return out.logits[:, -1]

    def first(self) -> torch.Tensor:
        run = max(len(f) for f in self.fresh)
        pads = [run - len(f) for f in self.fresh]
        return self._run([[self.pad] * p + f for p, f in zip(pads, self.fresh)],
                         [[0] * p + [1] * len(f) for p, f in zip(pads, self.fresh)],
                         [[c] * p + list(range(c, c + len(f))) for p, f, c in zip(pads, self.fresh, self.cached)])

    def next(self, feed: list[int], live: list[bool]) -> torch.Tensor:
        pos = [[p] for p in self.positions]
        self.positions = [p + on for p, on in zip(self.positions, live)]
        return self._run([[t if on else self.pad] for t, on in zip(feed, live)], [[int(on)] for on in live], pos)

    def split(self) -> None:
        """Each session's own cache again: the batch's positions where its mask is 1, in order."""
        from transformers import DynamicCache

        model = self.lm.model
        for i, s in enumerate(self.sessions):
            keep = self.mask[i].nonzero().squeeze(1)
            own = DynamicCache(config=model.config)
            for layer, lay in enumerate(self.cache.layers):
                own.update(lay.keys[i : i + 1].index_select(2, keep), lay.values[i : i + 1].index_select(2, keep),
                           layer)
            s._cache, s._cached = own, int(keep.numel())
