"""A teacher behind an OpenAI-compatible endpoint (vLLM, `protege serve`) as a source of top-k log-probabilities
for the offline KD cache (train/logit_cache.py), so a teacher too large for this machine can still teach through
its logits, not only its text:

    train: {method: kd, kd: {teacher: "openai:Qwen2.5-Coder-32B-Instruct@http://gpu-box:8000/v1", top_k: 20}}

Each training sequence goes out once as token ids (/v1/completions with echo, logprobs K, max_tokens 0, tokens as
ids); the answer's top-k at position t + 1 is the distribution the logits at t give, which is what the cache
stores for a local teacher. The cache is then read exactly as a local teacher's. Limits, each refused with its
message: the endpoint's tokenizer must be the student's (checked by tokenizing a probe text on both sides); the
endpoint gives log-probabilities at temperature 1, so train.kd.temperature must be 1; the online signal needs the
teacher in memory. Servers cap K (vLLM's --max-logprobs, 20 by default): positions with fewer entries than
train.kd.top_k are padded with zero-probability entries, i.e. a smaller k.
"""
from __future__ import annotations

import torch

from protege.train.kd_loss import TokenizerMismatch, TopKTeacher
from protege.train.logit_cache import answer_positions

PROBE = "def mean(xs):\n    return sum(xs) / len(xs)  # Größe, naïve café, 東京, 3.14159 ✓"


class ServedTeacher:
    def __init__(self, lm, student, vocab_size: int):
        self.lm, self.name, self.vocab_size = lm, lm.name, vocab_size
        self._check_tokenizer(student)

    def _check_tokenizer(self, student) -> None:
        theirs = self.lm.echo_token_ids(PROBE)
        ours = student.tokenizer(PROBE)["input_ids"]
        if theirs != ours:
            raise TokenizerMismatch(
                f"train.kd.teacher {self.name} tokenizes a probe text into {len(theirs)} tokens, the student "
                f"{student.name} into {len(ours)} (first difference at token "
                f"{next((i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b), min(len(theirs), len(ours)))}); "
                "logit distillation from an endpoint needs the student's tokenizer. Use train.method=sft "
                "(distillation through the teacher's text), or serve a teacher of the student's family")

    def topk_rows(self, batch: list[dict], k: int, temperature: float) -> tuple[list[TopKTeacher], int]:
        """The cache rows of a batch of {"input_ids", "labels"} examples, as _teacher_rows gives them locally."""
        if temperature != 1:
            raise ValueError(f"train.kd.temperature: {temperature}; an endpoint gives log-probabilities at "
                             "temperature 1 only, so set train.kd.temperature: 1 for a served teacher")
        dists = self.lm.prompt_logprobs([e["input_ids"] for e in batch], k)
        rows = []
        for example, per_token in zip(batch, dists):
            indices, logp = [], []
            for t in answer_positions(example["labels"]):
                ranked = sorted((per_token[t + 1] or {}).items(), key=lambda kv: -kv[1])[:k]
                ranked += [(0, float("-inf"))] * (k - len(ranked))  # fewer than k served: zero-probability pads
                indices.append([i for i, _ in ranked])
                logp.append([lp for _, lp in ranked])
            rows.append(TopKTeacher(torch.tensor(indices, dtype=torch.long).reshape(-1, k),
                                    torch.tensor(logp, dtype=torch.float32).reshape(-1, k)))
        return rows, self.vocab_size
