"""The one small interface every model backend implements.

A prompt is either plain text or a chat (a list of {"role", "content"} messages); backends apply their own
chat template, so callers never format model-specific tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, Union

Chat = list[dict]
Prompt = Union[str, Chat]


@dataclass
class GenerationConfig:
    """Decoding settings shared by every backend."""

    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    # a regular expression: a row stops once its new text matches it (a closed code block); an endpoint cannot stop
    # on a pattern, so its answer is cut at the match's end (the tokens after it were still spent and are counted)
    stop_pattern: str | None = None
    max_seconds: float | None = None  # decoding stops after this long; rows keep what they wrote (local models)


@dataclass
class Generation:
    """One completion with the token counts needed for cost accounting."""

    text: str
    tokens_in: int
    tokens_out: int
    timed_out: bool = False  # cut by GenerationConfig.max_seconds before its end of turn, stop or token cap


class LM(Protocol):
    """What protege asks of a model: write text, and score given continuations."""

    name: str

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[Generation]:
        """Complete every prompt; the order of the output follows the input."""
        ...

    def score_continuations(self, prompt: Prompt, continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation after the prompt (the assistant turn for a chat)."""
        ...


def prompt_text(lm, prompt: Prompt) -> str:
    """The exact text a model sees for `prompt` where it can say (a local model renders its chat template);
    for a remote model the request's messages as JSON (what was sent, for hashing and logs)."""
    if hasattr(lm, "render"):
        return lm.render(prompt)
    import json

    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
