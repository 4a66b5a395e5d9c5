"""train/shared_prefix.py: a batch's common opening runs once, with the same loss and gradients as running every
row whole."""
import copy

import pytest
import torch

from protege.train.shared_prefix import body_hidden, common_prefix


def _batch(shared: int, tails: list[int], pad: int = 0):
    """Right-padded rows: `shared` common tokens, then each row its own `tails[i]` tokens."""
    g = torch.Generator().manual_seed(0)
    head = torch.randint(4, 250, (shared,), generator=g)
    rows = [torch.cat([head, torch.randint(4, 250, (n,), generator=g)]) for n in tails]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    return ids, mask


def test_common_prefix_stops_where_rows_differ_and_short_of_the_shortest_row():
    ids, mask = _batch(20, [5, 9, 3])
    assert common_prefix(ids, mask) == 20
    ids, mask = _batch(20, [0, 9])  # a row that is all prefix keeps its last token to itself
    assert common_prefix(ids, mask) == 19
    assert common_prefix(ids[:1], mask[:1]) == 0  # one row shares with no one


@pytest.mark.parametrize("tails", [[5, 9, 3, 7], [1, 12]])
def test_shared_prefix_gives_the_same_loss_and_lora_gradients(tiny_model_dir, tails):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from protege.train.sft import answer_loss

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():  # LoRA B starts at zero; move it so the adapter's gradients all flow
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    ids, mask = _batch(24, tails)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :24] = -100  # the loss on each row's own tokens, as SFT's answers
    runs = {}
    for shared in (True, False):
        m = copy.deepcopy(model)
        inner = m.get_base_model()
        hidden = body_hidden(inner, ids, mask, min_shared=1 if shared else 10 ** 9)
        targets = labels[:, 1:]
        keep = targets != -100
        loss = torch.nn.functional.cross_entropy(inner.lm_head(hidden[:, :-1][keep]).float(), targets[keep])
        loss.backward()
        runs[shared] = (loss.item(), {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad})
    assert runs[True][0] == pytest.approx(runs[False][0], abs=1e-5)
    assert runs[True][1].keys() == runs[False][1].keys() and runs[True][1]
    for name, grad in runs[True][1].items():
        assert torch.allclose(grad, runs[False][1][name], atol=1e-5, rtol=1e-4), name
    unshared = answer_loss(copy.deepcopy(model), ids, labels, mask)  # what SFT computes today, for the record
    assert unshared.item() == pytest.approx(runs[False][0], abs=1e-5)
