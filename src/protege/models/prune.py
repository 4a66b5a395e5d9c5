"""Depth pruning: drop a causal LM's least important decoder layers, so the student keeps its teacher's tokenizer.

    from protege.models.prune import prune_model
    info = prune_model("bundled:smollm2-135m-instruct", "students/smollm2-20l", keep_layers=20)
    # students/smollm2-20l is a normal HF folder (AutoModelForCausalLM.from_pretrained) plus prune.json

Lower level, on a loaded model: `scores = layer_importance(model, tok, texts)`, then `prune_layers(model, 20, scores)`.

Importance is measured on calibration text (default: the start of a few human-written stdlib modules):
    nll     the rise in mean per-token NLL when that one layer is skipped (made an identity). The default,
            because it measures what pruning costs directly. SmolLM2-135M 30 -> 20 layers, 2048 calibration
            tokens, NLL on held-out shlex.py (1.99 unpruned): 3.93 after nll, 5.03 after cosine. It costs one
            pass per layer; layers before the skipped one are replayed from a cached hidden state, so that is
            about half of n full forwards: for SmolLM2 on one CPU core ~3 min by a per-pass profile, 5.5 min
            measured on a busy shared host (7 min for all of prune_model); max_tokens=1024 halves it (4.07).
    cosine  ShortGPT's "block influence" (Gromov et al. similar): 1 - mean cosine(layer input, layer output) over
            tokens. One forward pass (~8 s for SmolLM2). Inputs and outputs come from hooks on the layers, not
            output_hidden_states, whose last entry is taken after the final norm in transformers 5.
Either way one-shot pruning costs a lot (see the numbers): the pruned model is a starting point to distil into.
Supports models whose decoder layers sit at `model.model.layers`: tested on Llama (SmolLM2, tiny) and, for
prune_layers, a tiny Gemma 3 text model; others of that shape (Qwen, Mistral) should work but are untested.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import get_args

import torch
import torch.nn.functional as F

from protege.choices import Importance

METHODS = get_args(Importance)
DEFAULT_METHOD = "nll"
CALIBRATION_FILES = ("textwrap.py", "string.py", "json/encoder.py")
SEQ_LEN = 512  # tokens per calibration chunk: long enough for real context, short enough for CPU attention


def default_calibration() -> list[str]:
    """Human-written Python from this interpreter's standard library, in a fixed order."""
    root = Path(os.__file__).parent
    return [(root / name).read_text(encoding="utf-8") for name in CALIBRATION_FILES]


def decoder_layers(model) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    """(module holding `.layers`, the layer list), refusing models this module cannot prune."""
    inner = getattr(model, "model", None)
    if not isinstance(getattr(inner, "layers", None), torch.nn.ModuleList):
        inner = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(inner, "layers", None)
    n = getattr(model.config, "num_hidden_layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) != n:
        raise ValueError(
            f"cannot prune {type(model).__name__}: depth pruning needs a decoder-only causal LM whose layers sit "
            "at model.model.layers with config.num_hidden_layers matching (Llama/SmolLM2, Gemma 3 text)"
        )
    return inner, layers


def calibration_chunks(tokenizer, texts: list[str], max_tokens: int) -> list[torch.Tensor]:
    """max_tokens shared evenly over the texts (a short text's unused share passes on), each tokenised on its
    own and cut into SEQ_LEN pieces: no padding anywhere, and no one long text crowding out the rest."""
    encoded = sorted((tokenizer(text, return_tensors="pt").input_ids[0] for text in texts), key=len)
    chunks, left = [], max_tokens
    for k, ids in enumerate(encoded):
        ids = ids[:left // (len(encoded) - k)]
        left -= len(ids)
        pieces = (ids[start:start + SEQ_LEN] for start in range(0, len(ids), SEQ_LEN))
        chunks += [piece[None] for piece in pieces if len(piece) >= 2]  # one token predicts nothing
    if not chunks:
        raise ValueError("calibration texts gave no tokens: pass non-empty texts")
    return chunks


@contextmanager
def _recording(layers):
    """Each layer's (input, output) from the forward passes run inside, keyed by layer index."""
    seen: dict = {}
    hooks = [layer.register_forward_hook(
        lambda mod, args, kwargs, out, i=i: seen.__setitem__(i, (args[0] if args else kwargs["hidden_states"], out)),
        with_kwargs=True) for i, layer in enumerate(layers)]
    try:
        yield seen
    finally:
        for handle in hooks:
            handle.remove()


@contextmanager
def _skipping(layers, skip: int, cached_input: torch.Tensor, as_tuple: bool):
    """Layers 0..skip-1 do nothing and layer `skip` hands on its cached input (so it acts as an identity).

    Each instance's `forward` is swapped, not the module itself, so any attribute the model's layer loop
    reads from its layers stays in place.
    """
    def passthrough(hidden_states, *args, **kwargs):
        return (hidden_states,) if as_tuple else hidden_states

    for i in range(skip + 1):
        layers[i].forward = passthrough if i < skip else lambda *args, **kwargs: passthrough(cached_input)
    try:
        yield
    finally:
        for i in range(skip + 1):
            del layers[i].forward


def _nll_sum(model, ids: torch.Tensor) -> float:
    logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
    return F.cross_entropy(logits, ids[0, 1:], reduction="sum").item()


@torch.no_grad()
def mean_nll(model, chunks: list[torch.Tensor]) -> float:
    """Mean per-token negative log-likelihood (nats) of the chunks."""
    model.eval()
    return sum(_nll_sum(model, ids) for ids in chunks) / sum(ids.shape[1] - 1 for ids in chunks)


@torch.no_grad()
def layer_importance(model, tokenizer, texts: list[str] | None = None, max_tokens: int = 2048,
                     method: str = DEFAULT_METHOD) -> list[float]:
    """One score per decoder layer, higher = more important (see the module docstring for the methods)."""
    if method not in METHODS:
        raise ValueError(f"unknown importance method {method!r}; choose one of {list(METHODS)}")
    inner, layers = decoder_layers(model)
    chunks = calibration_chunks(tokenizer, default_calibration() if texts is None else texts, max_tokens)
    model.eval()
    total = [0.0] * len(layers)
    for ids in chunks:
        with _recording(layers) as seen:
            if method == "cosine":
                inner(input_ids=ids, use_cache=False)  # skips the LM head: only the hooks' records matter
            else:
                base = _nll_sum(model, ids)
        for i, (inp, out) in seen.items():
            as_tuple = isinstance(out, tuple)  # older decoder layers return (hidden_states, ...)
            if method == "cosine":
                out = out[0] if as_tuple else out
                total[i] += (1 - F.cosine_similarity(inp.float(), out.float(), dim=-1)).sum().item()
                continue
            with _skipping(layers, i, inp, as_tuple):
                total[i] += _nll_sum(model, ids) - base
    tokens = sum(ids.shape[1] - (1 if method == "nll" else 0) for ids in chunks)
    return [t / tokens for t in total]


def _check_keep(keep: int, n: int) -> None:
    if not 1 <= keep < n:
        raise ValueError(f"--keep-layers {keep} is out of range: this model has {n} decoder layers, "
                         f"so keep between 1 and {n - 1}")


def _prune(model, keep: int, scores: list[float]) -> tuple[list[int], list[str]]:
    """prune_layers' work; returns (kept layer indices, names of the per-layer config lists it cut)."""
    inner, layers = decoder_layers(model)
    n = len(layers)
    _check_keep(keep, n)
    if len(scores) != n:
        raise ValueError(f"got {len(scores)} importance scores for a model with {n} decoder layers")
    kept = sorted(sorted(range(n), key=lambda i: (-scores[i], i))[:keep])
    inner.layers = torch.nn.ModuleList([layers[i] for i in kept])
    for new, layer in enumerate(inner.layers):
        # The KV cache is indexed by layer_idx: stale indices would make generate() read other layers' keys.
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new
    cut = []
    for config in {id(model.config): model.config, id(inner.config): inner.config}.values():
        for name, value in list(vars(config).items()):
            # Per-layer lists (layer_types, mlp_layer_types, no_rope_layers...) follow the layers they describe;
            # token-id lists merely happen to be lists.
            if (isinstance(value, (list, tuple)) and len(value) == n and not name.startswith("_")
                    and not name.endswith(("token_id", "token_ids")) and name != "architectures"):
                setattr(config, name, type(value)(value[i] for i in kept))
                cut.append(name)
        config.num_hidden_layers = keep
    return kept, sorted(set(cut))


def prune_layers(model, keep: int, scores: list[float]):
    """Keep the `keep` highest-scoring layers in their original order; fix the config and layer indices in place."""
    _prune(model, keep, scores)
    return model


def _param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() counts tied embeddings once


def prune_model(source, out_dir, keep_layers: int, calibration_texts: list[str] | None = None,
                method: str = DEFAULT_METHOD, max_tokens: int = 2048, tokenizer=None,
                overwrite: bool = False, scores: list[float] | None = None) -> dict:
    """Score, prune and save `source` (a folder, a protege model name, or a loaded model with `tokenizer`).

    Writes out_dir as an HF folder plus prune.json (the returned dict) via a temp dir renamed at the end;
    overwrite=True replaces an existing out_dir. A loaded model is pruned in place. `scores`: the layer
    importances of an earlier prune of the same source, method and calibration (its prune.json "scores"), so
    pruning to several depths scores the layers once.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start, out_dir = time.time(), Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists: remove it or choose another output folder")
    if method not in METHODS:
        raise ValueError(f"unknown importance method {method!r}; choose one of {list(METHODS)}")
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.is_dir():
            from protege.models.resolve import model_dir
            folder = model_dir(str(source))
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(folder)
    elif tokenizer is None:
        raise ValueError("prune_model got a loaded model but no tokenizer: pass tokenizer=")
    else:
        model, folder = source, getattr(source, "name_or_path", "")
    n = len(decoder_layers(model)[1])  # also refuses unsupported models before scoring
    _check_keep(keep_layers, n)  # before minutes of scoring
    texts = default_calibration() if calibration_texts is None else calibration_texts
    chunks = calibration_chunks(tokenizer, texts, max_tokens)
    params_before, nll_before = _param_count(model), mean_nll(model, chunks)
    if scores is None:
        scores = layer_importance(model, tokenizer, texts, max_tokens=max_tokens, method=method)
    elif len(scores) != n:
        raise ValueError(f"{len(scores)} layer scores given for a model of {n} layers: pass the scores of a prune "
                         "of this same model, or none to score its layers here")
    kept, cut = _prune(model, keep_layers, scores)
    info = {
        "source": str(folder), "method": method, "layers_before": n, "layers_after": keep_layers,
        "scores": scores, "kept": kept, "dropped": [i for i in range(n) if i not in kept],
        "config_lists_cut": cut,
        "calibration": list(CALIBRATION_FILES) if calibration_texts is None else f"{len(texts)} texts given",
        "calibration_tokens": sum(ids.shape[1] for ids in chunks),
        "calibration_nll": {"before": nll_before, "after": mean_nll(model, chunks)},
        "params_before": params_before, "params_after": _param_count(model),
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info["seconds"] = round(time.time() - start, 1)
        (tmp / "prune.json").write_text(json.dumps(info, indent=2))  # written last: the folder is complete
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def pruned_dir(source: str, keep_layers: int) -> Path:
    """Where `protege student prune` (and the experiments) keep `source` pruned to `keep_layers` by default: the
    cache's pruned/<source>-keep<N>."""
    from protege.models.resolve import cache_dir

    return cache_dir() / "pruned" / f"{source.replace(':', '-').replace('/', '-')}-keep{keep_layers}"


def cached_prune(source: str, keep_layers: int) -> Path:
    """`source` pruned to `keep_layers` by NLL importance once, then reused from pruned_dir (prune.json is written
    last, so a folder with it is complete). The layer scores of another cached depth of the same source are
    reused, so a second depth costs no scoring."""
    target = pruned_dir(source, keep_layers)
    if not (target / "prune.json").exists():
        prune_model(source, target, keep_layers, overwrite=True, scores=_cached_scores(source))
    return target


def _cached_scores(source: str) -> list[float] | None:
    """The NLL layer scores on the default calibration from any cached depth of `source`, if one exists."""
    any_depth = pruned_dir(source, 0)
    for info_file in sorted(any_depth.parent.glob(any_depth.name.removesuffix("0") + "*/prune.json")):
        info = json.loads(info_file.read_text())
        if info.get("method") == DEFAULT_METHOD and info.get("calibration") == list(CALIBRATION_FILES):
            return info["scores"]
    return None
