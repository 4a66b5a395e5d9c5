"""A cooperative session for a model behind an OpenAI-compatible /v1/completions endpoint (OpenAILM).

    s = CompletionSession(OpenAILM("smol", "http://127.0.0.1:8000/v1"), rendered_prompt)
    s.step(10); s.append(kept)

OpenAILM.generate sends a string prompt to /completions as raw text, so each turn sends the rendered prompt plus
the answer so far with max_tokens = the chunk size. There is no KV reuse across turns here: the server
re-encodes the whole prefix every turn (a server with a prompt-prefix cache, such as llama-server, recovers
part of it). The wire format does not say why a completion stopped (Generation carries no finish_reason), so
fewer tokens than asked is read as the end of the answer; a server that stops for another reason would end
the answer early.
"""
from __future__ import annotations

from protege.cooperative.session import Chunk
from protege.models.base import GenerationConfig


class CompletionSession:
    def __init__(self, lm, prompt_text: str, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0):
        self.lm, self.prompt_text = lm, prompt_text
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        self.text = ""
        self.stats = {"generated": 0, "requests": 0}

    def step(self, n_tokens: int) -> Chunk:
        if n_tokens < 1:
            raise ValueError(f"n_tokens must be >= 1 (got {n_tokens})")
        # A new seed per request: with sampling, the same seed on a grown prompt would still be fine, but a
        # repeated identical request (after an empty cut) must not be forced to repeat itself.
        config = GenerationConfig(max_new_tokens=n_tokens, temperature=self.temperature, top_p=self.top_p,
                                  seed=self.seed + self.stats["requests"])
        gen = self.lm.generate([self.prompt_text + self.text], config)[0]
        self.stats["requests"] += 1
        self.stats["generated"] += gen.tokens_out
        return Chunk(gen.text, gen.tokens_out, eos=gen.tokens_out < n_tokens)

    def append(self, text: str) -> None:
        self.text += text
