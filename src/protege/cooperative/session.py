"""One model's side of a cooperative answer: an incremental decoder that keeps its KV cache across turns.

    s = LocalSession(lm, [{"role": "user", "content": "2+2?"}])   # the prompt under lm's OWN chat template
    chunk = s.step(5)          # propose up to 5 tokens after the answer so far: Chunk(text, n_tokens, eos)
    s.append(chunk.text[:3])   # commit text: a kept prefix of the own proposal, or the other model's text
    s.text                     # the shared answer so far; decode(s.ids) == decode(prompt ids) + s.text

Hand-off rule (text is shared by characters, each model keeps its OWN token sequence):
  - own proposal: the generated tokens whose decoding is a prefix of the kept text stay as generated (their
    KV entries too); the cache is cropped to drop the rest; leftover kept characters (a cut inside a token) are
    tokenised on their own.
  - the other model's text is tokenised on its own and appended, so only the new tokens are encoded on top of
    the cache, never the whole prefix.
  - tokenising a piece on its own can differ from tokenising the whole string (BPE merges across the seam, a
    partial UTF-8 character, a prefix space). That is fine as long as the sequence still decodes to exactly the
    shared text, which is checked after every append; where it does not, the whole answer is re-tokenised and
    the cache is cropped back to the longest common token prefix, so only the differing tail is re-encoded
    (counted in stats["retokenized"]).
`reencode=True` drops the cache at every turn and feeds the whole sequence again (same tokens, so greedy
decoding must match the cached run exactly): the correctness oracle for the cache and the slow baseline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from protege.models.base import Prompt


@dataclass
class Chunk:
    text: str
    n_tokens: int  # tokens decoded for it, an end-of-sequence token included
    eos: bool  # the model ended its answer right after `text`


class Session(Protocol):
    text: str

    def step(self, n_tokens: int) -> Chunk:
        """Propose up to n_tokens after `text`; nothing is committed until `append`."""
        ...

    def append(self, text: str) -> None:
        """Commit `text` to the shared answer (a pending proposal is reconciled with it, or dropped)."""
        ...


class LocalSession:
    """A LocalLM decoding one answer incrementally (batch of one, KV cache kept between turns)."""

    def __init__(self, lm, prompt: Prompt, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
                 reencode: bool = False):
        self.lm, self.tok = lm, lm.tokenizer
        self.temperature, self.top_p, self.reencode = temperature, top_p, reencode
        self.prompt_ids = self._encode(lm.render(prompt))
        self.ids = list(self.prompt_ids)
        self.text = ""
        self._prompt_decoded = self._decode(self.prompt_ids)
        self._cache = None
        self._cached = 0  # leading tokens of ids (+ proposal) whose keys/values are in the cache
        self._proposal: list[int] | None = None
        eos = lm.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {t for t in eos + [self.tok.eos_token_id] if t is not None}
        self._gen = torch.Generator(device=lm.device).manual_seed(seed)  # sampling stays on the model's device
        # fed: tokens run through the model (prompt prefill included); compare with generated for KV reuse.
        self.stats = {"generated": 0, "fed": 0, "forwards": 0, "rollbacks": 0, "retokenized": 0}

    # -- tokens ---------------------------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _continuation(self, new: list[int]) -> str:
        """The text `new` adds after ids, decoded in context (a leading space or a completed byte survives)."""
        base = self._prompt_decoded + self.text
        full = self._decode(self.ids + new)
        return full[len(base):] if full.startswith(base) else self._decode(new)

    # -- the model ------------------------------------------------------------------------------------------
    def _forward(self, tokens: list[int]) -> torch.Tensor:
        ids = torch.tensor([tokens], device=self.lm.device)
        with torch.inference_mode(), self.lm.autocast():
            # logits_to_keep=1: a prefill of many tokens needs only the last position's logits
            out = self.lm.model(input_ids=ids, past_key_values=self._cache, use_cache=True, logits_to_keep=1)
        self._cache = out.past_key_values
        self._cached += len(tokens)
        self.stats["fed"] += len(tokens)
        self.stats["forwards"] += 1
        return out.logits[0, -1].float()

    def _rollback_to(self, n: int) -> None:
        remove = self._cached - n
        if remove <= 0:
            return
        self.stats["rollbacks"] += 1
        if self._cache is not None and getattr(self._cache, "is_croppable", True):
            self._cache.crop(-remove)
            self._cached = n
        else:  # e.g. a sliding-window layer that already forgot: start again from the sequence
            self._cache, self._cached = None, 0

    def _pick(self, logits: torch.Tensor) -> int:
        if self.temperature <= 0:
            return int(logits.argmax())
        probs = torch.softmax(logits / self.temperature, -1)
        if self.top_p < 1:
            sorted_p, order = probs.sort(descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p >= self.top_p  # keep the smallest head reaching top_p
            sorted_p[drop] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        return int(torch.multinomial(probs, 1, generator=self._gen))

    # -- the Session protocol -------------------------------------------------------------------------------
    def _begin_step(self, n_tokens: int) -> None:
        """Checks before a step, and at least the last token left to run (batched.py steps through this too)."""
        if self._proposal is not None:
            raise RuntimeError("step() called twice without append(); commit the kept text (or '') first")
        if n_tokens < 1:
            raise ValueError(f"n_tokens must be >= 1 (got {n_tokens})")
        if self.reencode:
            self._cache, self._cached = None, 0
        # The last position's logits are not kept between turns: re-feed at least one token.
        self._rollback_to(min(self._cached, len(self.ids) - 1))

    def _propose(self, new: list[int], eos: bool) -> Chunk:
        """Hold the decoded tokens as the pending proposal (nothing committed until append) and describe them."""
        self._proposal = new
        self.stats["generated"] += len(new) + eos
        return Chunk(self._continuation(new), len(new) + eos, eos)

    def step(self, n_tokens: int) -> Chunk:
        self._begin_step(n_tokens)
        logits = self._forward(self.ids[self._cached:])
        new: list[int] = []
        eos = False
        for i in range(n_tokens):
            t = self._pick(logits)
            if t in self.eos_ids:
                eos = True
                break
            new.append(t)
            if i + 1 < n_tokens:  # the last token is fed next turn, and only if it is kept
                logits = self._forward([t])
        return self._propose(new, eos)

    def append(self, text: str) -> None:
        proposal, self._proposal = self._proposal or [], None
        keep, kept_text = 0, ""
        for k in range(len(proposal), 0, -1):  # longest run of own tokens that the kept text starts with
            d = self._continuation(proposal[:k])
            if text.startswith(d):
                keep, kept_text = k, d
                break
        self._rollback_to(min(self._cached, len(self.ids) + keep))
        self.ids += proposal[:keep]
        rest = text[len(kept_text):]
        if rest:
            self.ids += self._encode(rest)
        self.text += text
        if self._decode(self.ids) != self._prompt_decoded + self.text:
            self._retokenize()

    def _retokenize(self) -> None:
        ids = self.prompt_ids + self._encode(self.text)
        if self._decode(ids) != self._prompt_decoded + self.text:
            raise ValueError(f"{self.lm.name}: its tokenizer does not round-trip the shared answer text "
                             f"(...{self.text[-40:]!r}); cooperative decoding needs a lossless tokenizer")
        common = 0
        while common < min(len(ids), len(self.ids)) and ids[common] == self.ids[common]:
            common += 1
        self._rollback_to(min(self._cached, common))
        self.ids = ids
        self.stats["retokenized"] += 1

    @property
    def answer_ids(self) -> list[int]:
        return self.ids[len(self.prompt_ids):]


def open_session(lm, prompt: Prompt, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
                 reencode: bool = False, render: Callable[[Prompt], str] | None = None) -> Session:
    """A LocalSession for a local model; a CompletionSession (remote.py) for an OpenAI-compatible one, whose
    chat template is unknown here: pass `render` (e.g. a LocalLM of the same family's .render) for a chat."""
    if hasattr(lm, "model") and hasattr(lm, "tokenizer") and hasattr(lm, "render"):
        return LocalSession(lm, prompt, temperature, top_p, seed, reencode)
    from protege.cooperative.remote import CompletionSession

    if isinstance(prompt, str):
        text = prompt
    elif render is not None:
        text = render(prompt)
    else:
        raise ValueError(f"{getattr(lm, 'name', lm)}: a remote model continues raw text through /completions, "
                         "so a chat prompt needs its chat template: pass render= (e.g. a local copy's "
                         "LocalLM.render) or a prompt already rendered as a string")
    return CompletionSession(lm, text, temperature, top_p, seed)
