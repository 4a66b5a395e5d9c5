"""Batched decoding that reads a shared prompt prefix's keys and values once per batch, not once per row.

    rows = [tokenizer(text)["input_ids"] for text in texts]
    if shared_decoding_supported(model):
        out = decode(model, rows, Sampling(max_new_tokens=128, eos_ids={2}))   # out.tokens[i]: row i's new ids

The prompts of a generate batch share long openings (the task's instruction, the seed item shown). prefix_cache.py
already runs each distinct prefix through the model once; this module also keeps it once in memory. Each row's
cache holds only its own tokens (the rest of its prompt, then what it writes), and each attention step is split
in two, then merged exactly through the softmax's running maximum and sum ("cascade" attention):
  - the rows of a prefix group attend to the group's prefix in one matmul: the prefix is read once per step;
  - every row attends to its own tokens, all rows at once.
On the MBPP generation bench (64 prompts, 10 distinct prefixes of 244 to 532 tokens) attention took 154 ms of a
377 ms fp32 decoding step with per-row caches; here it takes 35 ms of a 136 ms int8 step, most of the rest the
Linear layers (docs/experiments/generation-throughput.md).

The layers' own modules run the projections, norms and MLP, so an int8-quantised teacher (quantize.py) decodes the
same way. Llama-family models only (`SUPPORTED`): rotary attention with grouped query heads, no sliding window,
no per-head norms. local.py falls back to transformers' generate for everything else.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import torch

from protege.models.prefix_cache import caching_supported, prefix_states, shared_prefix_lengths

SUPPORTED = ("llama", "qwen2")  # decoder layers: x + attn(norm(x)), then + mlp(norm(x)); rotary q and k
COMPACT_FRACTION = 8  # drop finished rows from the batch once 1/8 of it has finished
BANK_RATIO = 1.3  # prefixes padded to a common length in one attention call differ by at most this ratio
PREFILL_SLACK = 1.25  # a prefill chunk may run up to 25% padding ...
PREFILL_FREE_PADDING = 32  # ... plus this many tokens, about what a forward pass of its own costs here
PREFILL_MAX_TOKENS = 2048  # padded tokens in one prefill chunk (bounds its attention scores' memory)


@dataclass
class Sampling:
    max_new_tokens: int
    eos_ids: set[int]
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    seed: int = 0
    stop_when: object = None  # callable(list[int]) -> bool on a row's new ids: it has written a stop string
    deadline: float | None = None  # time.monotonic() after which no further token is decoded


@dataclass
class Decoded:
    tokens: list[list[int]]  # per row, the new ids up to (not including) end of turn
    prefix_tokens_run: int  # prefix tokens computed (each distinct prefix once)
    cached_tokens: int  # prompt tokens rows took from a shared prefix instead of running them
    cut: set[int] = field(default_factory=set)  # rows stopped by the deadline before they finished


# generation settings only transformers' generate implements, at the values that leave tokens alone
_UNTOUCHED = {"num_beams": (None, 1), "repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
              "min_length": (None, 0), "min_new_tokens": (None, 0), "typical_p": (None, 1.0), "min_p": (None,),
              "epsilon_cutoff": (None, 0.0), "eta_cutoff": (None, 0.0), "bad_words_ids": (None,),
              "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "sequence_bias": (None,),
              "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "penalty_alpha": (None,),
              "exponential_decay_length_penalty": (None,), "num_return_sequences": (None, 1)}
TRANSFORMERS_TOP_K = 50  # transformers' default when sampling and the model's generation config sets none


def sampling_from(gen_config, seed: int, stop_when=None) -> Sampling | None:
    """The Sampling of a transformers GenerationConfig, or None when it asks for something only generate does."""
    if any(getattr(gen_config, name, None) not in ok for name, ok in _UNTOUCHED.items()):
        return None
    eos = gen_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if not gen_config.do_sample:
        return Sampling(gen_config.max_new_tokens, eos_ids, seed=seed, stop_when=stop_when)
    top_k = TRANSFORMERS_TOP_K if gen_config.top_k is None else gen_config.top_k
    return Sampling(gen_config.max_new_tokens, eos_ids, temperature=gen_config.temperature or 1.0,
                    top_p=1.0 if gen_config.top_p is None else gen_config.top_p, top_k=top_k, seed=seed,
                    stop_when=stop_when)


def stop_checker(tokenizer, stops: list[str], pattern: str | None = None):
    """stop_when for Sampling: the decoded tail of a row's new ids contains a stop string (a stop of c characters
    spans at most c tokens, so the last c + 2 are enough), or its whole new text matches `pattern`."""
    if not stops and pattern is None:
        return None
    window = max((len(s) for s in stops), default=0) + 2
    matches = re.compile(pattern).search if pattern is not None else None

    def stop_when(ids) -> bool:
        if stops and any(s in tokenizer.decode(ids[-window:]) for s in stops):
            return True
        return matches is not None and matches(tokenizer.decode(ids, skip_special_tokens=True)) is not None
    return stop_when


def shared_decoding_supported(model) -> bool:
    cfg = model.config
    if getattr(cfg, "model_type", None) not in SUPPORTED or not caching_supported(model):
        return False
    base = getattr(model, "base_model", None)  # a PEFT wrapper's is not the decoder: generate handles those
    if not all(hasattr(base, n) for n in ("embed_tokens", "rotary_emb", "layers", "norm")) or not hasattr(
            model, "lm_head"):
        return False
    attn = base.layers[0].self_attn
    return all(hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")) and not hasattr(attn, "q_norm")



@dataclass
class _Prefixes:
    """The distinct shared prefixes padded to one length, so one attention call covers every group: per layer
    keys and values [groups, kv_heads, P, d], and a bias [groups, 1, 1, P] that hides each one's padding."""
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    bias: torch.Tensor

    @classmethod
    def of(cls, states: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> "_Prefixes | None":
        """From, per group, per layer (keys, values) [1, kv_heads, len, d]."""
        if not states:
            return None
        first = states[0][0][0]
        lengths = [group[0][0].shape[2] for group in states]
        longest = max(lengths)

        def stacked(layer: int, which: int) -> torch.Tensor:
            out = first.new_zeros((len(states), first.shape[1], longest, first.shape[3]))
            for g, group in enumerate(states):
                out[g, :, : lengths[g]] = group[layer][which][0]
            return out

        padding = torch.arange(longest, device=first.device) >= torch.tensor(lengths, device=first.device)[:, None]
        bias = first.new_zeros(padding.shape).masked_fill_(padding, float("-inf"))[:, None, None]
        layers = range(len(states[0]))
        return cls([stacked(i, 0) for i in layers], [stacked(i, 1) for i in layers], bias)


@dataclass
class _Batch:
    """The state of rows decoded together; attention reads each prefix group's keys once per step."""
    rows: list[int]  # original index of each row
    positions: torch.Tensor  # [B] position of each row's next token
    lengths: torch.Tensor  # [B] own tokens in each row's cache
    own_keys: list[torch.Tensor]  # per layer [B, kv_heads, capacity, head_dim]
    own_values: list[torch.Tensor]
    group_of: list[int]  # per row, its prefix group (-1: no shared prefix)
    banks: list[_Prefixes] = field(default_factory=list)  # the groups' prefixes, in banks of similar length
    bank_of: dict[int, tuple[int, int]] = field(default_factory=dict)  # group -> (its bank, its index there)
    _layout: list | None = field(default=None, repr=False)

    def layout(self) -> list[tuple[int, int, torch.Tensor, int]]:
        """Per bank: the rows with a prefix in it, start:end (rows are ordered by group, and groups by length, so
        they are contiguous), each one's slot in a [groups x width] grid of query rows (width: the bank's largest
        group, 0 when it has no rows here), so that one attention call reads all the bank's prefixes."""
        if self._layout is None:
            self._layout = []
            for bank in range(len(self.banks)):
                members, slots, seen = [], [], {}
                for j, g in enumerate(self.group_of):
                    if g >= 0 and self.bank_of[g][0] == bank:
                        local = self.bank_of[g][1]
                        members.append(j)
                        slots.append((local, seen.get(local, 0)))
                        seen[local] = slots[-1][1] + 1
                if members != list(range(members[0], members[0] + len(members)) if members else []):
                    raise AssertionError("rows must be ordered by prefix group, and groups by prefix length")
                width = max(seen.values(), default=0)
                grid = torch.tensor([g * width + r for g, r in slots], device=self.lengths.device)
                self._layout.append((members[0] if members else 0, len(members) and members[-1] + 1, grid, width))
        return self._layout

    def keep(self, live: list[int]) -> None:
        index = torch.tensor(live, device=self.lengths.device)
        self.rows = [self.rows[i] for i in live]
        self.group_of = [self.group_of[i] for i in live]
        self.positions, self.lengths = self.positions[index], self.lengths[index]
        self.own_keys = [k[index] for k in self.own_keys]
        self.own_values = [v[index] for v in self.own_values]
        self._layout = None


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding: x * cos + rotate_half(x) * sin, rotate_half's sign folded into signed_sin."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * signed_sin


def _norm(module, x: torch.Tensor) -> torch.Tensor:
    """An RMSNorm layer as one fused op (the module itself runs about seven)."""
    return torch.nn.functional.rms_norm(x, x.shape[-1:], module.weight, module.variance_epsilon)


def _partial(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float,
             bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of q [N, h, L, d] over keys, values [N, h, S, d] (bias [N, 1, L, S] added to the scores,
    -inf hides a key): the output [N, h, L, d] and the log of the softmax's sum [N, h, L], which lets two partial
    attentions over disjoint keys merge exactly. On CPU one fused kernel (torch's flash attention) does both."""
    if q.device.type == "cpu":
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, keys, values, 0.0, False,
                                                                           attn_mask=bias, scale=scale)
    return _partial_math(q, keys, values, scale, bias)


def _partial_math(q, keys, values, scale: float, bias=None) -> tuple[torch.Tensor, torch.Tensor]:
    """_partial in plain tensor ops, for devices without torch's CPU kernel."""
    scores = (q @ keys.transpose(-1, -2)) * scale
    if bias is not None:
        scores = scores + bias
    lse = scores.logsumexp(-1)
    return (scores - lse[..., None]).exp() @ values, lse


def _causal_bias(seen: torch.Tensor, group: int, dtype) -> torch.Tensor:
    """The additive mask of the rows' own tokens, [B, 1, T * group, span]: query t of row b sees the first
    seen[b, t] (the same for the `group` query heads that share a key/value head); span = the most seen."""
    rows, steps = seen.shape
    span = int(seen.max())
    hidden = torch.arange(span, device=seen.device) >= seen[:, :, None]  # [B, T, span]
    bias = torch.zeros(hidden.shape, dtype=dtype, device=seen.device).masked_fill_(hidden, float("-inf"))
    return bias[:, :, None].expand(-1, -1, group, -1).reshape(rows, 1, -1, span)


def _attend(q: torch.Tensor, batch: _Batch, layer: int, scale: float, bias: torch.Tensor, parts: list) -> torch.Tensor:
    """q [B, T, heads, d] -> [B, T, heads * d]: causal attention over each row's prefix group (`parts`: the banks
    with rows here and their layouts) and its own tokens (`bias` from _causal_bias)."""
    keys, values = batch.own_keys[layer], batch.own_values[layer]
    rows, steps, heads, dim = q.shape
    kv_heads = keys.shape[1]
    span = bias.shape[-1]
    # query heads grouped under the key/value head they read: [B, kv, T * G, d]
    q = q.to(keys.dtype).view(rows, steps, kv_heads, -1, dim).permute(0, 2, 1, 3, 4).reshape(rows, kv_heads, -1, dim)
    out, lse = _partial(q, keys[:, :, :span], values[:, :, :span], scale, bias)
    if parts:
        everyone = parts[0][1:3] == (0, rows)
        if not everyone:  # rows without a prefix in a bank take nothing from it
            p_out, p_lse = torch.zeros_like(out), torch.full_like(lse, float("-inf"))
        for bank, start, end, slots, width in parts:
            groups = bank.bias.shape[0]
            grid = q.new_zeros((groups * width, kv_heads, q.shape[2], dim))
            grid[slots] = q[start:end]
            grid = grid.view(groups, width, kv_heads, -1, dim).transpose(1, 2).reshape(groups, kv_heads, -1, dim)
            o, l = _partial(grid, bank.keys[layer], bank.values[layer], scale, bank.bias)
            o = o.view(groups, kv_heads, width, -1, dim).transpose(1, 2).reshape(groups * width, kv_heads, -1, dim)
            l = l.view(groups, kv_heads, width, -1).transpose(1, 2).reshape(groups * width, kv_heads, -1)
            if everyone:
                p_out, p_lse = o[slots], l[slots]
            else:
                p_out[start:end], p_lse[start:end] = o[slots], l[slots]
        top = torch.maximum(lse, p_lse)
        a, b = (lse - top).exp()[..., None], (p_lse - top).exp()[..., None]
        out = (out * a + p_out * b) / (a + b)
    out = out.view(rows, kv_heads, steps, -1, dim).permute(0, 2, 1, 3, 4)
    return out.reshape(rows, steps, heads * dim)


def _forward(model, batch: _Batch, tokens: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Run tokens [B, T] (row b's first counts[b] real, the rest padding) through every layer after each row's
    cache, append their keys and values; the logits after each row's last real token [B, V]."""
    base = model.base_model
    rows, steps = tokens.shape
    offsets = torch.arange(steps, device=tokens.device)
    x = base.embed_tokens(tokens)  # [B, T, hidden]
    cos, sin = base.rotary_emb(x, batch.positions[:, None] + offsets)  # [B, T, d]
    half = cos.shape[-1] // 2
    sin = torch.cat((-sin[..., :half], sin[..., half:]), -1)
    cos, sin = cos[:, :, None], sin[:, :, None]  # broadcast over heads
    slots = batch.lengths[:, None] + offsets  # [B, T] where each token's keys go
    at = torch.arange(rows, device=tokens.device)[:, None]
    cfg = model.config
    bias = _causal_bias(slots + 1, cfg.num_attention_heads // cfg.num_key_value_heads, batch.own_keys[0].dtype)
    parts = [(bank, *part) for bank, part in zip(batch.banks, batch.layout()) if part[3]]
    for i, layer in enumerate(base.layers):
        attn = layer.self_attn
        h = _norm(layer.input_layernorm, x)
        dim = attn.head_dim
        q = _rotate(attn.q_proj(h).view(rows, steps, -1, dim), cos, sin)
        k = _rotate(attn.k_proj(h).view(rows, steps, -1, dim), cos, sin)
        # under bf16 autocast (AMX CPUs, GPUs) projections come out bf16; the caches and attention stay fp32
        batch.own_keys[i][at, :, slots] = k.to(batch.own_keys[i].dtype)
        batch.own_values[i][at, :, slots] = attn.v_proj(h).view(rows, steps, -1, dim).to(batch.own_values[i].dtype)
        x = x + attn.o_proj(_attend(q, batch, i, attn.scaling, bias, parts))
        x = x + layer.mlp(_norm(layer.post_attention_layernorm, x))
    batch.positions, batch.lengths = batch.positions + counts, batch.lengths + counts
    last = x[torch.arange(rows, device=tokens.device), counts - 1]
    return model.lm_head(_norm(base.norm, last)).float()


def _pick(logits: torch.Tensor, s: Sampling, generator: torch.Generator | None) -> torch.Tensor:
    if s.temperature <= 0:
        return logits.argmax(-1)
    logits = logits / s.temperature
    if s.top_k:
        kth = logits.topk(min(s.top_k, logits.shape[-1]), -1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        ordered, order = logits.sort(-1, descending=True)
        probs = ordered.softmax(-1)
        drop = probs.cumsum(-1) - probs > s.top_p  # keep the smallest head whose mass reaches top_p
        logits = logits.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]  # the generator is on this device


def length_banks(lengths: list[int], ratio: float = BANK_RATIO) -> list[list[int]]:
    """Indices of ascending `lengths` in runs whose longest is at most `ratio` times their shortest: each run is
    padded to its longest and read in one attention call, so the ratio bounds the padding read."""
    banks: list[list[int]] = []
    for i, n in enumerate(lengths):
        if banks and n <= ratio * lengths[banks[-1][0]]:
            banks[-1].append(i)
        else:
            banks.append([i])
    return banks


def prefill_chunks(counts: list[int], slack: float = PREFILL_SLACK, free: int = PREFILL_FREE_PADDING,
                   most: int = PREFILL_MAX_TOKENS) -> list[list[int]]:
    """Rows (by index) in chunks of similar length, shortest first, each run as one padded batch. A chunk grows
    while its padded size stays within `slack` times its real tokens plus `free` (a forward pass of its own costs
    about as much as that much padding: it reads every weight again) and within `most` tokens."""
    chunks: list[list[int]] = []
    for i in sorted(range(len(counts)), key=lambda i: counts[i]):
        padded = counts[i] * (len(chunks[-1]) + 1) if chunks else 0
        if chunks and padded <= min(most, slack * (sum(counts[j] for j in chunks[-1]) + counts[i]) + free):
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def _empty_cache(model, rows: int, capacity: int) -> list[torch.Tensor]:
    cfg, base = model.config, model.base_model
    shape = (rows, cfg.num_key_value_heads, capacity, base.layers[0].self_attn.head_dim)
    weight = base.embed_tokens.weight
    return [torch.zeros(shape, dtype=weight.dtype, device=weight.device) for _ in base.layers]


def _prefill(model, rows, split, counts, group_of, banks, bank_of) -> tuple[list, list]:
    """Each row's own tokens (after its shared prefix, its last one included) over its group's prefix, in chunks of
    similar length: per row, the logits after its prompt and per layer its own (keys, values) [kv, count, d]."""
    device = model.device
    first, own = [None] * len(rows), [None] * len(rows)
    for chunk in prefill_chunks(counts):
        chunk.sort(key=lambda i: (group_of[i], i))
        width = max(counts[i] for i in chunk)
        tokens = torch.full((len(chunk), width), rows[chunk[0]][-1], dtype=torch.long)
        for j, i in enumerate(chunk):
            tokens[j, : counts[i]] = torch.tensor(rows[i][split[i]:])
        part = _Batch(rows=chunk, positions=torch.tensor([split[i] for i in chunk], device=device),
                      lengths=torch.zeros(len(chunk), dtype=torch.long, device=device),
                      own_keys=_empty_cache(model, len(chunk), width), own_values=_empty_cache(model, len(chunk), width),
                      group_of=[group_of[i] for i in chunk], banks=banks, bank_of=bank_of)
        logits = _forward(model, part, tokens.to(device), torch.tensor([counts[i] for i in chunk], device=device))
        for j, i in enumerate(chunk):
            first[i] = logits[j]
            own[i] = [(k[j, :, : counts[i]], v[j, :, : counts[i]]) for k, v in zip(part.own_keys, part.own_values)]
    return first, own


def decode(model, rows: list[list[int]], sampling: Sampling) -> Decoded:
    """Generate after every row at once; call under torch.inference_mode()."""
    device = model.device
    split = shared_prefix_lengths(rows)
    prefixes = sorted({tuple(r[:n]) for r, n in zip(rows, split) if n}, key=lambda p: (len(p), p))
    states, computed = prefix_states(model, prefixes, device)
    banks = length_banks([len(p) for p in prefixes])  # prefixes are sorted by length
    bank_of = {g: (b, local) for b, bank in enumerate(banks) for local, g in enumerate(bank)}
    banks = [_Prefixes.of([states[prefixes[g]] for g in bank]) for bank in banks]
    group_id = {p: g for g, p in enumerate(prefixes)}
    group_of = [group_id[tuple(r[:n])] if n else -1 for r, n in zip(rows, split)]
    counts = [len(r) - n for r, n in zip(rows, split)]  # tokens each row runs itself, its last one included
    first, own = _prefill(model, rows, split, counts, group_of, banks, bank_of)
    # all rows decode together, ordered so each prefix group is one contiguous slice
    order = sorted(range(len(rows)), key=lambda i: (group_of[i], i))
    capacity = max(counts) + sampling.max_new_tokens
    batch = _Batch(rows=order, positions=torch.tensor([len(rows[i]) for i in order], device=device),
                   lengths=torch.tensor([counts[i] for i in order], device=device),
                   own_keys=_empty_cache(model, len(rows), capacity), own_values=_empty_cache(model, len(rows), capacity),
                   group_of=[group_of[i] for i in order], banks=banks, bank_of=bank_of)
    for j, i in enumerate(order):
        for layer, (k, v) in enumerate(own[i]):
            batch.own_keys[layer][j, :, : counts[i]], batch.own_values[layer][j, :, : counts[i]] = k, v
    del own
    generator = torch.Generator(device=device).manual_seed(sampling.seed) if sampling.temperature > 0 else None
    new: list[list[int]] = [[] for _ in rows]
    tokens = _pick(torch.stack([first[i] for i in order]), sampling, generator)
    ones = torch.ones(len(order), dtype=torch.long, device=device)
    done = [False] * len(order)
    for step in range(sampling.max_new_tokens):
        for j, (row, token) in enumerate(zip(batch.rows, tokens.tolist())):
            if done[j]:
                continue
            if token in sampling.eos_ids:
                done[j] = True
                continue
            new[row].append(token)
            done[j] = sampling.stop_when is not None and sampling.stop_when(new[row])
        if step == sampling.max_new_tokens - 1 or all(done):
            break
        if sampling.deadline is not None and time.monotonic() >= sampling.deadline:
            cut = {row for row, d in zip(batch.rows, done) if not d}
            return Decoded(tokens=new, prefix_tokens_run=computed, cached_tokens=sum(split), cut=cut)
        if sum(done) * COMPACT_FRACTION >= len(done):  # else finished rows ride along, their tokens unread
            live = [j for j, d in enumerate(done) if not d]
            batch.keep(live)
            tokens, done = tokens[torch.tensor(live, device=device)], [False] * len(live)
        logits = _forward(model, batch, tokens[:, None], ones[: len(tokens)])
        tokens = _pick(logits, sampling, generator)
    return Decoded(tokens=new, prefix_tokens_run=computed, cached_tokens=sum(split))
