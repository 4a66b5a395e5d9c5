"""A step's batch in micro-batches, each backpropagated as it comes: memory holds one micro-batch's activations.

    loss, parts = backward_in_parts(batch, 1024, loss_of, count_of)   # then the loop steps (train/loop.py)

`loss_of(rows, sub_batch)` returns (loss, parts) for the batch's `rows`, the loss a mean over some positions of
them; `count_of(rows, sub_batch)` says how many (the mean's denominator). Each micro-batch's loss is scaled by its
share of the step's count before its backward, so the gradients add up to those of the whole batch's mean, and
the returned value (and each part) is that mean: the same step as one pass, up to float rounding; the parts also
hold the step's count (loop.AVERAGED_OVER, which several processes weight their gradients by). On-policy
distillation uses it (train.onpolicy.micro_batch_tokens): its sampled rows are ~530 tokens with a 152k
vocabulary, too much for one forward and backward on a 24 GiB machine. SFT and KD on one tokenizer use it through
`answer_mean_in_parts` (train.micro_batch_tokens): a 0.5B student's step of 8 rows x 512 tokens holds 11-22 GB of
activations at once.
"""
from __future__ import annotations

from typing import Callable

import torch

from protege.train.loop import AVERAGED_OVER, Backpropagated


def micro_batches(batch: dict, limit: int) -> list[tuple[list[int], dict]]:
    """The batch's rows (right-padded, as train/loop.py collates them) in consecutive groups of at most `limit`
    tokens counted with padding (rows x the group's longest row; a row longer than `limit` goes alone), each
    trimmed to its longest row: (row indices, sub-batch)."""
    lengths = [int(n) for n in batch["attention_mask"].sum(1).tolist()]
    groups, current = [], []
    for i, n in enumerate(lengths):
        if current and (len(current) + 1) * max(n, *(lengths[j] for j in current)) > limit:
            groups.append(current)
            current = []
        current.append(i)
    groups.append(current)
    out = []
    for rows in groups:
        width = max(lengths[j] for j in rows)
        index = torch.tensor(rows, device=batch["input_ids"].device)
        out.append((rows, {k: v[index, :width] for k, v in batch.items()}))
    return out


def backward_in_parts(batch: dict, limit: int, loss_of: Callable, count_of: Callable) -> tuple[Backpropagated, dict]:
    """Run `loss_of` over the batch's micro-batches, each backward scaled by its share of the step's count; the
    step's mean loss (as `Backpropagated`, for the loop) and parts."""
    groups = micro_batches(batch, limit)
    counts = [count_of(rows, sub) for rows, sub in groups]
    total = sum(counts)
    if total == 0:  # nothing to average over: one pass, as without micro-batches
        loss, parts = loss_of(list(range(batch["input_ids"].shape[0])), batch)
        loss.backward()
        return Backpropagated(loss.item()), {**parts, AVERAGED_OVER: 0}
    value, parts = 0.0, {}
    for (rows, sub), count in zip(groups, counts):
        if count == 0:
            continue
        loss, mine = loss_of(rows, sub)
        share = count / total
        (loss * share).backward()
        value += loss.item() * share
        for name, part in mine.items():
            parts[name] = parts.get(name, 0.0) + float(part) * share
    return Backpropagated(value), {**parts, AVERAGED_OVER: total}


def answer_tokens(rows: list[int], sub: dict) -> int:
    """How many positions a mean over the answer tokens averages (SFT's and KD's losses): the labelled targets."""
    return int((sub["labels"][:, 1:] != -100).sum())


def answer_mean_in_parts(loss_fn: Callable, limit: int | None) -> Callable:
    """A train_lora `loss_fn(model, batch, indices)` whose loss is a mean over the batch's answer tokens, run in
    micro-batches of at most `limit` tokens, each backpropagated as it comes; `limit` None: `loss_fn` itself."""
    if limit is None:
        return loss_fn

    def in_parts(model, batch: dict, indices: list) -> tuple[Backpropagated, dict]:
        def loss_of(rows, sub):
            return loss_fn(model, sub, [indices[r] for r in rows])

        return backward_in_parts(batch, limit, loss_of, answer_tokens)

    return in_parts
