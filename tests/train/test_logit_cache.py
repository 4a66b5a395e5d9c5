"""Offline teacher top-k cache on a tiny random Llama: same loss as online, resumable, refuses other settings."""
import json

import pytest
import torch

from protege.train import logit_cache
from protege.train.kd_loss import KINDS, balanced_kd_loss, topk_teacher
from protege.train.logit_cache import LogitCache, LogitCacheMismatch, answer_positions, write_logit_cache
from tiny import CORPUS

T = 2.0


def sharpen(model, scale):
    """Random init gives near-uniform logits; scaling the final norm makes them as peaked as a trained model's."""
    with torch.no_grad():
        model.model.norm.weight.mul_(scale)
    return model.eval()


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    teacher = sharpen(LlamaForCausalLM.from_pretrained(tiny_model_dir), 40.0)
    torch.manual_seed(1)
    student = sharpen(LlamaForCausalLM(teacher.config), 20.0)
    examples = []
    for i, text in enumerate(CORPUS + [c.upper() for c in CORPUS[:2]]):
        ids = tok(text, add_special_tokens=False)["input_ids"][: 12 + 3 * i]
        prompt = len(ids) // 2 + i % 3
        examples.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return teacher, student, examples


def online(teacher, student, examples):
    """Student hidden states, targets and teacher logits at the answer positions, as train/sft.py selects them."""
    hidden, targets, logits = [], [], []
    with torch.no_grad():
        for e in examples:
            ids, labels = torch.tensor([e["input_ids"]]), torch.tensor([e["labels"]])
            keep = labels[:, 1:] != -100
            hidden.append(student.model(input_ids=ids).last_hidden_state[:, :-1][keep])
            logits.append(teacher(input_ids=ids).logits[:, :-1][keep])
            targets.append(labels[:, 1:][keep])
    return torch.cat(hidden), torch.cat(targets), torch.cat(logits)


def test_positions_are_those_whose_next_token_is_labelled():
    assert answer_positions([-100, -100, 5, 6, -100, 7]) == [1, 2, 4]


# Measured: storing log-probs as float16 moves the KD part by at most 4e-5 relative and the loss by 1.6e-5 (k = V
# against the full logits online, k = 16 against the same top-16 taken online), for every kind.
CACHE_REL_TOL = 2e-4


def test_cache_matches_online_loss(setup, tmp_path):
    teacher, student, examples = setup
    hidden, targets, logits = online(teacher, student, examples)
    vocab = logits.shape[-1]
    for k in (vocab, 16):
        meta = write_logit_cache(tmp_path / f"k{k}", teacher, examples, k, T, batch_size=2, progress=False,
                                 shard_examples=3)
        cache = LogitCache(tmp_path / f"k{k}", k=k, temperature=T, vocab_size=vocab, examples=examples)
        assert meta["tokens"] == len(targets) and meta["shards"] == 3 and meta["index_dtype"] == "uint16"
        # 2 bytes of index and 2 of float16 log-prob per entry, plus offsets and headers
        assert 4 * k <= cache.bytes_per_token < 4 * k + 16
        cached = cache.batch(list(range(len(examples))))
        assert cached.indices.dtype == torch.long and cached.logp.dtype == torch.float32
        reference = topk_teacher(logits, k, T)
        torch.testing.assert_close(cached.logp, reference.logp, atol=5e-3, rtol=1e-3)
        for kind in KINDS:
            want, want_parts = balanced_kd_loss(hidden, student.lm_head, targets,
                                                logits if k == vocab else reference, 0.5, T, kind, chunk_tokens=7)
            got, parts = balanced_kd_loss(hidden, student.lm_head, targets, cached, 0.5, T, kind, chunk_tokens=7)
            assert got.item() == pytest.approx(want.item(), rel=CACHE_REL_TOL)
            assert parts["kd"] == pytest.approx(want_parts["kd"], rel=CACHE_REL_TOL)
    for i, e in enumerate(examples):
        assert cache.get(i)[0].shape == (len(answer_positions(e["labels"])), 16)


def test_resumed_write_is_byte_identical(setup, tmp_path, monkeypatch):
    teacher, _, examples = setup
    write_logit_cache(tmp_path / "whole", teacher, examples, 8, T, batch_size=2, progress=False, shard_examples=3)

    save, calls = logit_cache._save_shard, []

    def save_then_die(path, tensors, vocab):
        if calls:  # killed while writing the second shard: a half-written temp file is left behind
            path.with_name(path.name + ".tmp").write_bytes(b"partial")
            raise KeyboardInterrupt
        calls.append(path)
        save(path, tensors, vocab)

    monkeypatch.setattr(logit_cache, "_save_shard", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_logit_cache(tmp_path / "resumed", teacher, examples, 8, T, batch_size=2, progress=False,
                          shard_examples=3)
    assert not (tmp_path / "resumed" / "meta.json").exists()
    with pytest.raises(FileNotFoundError, match="resume"):
        LogitCache(tmp_path / "resumed")
    monkeypatch.setattr(logit_cache, "_save_shard", save)

    forwards = []
    rows = logit_cache._teacher_rows
    monkeypatch.setattr(logit_cache, "_teacher_rows", lambda model, batch, *a: forwards.append(len(batch))
                        or rows(model, batch, *a))
    write_logit_cache(tmp_path / "resumed", teacher, examples, 8, T, batch_size=2, progress=False, shard_examples=3)
    assert sum(forwards) == len(examples) - 3  # the finished first shard was not recomputed

    def files(folder):
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    whole, resumed = files(tmp_path / "whole"), files(tmp_path / "resumed")
    assert list(whole) == list(resumed) == ["meta.json", "settings.json"] + [f"shard-0000{j}.safetensors"
                                                                             for j in range(3)]
    assert whole == resumed


def test_other_settings_are_refused(setup, tmp_path):
    teacher, _, examples = setup
    folder = tmp_path / "cache"
    write_logit_cache(folder, teacher, examples, 8, T, batch_size=4, progress=False, shard_examples=4)
    with pytest.raises(LogitCacheMismatch, match="k = 8, but 16 was asked"):
        LogitCache(folder, k=16)
    with pytest.raises(LogitCacheMismatch, match="temperature"):
        LogitCache(folder, k=8, temperature=1.0)
    with pytest.raises(LogitCacheMismatch, match="vocab_size"):
        LogitCache(folder, vocab_size=49152)
    with pytest.raises(LogitCacheMismatch, match="k differ"):
        write_logit_cache(folder, teacher, examples, 16, T, batch_size=4, progress=False, shard_examples=4)
    shorter = [dict(e, labels=list(e["labels"])) for e in examples]
    shorter[2]["labels"][-1] = -100
    with pytest.raises(LogitCacheMismatch, match="example 2 has"):
        LogitCache(folder, examples=shorter)
    cache = LogitCache(folder, k=8, temperature=T)
    with pytest.raises(LogitCacheMismatch, match="example 2 has"):
        cache.get(2, n_tokens=len(answer_positions(shorter[2]["labels"])))
    meta = json.loads((folder / "meta.json").read_text())
    assert {"k", "temperature", "vocab_size", "index_dtype", "logp_dtype", "num_examples", "tokens",
            "bytes_per_token"} <= set(meta)
