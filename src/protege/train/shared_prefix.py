"""Shared-prompt batching for training: the rows of a batch that open with the same tokens run them once.

    hidden = body_hidden(model.get_base_model(), input_ids, attention_mask)   # what .model(...) would return
    logits = logits_picker(teacher, input_ids, attention_mask, 256)(answer_mask)  # the output layer where asked

Every item of a task is rendered with the same chat template, system prompt and instruction, so a training
batch's rows share a long opening (60 of TREC-6's ~80 tokens a row). Here that common prefix runs as a single
row; its keys and values are expanded to the batch (a view, not a copy) and each row's remaining positions run
over them. Gradients flow back through the expansion into the one prefix computation, summed over the rows,
which is what the rows' separate copies would have received: the same loss and gradients up to float rounding
(tests/train/test_shared_prefix.py), for less arithmetic.

Rows are right-padded (train/loop.py's collate). The prefix stops one token short of the shortest row, so every
row keeps a position of its own; below MIN_SHARED tokens, or for models whose cache is not a plain per-layer
list of keys and values (sliding-window layers: models/prefix_cache.caching_supported), the batch runs whole.
"""
from __future__ import annotations

import torch

MIN_SHARED = 16  # shorter common openings are not worth a second forward call


def common_prefix(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """Tokens every row of the batch opens with, at most the shortest row's length minus one."""
    limit = int(attention_mask.sum(1).min()) - 1
    if input_ids.shape[0] < 2 or limit <= 0:
        return 0
    same = (input_ids[:, :limit] == input_ids[:1, :limit]).all(0)
    return int(same.long().cumprod(0).sum())


def body_hidden(inner, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                min_shared: int = MIN_SHARED) -> torch.Tensor:
    """Last hidden states of `inner.model` (the decoder body of a causal LM) for the batch, its common prefix
    run once."""
    from transformers import DynamicCache

    from protege.models.prefix_cache import caching_supported

    shared = common_prefix(input_ids, attention_mask)
    if shared < min_shared or not caching_supported(inner):
        return inner.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    rows = input_ids.shape[0]
    cache = DynamicCache(config=inner.config)
    head = inner.model(input_ids=input_ids[:1, :shared], past_key_values=cache, use_cache=True).last_hidden_state
    for layer in cache.layers:
        layer.keys = layer.keys.expand(rows, -1, -1, -1)
        layer.values = layer.values.expand(rows, -1, -1, -1)
    tail = inner.model(input_ids=input_ids[:, shared:], attention_mask=attention_mask, past_key_values=cache,
                       use_cache=True).last_hidden_state
    return torch.cat([head.expand(rows, -1, -1), tail], dim=1)


def logits_picker(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, chunk_tokens: int):
    """`pick(index)`: the model's logits at `index` of the batch's [B, T] positions (a [B, T] mask, or a row and
    its positions), without gradient. The body runs once over the batch (its common opening once) and the output
    layer only at the picked positions, `chunk_tokens` at a time: a 152k-vocabulary teacher's full [B, T, V]
    logits on 8 rows of 530 tokens are about 3 GB in fp32. A model whose output is capped after the layer
    (final_logit_softcapping) or that has no separate body gives its full logits, picked."""
    with torch.no_grad():
        if getattr(model.config, "final_logit_softcapping", None) is not None or not hasattr(model, "model"):
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            return lambda index: logits[index]
        states = body_hidden(model, input_ids, attention_mask)
    head = model.get_output_embeddings()

    @torch.no_grad()
    def pick(index) -> torch.Tensor:
        hidden = states[index]
        parts = [head(hidden[i:i + chunk_tokens]) for i in range(0, hidden.shape[0], chunk_tokens)]
        return torch.cat(parts) if parts else hidden.new_zeros((0, head.weight.shape[0]))

    return pick
