"""Offline top-k teacher-logit cache: written once per (teacher, examples, k, temperature), read while training.

    write_logit_cache(folder, teacher_model, examples, k=64, temperature=2.0, batch_size=8)
    write_logit_cache(folder, ServedTeacher(openai_lm, student, V), examples, ...)   # an endpoint's (served_teacher.py)
    cache = LogitCache(folder, k=64, temperature=2.0, vocab_size=V, examples=examples)
    indices, logp = cache.get(i)        # [n_i, k] each: example i's answer positions, in order
    teacher = cache.batch([i, j])       # a TopKTeacher for balanced_kd_loss (train/kd_loss.py)

`examples` are {"input_ids", "labels"} dicts with labels -100 on the prompt (train/sft.py `build_examples`).
Logits at position t predict token t + 1, so the cache holds the teacher's distribution at exactly the positions
t whose next label labels[t + 1] is not -100 (`answer_positions`), in order: the same rows as
`hidden[:, :-1][labels[:, 1:] != -100]` in the student.

Layout: shard-00000.safetensors, ... each holding `shard_examples` consecutive examples as `indices`
[tokens, k] (uint16 when V <= 65536, else int32), `logp` [tokens, k] float16 (log-softmax at the temperature,
most likely first) and `offsets` [examples + 1] int64 into those rows. Every file is written to a temp name and
moved into place, so a shard on disk is complete. `settings.json` (written before the first shard) lets a
restarted writer refuse to mix settings; it skips finished shards, and shards are batched from their own first
example, so a resumed cache is byte-identical to an unbroken one. `meta.json`, written last, means complete:
k, temperature, vocab size, dtypes, examples, tokens, bytes and bytes per token.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from tqdm import tqdm

from protege.train.kd_loss import TopKTeacher, topk_teacher

FORMAT = 1


class LogitCacheMismatch(ValueError):
    """The cache on disk was written with other settings or for other examples than the caller expects."""


def answer_positions(labels: list[int]) -> list[int]:
    """Positions t whose logits predict an answer token, i.e. labels[t + 1] != -100."""
    return [t for t in range(len(labels) - 1) if labels[t + 1] != -100]


def _fingerprint(examples: list[dict]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([list(e["input_ids"]), list(e["labels"])]).encode())
    return h.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _save_shard(path: Path, tensors: dict[str, np.ndarray], vocab: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"vocab_size": str(vocab)})
    os.replace(tmp, path)


def _shard_path(folder: Path, j: int) -> Path:
    return folder / f"shard-{j:05d}.safetensors"


@torch.inference_mode()
def _teacher_rows(model, batch: list[dict], k: int, temperature: float) -> tuple[list[TopKTeacher], int]:
    """Top-k at the answer positions of each example of one right-padded batch, and the logits' vocab size."""
    length = max(len(e["input_ids"]) for e in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    mask = torch.zeros(len(batch), length, dtype=torch.long)
    for b, e in enumerate(batch):
        ids[b, :len(e["input_ids"])] = torch.tensor(e["input_ids"])
        mask[b, :len(e["input_ids"])] = 1
    # Full logits of the batch (batch_size bounds their [B, L, V] memory); the model's own head applies any
    # soft-capping or scaling it has, which a hand-made hidden @ lm_head would miss.
    logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
    vocab = logits.shape[-1]
    if k > vocab:
        raise ValueError(f"k = {k} is larger than the teacher's vocabulary of {vocab}")
    rows = [topk_teacher(logits[b, answer_positions(e["labels"])], k, temperature) for b, e in enumerate(batch)]
    return [TopKTeacher(r.indices.cpu(), r.logp.cpu()) for r in rows], vocab  # the cache is written from the host


def write_logit_cache(folder, teacher_model, examples: list[dict], k: int, temperature: float, batch_size: int,
                      progress: bool = True, shard_examples: int = 512) -> dict:
    """Write (or finish writing) the cache for `examples` into `folder`; returns meta.json's contents."""
    folder = Path(folder)
    if not examples:
        raise ValueError("no examples to cache teacher logits for")
    if min(k, batch_size, shard_examples) < 1 or temperature <= 0:
        raise ValueError(f"k, batch_size and shard_examples must be >= 1 and temperature > 0 (got k = {k}, "
                         f"batch_size = {batch_size}, shard_examples = {shard_examples}, temperature = {temperature})")
    folder.mkdir(parents=True, exist_ok=True)
    for e in examples:
        if len(e["input_ids"]) != len(e["labels"]):
            raise ValueError("every example needs as many labels as input_ids (labels -100 on the prompt)")
    served = hasattr(teacher_model, "topk_rows")  # train/served_teacher.py: an endpoint's log-probabilities
    name = teacher_model.name if served else str(getattr(teacher_model.config, "name_or_path", ""))
    settings = {"format": FORMAT, "k": k, "temperature": float(temperature), "num_examples": len(examples),
                "shard_examples": shard_examples, "examples_sha256": _fingerprint(examples), "teacher": name}
    settings_path = folder / "settings.json"
    if settings_path.exists():
        old = json.loads(settings_path.read_text())
        if old != settings:
            changed = sorted(key for key in settings if old.get(key) != settings[key])
            raise LogitCacheMismatch(f"{folder} holds a cache written with other settings ({', '.join(changed)} "
                                     "differ); write to another folder, or delete this one to rewrite it")
    else:
        _write_json(settings_path, settings)
    if (folder / "meta.json").exists():
        return json.loads((folder / "meta.json").read_text())

    n_shards = math.ceil(len(examples) / shard_examples)
    done = [j for j in range(n_shards) if _shard_path(folder, j).exists()]
    bar = tqdm(total=len(examples), desc="teacher top-k logits", unit="ex", disable=not progress,
               initial=sum(len(examples[j * shard_examples:(j + 1) * shard_examples]) for j in done))
    rows_of = teacher_model.topk_rows if served else (lambda b, k, t: _teacher_rows(teacher_model, b, k, t))
    was_training = not served and teacher_model.training
    if not served:
        teacher_model.eval()  # dropout would make the cache differ run to run
    try:
        for j in range(n_shards):
            if j in done:
                continue
            shard = examples[j * shard_examples:(j + 1) * shard_examples]
            rows = []
            for start in range(0, len(shard), batch_size):
                got, vocab = rows_of(shard[start:start + batch_size], k, temperature)
                rows.extend(got)
                bar.update(len(got))
            index_dtype = _index_dtype(vocab)
            counts = [len(r) for r in rows]
            _save_shard(_shard_path(folder, j), {
                "indices": np.concatenate([r.indices.numpy() for r in rows]).astype(index_dtype).reshape(-1, k),
                "logp": np.concatenate([r.logp.numpy() for r in rows]).astype(np.float16).reshape(-1, k),
                "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)}, vocab)
    finally:
        bar.close()
        if not served:
            teacher_model.train(was_training)
    return _finish(folder, settings, n_shards)


def _finish(folder: Path, settings: dict, n_shards: int) -> dict:
    """meta.json from the shards on disk (so a resumed write that computed none of them gets it right too)."""
    tokens = nbytes = 0
    vocabs = set()
    for j in range(n_shards):
        path = _shard_path(folder, j)
        with safe_open(str(path), framework="numpy") as f:
            tokens += int(f.get_tensor("offsets")[-1])
            vocabs.add(int(f.metadata()["vocab_size"]))
        nbytes += path.stat().st_size
    if len(vocabs) != 1:
        raise LogitCacheMismatch(f"the shards in {folder} come from teachers with different vocabularies "
                                 f"({sorted(vocabs)}); delete the folder and write the cache again")
    vocab = vocabs.pop()
    meta = {**settings, "vocab_size": vocab, "index_dtype": np.dtype(_index_dtype(vocab)).name,
            "logp_dtype": "float16", "shards": n_shards, "tokens": tokens, "bytes": nbytes,
            "bytes_per_token": nbytes / max(tokens, 1)}
    _write_json(folder / "meta.json", meta)
    return meta


def _index_dtype(vocab: int):
    return np.uint16 if vocab <= 65536 else np.int32


class LogitCache:
    """Read a finished cache; pass the settings you expect and the cache refuses to serve anything else."""

    def __init__(self, folder, k: int | None = None, temperature: float | None = None,
                 vocab_size: int | None = None, examples: list[dict] | None = None):
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"no finished logit cache in {self.folder} (meta.json is missing): run "
                                    "write_logit_cache again on the same folder to resume it")
        self.meta = json.loads(meta_path.read_text())
        asked = {"k": k, "temperature": temperature, "vocab_size": vocab_size}
        for key, want in asked.items():
            if want is not None and not math.isclose(float(want), float(self.meta[key])):
                raise LogitCacheMismatch(f"{self.folder} was written with {key} = {self.meta[key]}, but {want} "
                                         f"was asked for; rewrite the cache with {key} = {want} in a new folder")
        self.k, self.shard_examples = self.meta["k"], self.meta["shard_examples"]
        self._files = [safe_open(str(_shard_path(self.folder, j)), framework="numpy")
                       for j in range(self.meta["shards"])]
        self._offsets = [f.get_tensor("offsets") for f in self._files]
        if examples is not None:
            self._check_examples(examples)

    def __len__(self) -> int:
        return self.meta["num_examples"]

    @property
    def bytes_per_token(self) -> float:
        return self.meta["bytes_per_token"]

    def _check_examples(self, examples: list[dict]) -> None:
        if len(examples) != len(self):
            raise LogitCacheMismatch(f"{self.folder} holds {len(self)} examples, {len(examples)} were given")
        for i, e in enumerate(examples):
            expected = len(answer_positions(e["labels"]))
            if self.count(i) != expected:
                raise LogitCacheMismatch(f"example {i} has {expected} answer positions but the cache in "
                                         f"{self.folder} holds {self.count(i)}: it was written for other examples")
        if _fingerprint(examples) != self.meta["examples_sha256"]:
            raise LogitCacheMismatch(f"{self.folder} was written for other examples (same answer lengths, "
                                     "different tokens); rewrite it for these examples")

    def count(self, i: int) -> int:
        offsets = self._offsets[i // self.shard_examples]
        r = i % self.shard_examples
        return int(offsets[r + 1] - offsets[r])

    def get(self, i: int, n_tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Example i's (indices LongTensor [n_i, k], logp FloatTensor [n_i, k]); n_tokens checks n_i."""
        if not 0 <= i < len(self):
            raise IndexError(f"example {i} is outside the cache's {len(self)} examples")
        shard, r = divmod(i, self.shard_examples)
        a, b = int(self._offsets[shard][r]), int(self._offsets[shard][r + 1])
        if n_tokens is not None and n_tokens != b - a:
            raise LogitCacheMismatch(f"example {i} has {n_tokens} answer positions but the cache in "
                                     f"{self.folder} holds {b - a}: it was written for other examples")
        f = self._files[shard]
        indices = torch.from_numpy(f.get_slice("indices")[a:b].astype(np.int64))
        logp = torch.from_numpy(f.get_slice("logp")[a:b].astype(np.float32))
        return indices, logp

    def batch(self, ids: list[int]) -> TopKTeacher:
        """The teacher rows of several examples, concatenated in the order given."""
        return TopKTeacher.concat([self.get(i) for i in ids])
