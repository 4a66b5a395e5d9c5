"""Logit distillation losses: forward/reverse KL and generalised JSD, on the full vocabulary or top-k buckets.

    loss, parts = balanced_kd_loss(hidden, model.lm_head, targets, teacher, alpha=0.5, temperature=2.0,
                                   kind="forward_kl")
    loss.backward()

`hidden` [N,H] are the student's final hidden states at the answer positions only (those whose next token has
a label, as in train/sft.py `answer_loss`), `targets` [N] those next tokens, and `teacher` either the teacher's
full logits [N,V] at the same positions (online; divided by the temperature here) or a `TopKTeacher` from the
offline cache (train/logit_cache.py; its log-probs were taken at the temperature when the cache was written).

    loss = (1 - alpha) * CE + alpha * T^2 * KD

CE is the cross-entropy at temperature 1 on the gold tokens; KD is the mean over tokens of `divergence` between
softmax(student / T) and the teacher at T. T^2 keeps KD's gradient scale comparable across temperatures
(Hinton et al. 2015). `parts` = {"ce", "kd"} as floats, the mean per token before weighting; a part that alpha
switches off (ce at alpha=1, kd at alpha=0) is not computed and reads NaN.

Top-k buckets: the teacher keeps its k most likely tokens plus one "rest" bucket holding the mass it does not
store; the student's distribution is folded onto the same k+1 buckets (its probabilities at the k indices and its
own remaining mass), and the divergence is taken between the two (k+1)-way distributions. By the data
processing inequality this never exceeds the full-vocabulary divergence; with k = V there is no rest bucket and
the two agree.

Chunking: the projection to the vocabulary and the losses run `chunk_tokens` positions at a time, each chunk
under non-reentrant activation checkpointing, so neither forward nor backward holds more than one chunk's
[chunk, V] logits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

KINDS = ("forward_kl", "reverse_kl", "jsd")
# The teacher's rest bucket never goes below this: float16 log-probs can round the top-k mass up to 1, and a
# zero rest would make reverse KL infinite whenever the student keeps any mass outside the top-k.
REST_FLOOR = 1e-8
NEG_INF = float("-inf")


class TokenizerMismatch(ValueError):
    """The student and teacher tokenizers do not share one vocabulary, so their logits are not comparable."""


@dataclass(frozen=True)
class TopKTeacher:
    """The teacher's k most likely tokens per position: `indices` [N,k] and their `logp` [N,k] at temperature T."""

    indices: torch.Tensor
    logp: torch.Tensor

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, rows: slice) -> "TopKTeacher":
        return TopKTeacher(self.indices[rows], self.logp[rows])

    def to(self, device) -> "TopKTeacher":
        return TopKTeacher(self.indices.to(device), self.logp.to(device))

    @classmethod
    def concat(cls, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> "TopKTeacher":
        """One TopKTeacher from per-example (indices, logp) pairs, in order (what LogitCache.get returns)."""
        return cls(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))


def topk_teacher(logits: torch.Tensor, k: int, temperature: float) -> TopKTeacher:
    """The top-k of softmax(logits / T) in float32, most likely first (what the offline cache stores)."""
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    values, indices = logp.topk(k, dim=-1)
    return TopKTeacher(indices, values)


def _kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) per row from log-probs; entries where P = 0 contribute 0 (0 log 0 = 0), with zero gradient."""
    live = logp > NEG_INF
    # Masking both sides before subtracting keeps -inf - -inf (NaN) out of the forward and the backward.
    lp, lq = logp.masked_fill(~live, 0.0), logq.masked_fill(~live, 0.0)
    return (lp.exp() * (lp - lq)).masked_fill(~live, 0.0).sum(-1)


def _log_mixture(logp: torch.Tensor, logq: torch.Tensor, w: float) -> torch.Tensor:
    """log(w P + (1 - w) Q) elementwise: a two-term logsumexp that stays finite (and NaN-free) where P = Q = 0."""
    a, b = logp + math.log(w), logq + math.log1p(-w)
    hi, lo = torch.maximum(a, b), torch.minimum(a, b)
    return hi + torch.log1p(torch.exp(lo - hi.masked_fill(hi == NEG_INF, 0.0)))


def divergence(student_logp: torch.Tensor, teacher_logp: torch.Tensor, kind: str, beta: float = 0.5):
    """Per-row divergence between two distributions given as log-probs over the same support (last dim).

    forward_kl: KL(T || S), mass-covering.  reverse_kl: KL(S || T), mode-seeking.
    jsd: generalised Jensen-Shannon with weight beta, the convention of TRL's GKD trainer:
        M = beta * T + (1 - beta) * S,   JSD = beta * KL(T || M) + (1 - beta) * KL(S || M),
    symmetric at beta = 0.5 and bounded by log 2 there. beta must lie strictly inside (0, 1): at either end
    M equals one of the two distributions and JSD is identically 0. The rescaled limits are the KLs
    (JSD / beta -> KL(T || S) as beta -> 0, JSD / (1 - beta) -> KL(S || T) as beta -> 1): ask for those by name.
    """
    if kind == "forward_kl":
        return _kl(teacher_logp, student_logp)
    if kind == "reverse_kl":
        return _kl(student_logp, teacher_logp)
    if kind == "jsd":
        if not 0.0 < beta < 1.0:
            raise ValueError(f"jsd needs 0 < beta < 1 (got {beta}): at beta = 0 or 1 it is identically 0; "
                             "use kind='forward_kl' (the beta -> 0 limit) or 'reverse_kl' (beta -> 1) instead")
        mix = _log_mixture(teacher_logp, student_logp, beta)
        return beta * _kl(teacher_logp, mix) + (1.0 - beta) * _kl(student_logp, mix)
    raise ValueError(f"unknown divergence kind {kind!r}; choose one of {', '.join(KINDS)}")


def teacher_buckets(logp_topk: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The teacher's k + 1 bucket log-probs: its top-k and rest = max(1 - sum p_topk, REST_FLOOR), renormalised.

    Renormalising absorbs float16 rounding (the stored top-k can sum to slightly over 1). With k = V there is
    no rest bucket.
    """
    logp = logp_topk.float()
    if logp.shape[-1] == vocab_size:
        return logp - logp.logsumexp(-1, keepdim=True)
    top = logp.logsumexp(-1, keepdim=True)
    # 1 - e^top via expm1: exact to float32 precision even when the top-k holds all but 1e-7 of the mass.
    rest = torch.log(torch.clamp(-torch.expm1(top), min=REST_FLOOR))
    buckets = torch.cat([logp, rest], dim=-1)
    return buckets - buckets.logsumexp(-1, keepdim=True)


def student_buckets(logp_full: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """The student's log-probs [N,V] folded onto the teacher's buckets: its top-k entries, then its rest mass."""
    top = logp_full.gather(-1, indices)
    if indices.shape[-1] == logp_full.shape[-1]:
        return top
    # The rest as a logsumexp over the complement, not log(1 - sum): no cancellation when the top-k holds ~1.
    rest = logp_full.scatter(-1, indices, NEG_INF).logsumexp(-1, keepdim=True)
    return torch.cat([top, rest], dim=-1)


def balanced_kd_loss(hidden, lm_head, targets, teacher, alpha: float, temperature: float,
                     kind: str = "forward_kl", beta: float = 0.5, chunk_tokens: int = 1024):
    """(1 - alpha) * CE + alpha * T^2 * KD over N answer positions, chunked; returns (loss, {"ce", "kd"})."""
    n = hidden.shape[0]
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (got {alpha}): 0 is plain cross-entropy, 1 pure distillation")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    if kind not in KINDS:
        raise ValueError(f"unknown divergence kind {kind!r}; choose one of {', '.join(KINDS)}")
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1 (got {chunk_tokens})")
    if n == 0 or targets.shape[0] != n:
        raise ValueError(f"need one target per hidden state and at least one answer position "
                         f"(got {n} hidden states, {targets.shape[0]} targets)")
    want_ce, want_kd = alpha < 1.0, alpha > 0.0
    topk = isinstance(teacher, TopKTeacher)
    if want_kd:
        if teacher is None:
            raise ValueError(f"alpha = {alpha} distils from the teacher but no teacher logits were given")
        if len(teacher) != n:
            raise ValueError(f"teacher has {len(teacher)} positions, the student {n}: both must be the answer "
                             "positions of the same examples, in the same order")

    def chunk_sums(h, tgt, t_a, t_b):
        z = lm_head(h).float()
        zero = z.new_zeros(())
        ce = F.cross_entropy(z, tgt, reduction="sum") if want_ce else zero
        if not want_kd:
            return ce, zero
        vocab = z.shape[-1]
        s = F.log_softmax(z / temperature, dim=-1)
        if topk:
            if int(t_a.max()) >= vocab:
                raise ValueError(f"teacher top-k index {int(t_a.max())} is outside the student's vocabulary "
                                 f"of {vocab}: the cache was written for another vocabulary")
            s, t = student_buckets(s, t_a), teacher_buckets(t_b, vocab)
        else:
            if t_a.shape[-1] != vocab:
                raise ValueError(f"teacher logits have {t_a.shape[-1]} classes, the student {vocab}: logit "
                                 "distillation needs one vocabulary (see check_same_tokenizer)")
            t = F.log_softmax(t_a.float() / temperature, dim=-1)
        return ce, divergence(s, t, kind, beta).sum()

    ce_sum = kd_sum = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, n, chunk_tokens):
        rows = slice(start, start + chunk_tokens)
        t_a = t_b = None
        if want_kd:
            t_a, t_b = (teacher.indices[rows], teacher.logp[rows]) if topk else (teacher[rows].detach(), None)
        args = (hidden[rows], targets[rows], t_a, t_b)
        if torch.is_grad_enabled():
            ce, kd = checkpoint(chunk_sums, *args, use_reentrant=False)
        else:
            ce, kd = chunk_sums(*args)
        ce_sum, kd_sum = ce_sum + ce, kd_sum + kd
    ce_mean, kd_mean = ce_sum / n, kd_sum / n
    loss = (1.0 - alpha) * ce_mean + alpha * temperature ** 2 * kd_mean
    nan = float("nan")
    return loss, {"ce": ce_mean.item() if want_ce else nan, "kd": kd_mean.item() if want_kd else nan}


def check_same_tokenizer(student_tokenizer, teacher_tokenizer, student_name: str, teacher_name: str) -> None:
    """Raise TokenizerMismatch unless both tokenizers map the same strings to the same ids."""
    s, t = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if s == t:
        return
    differing = sorted(set(s) ^ set(t)) or sorted(tok for tok in s if s[tok] != t[tok])
    example = differing[0]
    detail = (f"the student has {len(s)} tokens, the teacher {len(t)}; e.g. {example!r} is "
              f"{s.get(example, 'absent')} in the student and {t.get(example, 'absent')} in the teacher")
    raise TokenizerMismatch(
        f"Logit distillation needs a shared vocabulary, but student {student_name} and teacher {teacher_name} "
        f"tokenize differently ({detail}). Distil across tokenizers with train.kd.cross_tokenizer=auto (aligned "
        f"by character offsets, on the tokens both share), or use text-level distillation: train.method=sft on "
        f"the teacher's generated text (the default flow); or get a student that shares the teacher's tokenizer "
        f"with `protege student prune --from {teacher_name}`.")
