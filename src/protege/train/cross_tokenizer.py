"""Logit distillation between a student and a teacher with different tokenizers (train.kd.cross_tokenizer).

    vmap = vocabulary_map(student.tokenizer, teacher.tokenizer)      # built once per pair, cached on disk
    pairs = aligned_positions(student_starts, teacher_starts)        # positions predicting the same character
    teacher_logp = teacher_side(teacher_logits, vmap, T)            # [aligned, shared tokens (+1)], constants
    loss, parts = aligned_kd_loss(hidden, lm_head, targets, rows, teacher_logp, vmap, alpha, T, kind, beta)

The method is token alignment plus a vocabulary mapping, the family of FuseLLM (Wan et al. 2024, "Knowledge
Fusion of Large Language Models") and TRL's GOLD trainer, kept to its exact core:
- Sequences are aligned by character offsets in the answer: a student position and a teacher position are
  compared when the tokens they predict start at the same character of the answer text, so both models have
  read exactly the same text (each in its own chat template) and predict what comes next from there; and, by
  default (train.kd.align: span), end at the same character too, so both predict the same text. Where the
  two cut the text differently the teacher's distribution describes its own tokenization, not the text: Qwen
  writes a line break and the next line's indentation as two tokens where SmolLM2 writes one, and comparing
  there (align: start) taught a SmolLM2 student Qwen's bare newline at 252 line breaks of 115 MBPP answers,
  the likely reason that student wrote functions ending after their first line (docs/experiments/methods-code.md;
  not yet shown by retraining with span).
- The vocabularies meet on the tokens both have: pairs whose token is the same byte string (byte-level BPE
  tokens are read back to bytes, SentencePiece ones through their U+2581 space and <0xNN> byte tokens), special
  tokens of the same name, and the two end-of-turn tokens, which end the answer in either template. Each side's
  distribution is folded onto those shared tokens plus one bucket for the mass on its own tokens, and the
  divergence (forward/reverse KL or JSD, train/kd_loss.py) is taken between the two folded distributions, as the
  top-k cache folds onto its buckets. Tokens inside a multi-byte character (several tokens starting at one
  character) align at their first token only.
With one tokenizer every position aligns and every token maps to itself with no remaining mass, so the loss is
the same-tokenizer loss (tested). CE stays on all of the student's own answer tokens; KD is the mean over the
aligned positions.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from protege.store import atomic_torch_save
from protege.train.kd_loss import divergence


class UnsupportedTokenizers(ValueError):
    """The pair cannot be aligned (no character offsets, or almost no shared tokens)."""


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet read back: the printable character that stands for each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, n = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def token_bytes(tokenizer) -> dict[int, bytes]:
    """Each ordinary token's text as bytes (special tokens left out)."""
    specials = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    byte_level = "Ġ" in "".join(list(vocab)[:5000]) or "Ċ" in vocab
    decoder = _byte_decoder()
    out = {}
    for token, i in vocab.items():
        if i in specials:
            continue
        if byte_level:
            if all(c in decoder for c in token):
                out[i] = bytes(decoder[c] for c in token)
        elif token.startswith("<0x") and token.endswith(">") and len(token) == 6:
            out[i] = bytes([int(token[3:5], 16)])
        else:
            out[i] = token.replace("▁", " ").encode("utf-8")
    return out


@dataclass(frozen=True)
class VocabularyMap:
    student_ids: torch.Tensor  # [M] long
    teacher_ids: torch.Tensor  # [M] long, the same token as student_ids[j]
    student_size: int
    teacher_size: int

    @property
    def complete(self) -> bool:
        """One tokenizer: every token of each side is mapped, to itself."""
        n = len(self.student_ids)
        return n == self.student_size == self.teacher_size and bool((self.student_ids == self.teacher_ids).all())


def _pair_key(student_tok, teacher_tok) -> str:
    blob = json.dumps([sorted(student_tok.get_vocab().items()), sorted(teacher_tok.get_vocab().items()),
                       student_tok.eos_token, teacher_tok.eos_token])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def vocabulary_map(student_tok, teacher_tok, cache: Path | None = None, min_shared: float = 0.2) -> VocabularyMap:
    """Pairs of (student id, teacher id) for the same byte string, and the end-of-turn pair; read from `cache`
    when built before for this pair (keyed by both vocabularies)."""
    from protege.models.resolve import cache_dir

    folder = Path(cache) if cache is not None else cache_dir() / "vocab-maps"
    path = folder / f"{_pair_key(student_tok, teacher_tok)}.pt"
    if path.exists():
        saved = torch.load(path)
        return VocabularyMap(saved["student_ids"], saved["teacher_ids"], saved["student_size"], saved["teacher_size"])
    s_bytes, t_bytes = token_bytes(student_tok), token_bytes(teacher_tok)
    by_bytes = {b: i for i, b in t_bytes.items()}
    pairs = {i: by_bytes[b] for i, b in s_bytes.items() if b in by_bytes}
    t_vocab = teacher_tok.get_vocab()
    for token in student_tok.all_special_tokens:  # special tokens meet by name (<|im_end|> in both templates)
        if token in t_vocab:
            pairs.setdefault(student_tok.convert_tokens_to_ids(token), t_vocab[token])
    if student_tok.eos_token_id is not None and teacher_tok.eos_token_id is not None:
        pairs.setdefault(student_tok.eos_token_id, teacher_tok.eos_token_id)  # each template's end of turn
    pairs = sorted(pairs.items())
    if len(pairs) < min_shared * len(s_bytes):
        raise UnsupportedTokenizers(f"only {len(pairs)} of the student's {len(s_bytes)} tokens have a teacher token "
                                    "with the same text")
    student_ids = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    teacher_ids = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    vmap = VocabularyMap(student_ids, teacher_ids, len(student_tok), len(teacher_tok))
    atomic_torch_save({"student_ids": student_ids, "teacher_ids": teacher_ids, "student_size": vmap.student_size,
                       "teacher_size": vmap.teacher_size}, path)
    return vmap


def answer_tokens(tokenizer, prefix: str, answer: str) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, answer ids, character start of each answer token within `answer`), tokenised in context as
    train/sft.py does: the answer's tokens are those of prefix + answer after the prefix's own tokens."""
    if not getattr(tokenizer, "is_fast", False):
        raise UnsupportedTokenizers(f"{type(tokenizer).__name__} is not a fast tokenizer: no character offsets")
    p_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    enc = tokenizer(prefix + answer, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"][len(p_ids):], enc["offset_mapping"][len(p_ids):]
    return p_ids, ids, [max(0, start - len(prefix)) for start, _ in offsets]


def token_ends(starts: list[int], text_end: int) -> list[int]:
    """Where each answer token's text ends: the next token's start, and `text_end` for the last; clipped to
    `text_end` (the answer both sides share: each template's own end-of-turn text lies beyond it)."""
    return [min(nxt, text_end) for nxt in starts[1:] + [text_end]]


def aligned_positions(student_starts: list[int], teacher_starts: list[int], student_ends: list[int] | None = None,
                      teacher_ends: list[int] | None = None) -> list[tuple[int, int]]:
    """(k, m) for student answer token k and teacher answer token m that start at the same character, and, where
    the ends are given, also end at the same one (the same text: "span" alignment)."""
    teacher_at = {}
    for m, start in enumerate(teacher_starts):
        teacher_at.setdefault(start, m)
    seen, pairs = set(), []
    for k, start in enumerate(student_starts):
        if start in teacher_at and start not in seen:
            seen.add(start)
            m = teacher_at[start]
            if student_ends is None or student_ends[k] == teacher_ends[m]:
                pairs.append((k, m))
    return pairs


def fold(logp: torch.Tensor, ids: torch.Tensor, complete: bool) -> torch.Tensor:
    """Log-probs over the mapped tokens, plus one bucket for the rest of the mass (none when the map is
    complete, where folding is only a permutation)."""
    mapped = logp.index_select(-1, ids)
    if complete:
        return mapped
    # The rest as the log-sum-exp of the unmapped entries themselves: 1 - sum(mapped) would round to 0 in fp32
    # (its resolution is 6e-8) whenever the mapped tokens hold nearly all the mass, giving log 0 = -inf.
    unmapped = torch.ones(logp.shape[-1], dtype=torch.bool, device=logp.device)
    unmapped[ids] = False
    rest = torch.logsumexp(logp[..., unmapped], dim=-1, keepdim=True)  # finite: every logit is
    return torch.cat([mapped, rest], dim=-1)


def teacher_side(teacher_logits: torch.Tensor, vmap: VocabularyMap, temperature: float) -> torch.Tensor:
    """The teacher's log-probabilities at temperature T folded onto the shared tokens (fold): what the loss
    compares the student with, small enough to keep for every aligned position of a run."""
    return fold(F.log_softmax(teacher_logits.float() / temperature, dim=-1), vmap.teacher_ids, vmap.complete)


def aligned_kd_loss(hidden, lm_head, targets, rows: torch.Tensor, teacher_logp: torch.Tensor,
                    vmap: VocabularyMap, alpha: float, temperature: float, kind: str, beta: float,
                    chunk_tokens: int = 256, means_over: tuple[float, float] | None = None):
    """(1 - alpha) * CE over every answer position + alpha * T^2 * mean KD over the aligned ones.

    hidden [N,H] and targets [N]: the student's answer positions; rows [A]: which of them are aligned;
    teacher_logp [A, shared (+1)]: teacher_side of the teacher's logits at the matching positions (constants).
    `means_over`: the (answer, aligned) position counts the two means divide by, (N, A) unless given; several
    processes give the counts over all of them, so their losses add up to the whole batch's."""
    n, a = hidden.shape[0], rows.shape[0]
    want_ce, want_kd = alpha < 1.0, alpha > 0.0 and a > 0
    zero = hidden.new_zeros((), dtype=torch.float32)

    def ce_chunk(h, tgt):
        return F.cross_entropy(lm_head(h).float(), tgt, reduction="sum")

    def kd_chunk(h, tt):
        s = fold(F.log_softmax(lm_head(h).float() / temperature, dim=-1), vmap.student_ids, vmap.complete)
        return divergence(s, tt, kind, beta).sum()

    def run(fn, *args):
        return checkpoint(fn, *args, use_reentrant=False) if torch.is_grad_enabled() else fn(*args)

    ce_sum, kd_sum = zero, zero
    if want_ce:
        for start in range(0, n, chunk_tokens):
            ce_sum = ce_sum + run(ce_chunk, hidden[start:start + chunk_tokens], targets[start:start + chunk_tokens])
    if want_kd:
        picked = hidden.index_select(0, rows)
        for start in range(0, a, chunk_tokens):
            kd_sum = kd_sum + run(kd_chunk, picked[start:start + chunk_tokens],
                                  teacher_logp[start:start + chunk_tokens].detach())
    n_all, a_all = means_over or (n, a)
    ce_mean, kd_mean = ce_sum / max(n_all, 1), kd_sum / max(a_all, 1)
    loss = (1.0 - alpha) * ce_mean + alpha * temperature ** 2 * kd_mean
    nan = float("nan")
    return loss, {"ce": ce_mean.item() if want_ce else nan, "kd": kd_mean.item() if want_kd else nan,
                  "aligned": a / max(n, 1)}
