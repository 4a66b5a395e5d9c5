"""Depth pruning (protege.models.prune) on a tiny 6-layer Llama, briefly trained so its layers matter."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from protege.models.prune import (cached_prune, decoder_layers, layer_importance, prune_layers, prune_model,
                                  pruned_dir)
from tiny import CORPUS, build_tiny_model

LAYERS = 6
TEXTS = [" ".join(CORPUS[i:] + CORPUS[:i]) for i in range(len(CORPUS))]


@pytest.fixture(scope="module")
def deep_dir(tmp_path_factory):
    """The tiny tokenizer with a 6-layer, 32-wide Llama fitted to the corpus for 60 steps (~2 s)."""
    folder = build_tiny_model(tmp_path_factory.mktemp("deep"))
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    ids = tok(TEXTS, return_tensors="pt", padding=True)
    labels = ids.input_ids.masked_fill(ids.attention_mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        model(**ids, labels=labels).loss.backward()
        opt.step()
    model.save_pretrained(folder)
    return folder


def load(folder):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def manual_logits(model, ids, layer_indices):
    """The original model's forward written out by hand, running only `layer_indices`."""
    inner, n = model.model, ids.shape[1]
    pos = torch.arange(n)[None]
    mask = torch.full((n, n), float("-inf")).triu(1)[None, None]
    h = inner.embed_tokens(ids)
    rope = inner.rotary_emb(h, pos)
    for i in layer_indices:
        h = inner.layers[i](h, attention_mask=mask, position_embeddings=rope, position_ids=pos)
        h = h[0] if isinstance(h, tuple) else h
    return model.lm_head(inner.norm(h))


def greedy(model, tok, use_cache):
    ids = tok(CORPUS[0], return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=12, do_sample=False, use_cache=use_cache,
                         pad_token_id=tok.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("method", ["nll", "cosine"])
def test_identity_layer_scores_lowest(deep_dir, method):
    model, tok = load(deep_dir), AutoTokenizer.from_pretrained(deep_dir)
    layer = model.model.layers[3]
    with torch.no_grad():  # both residual branches write zeros: the layer returns its input exactly
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    scores = layer_importance(model, tok, TEXTS, method=method)
    assert len(scores) == LAYERS
    assert min(range(LAYERS), key=scores.__getitem__) == 3
    assert scores[3] == pytest.approx(0.0, abs=1e-6)
    assert all(s > 1e-4 for i, s in enumerate(scores) if i != 3), scores


def test_nll_scores_equal_skipping_each_layer_by_hand(deep_dir):
    """The replay shortcut (earlier layers not rerun) gives what a full forward without the layer gives."""
    model, tok = load(deep_dir), AutoTokenizer.from_pretrained(deep_dir)
    ids = tok(TEXTS[0], return_tensors="pt").input_ids

    def nll(layer_indices):
        return F.cross_entropy(manual_logits(model, ids, layer_indices)[0, :-1], ids[0, 1:]).item()

    with torch.no_grad():
        expected = [nll([j for j in range(LAYERS) if j != i]) - nll(range(LAYERS)) for i in range(LAYERS)]
    assert layer_importance(model, tok, [TEXTS[0]], method="nll") == pytest.approx(expected, abs=1e-5)


def test_pruned_folder_matches_skipping_layers(deep_dir, tmp_path):
    info = prune_model(deep_dir, tmp_path / "pruned", keep_layers=4, calibration_texts=TEXTS)
    pruned = load(tmp_path / "pruned")
    assert pruned.config.num_hidden_layers == 4 and len(pruned.model.layers) == 4
    ids = AutoTokenizer.from_pretrained(tmp_path / "pruned")(CORPUS[1], return_tensors="pt").input_ids
    with torch.no_grad():
        expected = manual_logits(load(deep_dir), ids, info["kept"])
        torch.testing.assert_close(pruned(ids).logits, expected, atol=1e-5, rtol=1e-5)


def test_pruned_in_memory_generates_same_with_and_without_cache(deep_dir):
    model, tok = load(deep_dir), AutoTokenizer.from_pretrained(deep_dir)
    prune_layers(model, 3, [0.0, 9.0, 1.0, 8.0, 2.0, 7.0])  # keeps 1, 3, 5: every layer_idx must change
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2]
    assert greedy(model, tok, use_cache=True) == greedy(model, tok, use_cache=False)
    ids = tok(CORPUS[2], return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, manual_logits(load(deep_dir), ids, [1, 3, 5]),
                                   atol=1e-5, rtol=1e-5)


def test_gemma3_layer_types_follow_kept_layers():
    """Gemma 3 picks each layer's mask (sliding or full) from config.layer_types, so the list must be cut too."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    def gemma(types):
        return Gemma3ForCausalLM(Gemma3TextConfig(
            vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=len(types), num_attention_heads=2,
            num_key_value_heads=1, head_dim=8, sliding_window=4, layer_types=types, max_position_embeddings=64)).eval()

    torch.manual_seed(0)
    model = gemma(["sliding_attention", "full_attention"] * 2)
    reference = gemma(["full_attention", "sliding_attention"])  # layers 1 and 2 of `model`, built directly
    renamed = {k.replace("layers.1.", "layers.0.").replace("layers.2.", "layers.1."): v
               for k, v in model.state_dict().items() if ".layers.0." not in k and ".layers.3." not in k}
    reference.load_state_dict(renamed)
    prune_layers(model, 2, [0.0, 1.0, 2.0, 0.5])
    assert model.config.layer_types == ["full_attention", "sliding_attention"]
    ids = torch.arange(3, 15)[None]  # longer than the sliding window, so the two mask kinds differ
    with torch.no_grad():
        full = model(ids).logits
        torch.testing.assert_close(full, reference(ids).logits)
        # Token by token through the KV cache (generate(use_cache=False) is no reference for Gemma 3 here:
        # it disagrees with the cached path even on the unpruned model).
        out = model(ids[:, :6], use_cache=True)
        steps = [model(ids[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True).logits[:, -1]
                 for t in range(6, ids.shape[1])]
        torch.testing.assert_close(torch.stack(steps, 1), full[:, 6:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("keep", [0, -1, LAYERS, LAYERS + 3])
def test_bad_keep_refused_before_scoring(deep_dir, tmp_path, keep):
    with pytest.raises(ValueError, match=rf"--keep-layers {keep} .*has {LAYERS} decoder layers"):
        prune_model(deep_dir, tmp_path / "out", keep_layers=keep, calibration_texts=TEXTS)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="--keep-layers"):
        prune_layers(load(deep_dir), keep, [1.0] * LAYERS)


def test_unknown_method_refused_before_loading(tmp_path):
    with pytest.raises(ValueError, match="unknown importance method 'fisher'"):
        prune_model(tmp_path / "no-such-model", tmp_path / "out", keep_layers=2, method="fisher")


def test_unsupported_architecture_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match="cannot prune GPT2LMHeadModel"):
        decoder_layers(model)


def test_prune_json_and_folder_layout(deep_dir, tmp_path):
    out = tmp_path / "student"
    info = prune_model(deep_dir, out, keep_layers=2, method="cosine")  # default stdlib calibration
    written = json.loads((out / "prune.json").read_text())
    assert written == info
    assert written["method"] == "cosine" and len(written["scores"]) == LAYERS
    assert len(written["kept"]) == 2 and sorted(written["kept"] + written["dropped"]) == list(range(LAYERS))
    assert written["calibration"] == ["textwrap.py", "string.py", "json/encoder.py"]
    assert written["calibration_tokens"] == 2048
    assert written["params_after"] < written["params_before"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["student"]  # no temp folder left behind
    with pytest.raises(FileExistsError, match="already exists"):
        prune_model(deep_dir, out, keep_layers=2, method="cosine")


def test_cached_prune_scores_once_then_reuses_the_folder_and_finishes_an_incomplete_one(deep_dir, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path))
    source = str(deep_dir)
    target = cached_prune(source, 2)
    assert target == pruned_dir(source, 2) and target.parent == tmp_path / "pruned"
    assert "/" not in target.name and ":" not in target.name
    written = (target / "prune.json").read_text()
    monkeypatch.setattr("protege.models.prune.prune_model", lambda *a, **k: pytest.fail("pruned again"))
    assert cached_prune(source, 2) == target and (target / "prune.json").read_text() == written
    monkeypatch.undo()
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path))
    (target / "prune.json").unlink()  # a folder a kill left without its last file is pruned again
    assert json.loads((cached_prune(source, 2) / "prune.json").read_text())["layers_after"] == 2


def test_a_second_depth_reuses_the_first_depths_layer_scores(deep_dir, tmp_path, monkeypatch):
    """Pruning to several depths (lab/experiments/prune_depth.py) scores the layers once: the second depth takes
    the cached first's scores and keeps the layers a fresh scoring keeps; a cosine prune's scores are not reused."""
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    source = str(deep_dir)
    prune_model(deep_dir, pruned_dir(source, 5), keep_layers=5, method="cosine")  # another method: not reused
    first = json.loads((cached_prune(source, 4) / "prune.json").read_text())
    assert first["method"] == "nll"
    fresh = prune_model(deep_dir, tmp_path / "fresh", keep_layers=3)
    monkeypatch.setattr("protege.models.prune.layer_importance", lambda *a, **k: pytest.fail("scored again"))
    second = json.loads((cached_prune(source, 3) / "prune.json").read_text())
    assert second["scores"] == first["scores"] and second["kept"] == fresh["kept"]
    with pytest.raises(ValueError, match="5 layer scores given for a model of 6 layers"):
        prune_model(deep_dir, tmp_path / "bad", keep_layers=3, scores=first["scores"][:5])
