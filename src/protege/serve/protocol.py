"""The OpenAI wire format for the server: request bodies -> (prompts, GenerationConfig), answers -> JSON.

Only what a LocalLM can honour is accepted; a field that would change the answer and cannot be honoured
(stream, n > 1, tools, penalties, ...) is refused with a 400 naming it, never ignored.

Prompt log-probabilities, as vLLM serves them for distillation: /v1/completions with `echo: true`, `logprobs: K`
and `max_tokens: 0` answers, for each prompt (a string, or token ids), every prompt token with its log-probability
and the K most likely tokens at each position (`top_logprobs`, None for the first token);
`return_tokens_as_token_ids: true` (vLLM's option) writes tokens as "token_id:N". Log-probabilities of generated
tokens are not served.
"""
from __future__ import annotations

import json
import time
import uuid
from itertools import accumulate
from dataclasses import dataclass

from protege.models.base import Generation, GenerationConfig

# OpenAI's defaults: /v1/completions writes 16 tokens unless asked; chat has no cap there, ours is finite.
DEFAULT_MAX_TOKENS = {"chat": 256, "completions": 16}
MAX_STOPS = 4
MAX_LOGPROBS = 100  # top-k per position a prompt-scoring request may ask for


@dataclass(frozen=True)
class ScoreRequest:
    """echo + logprobs + max_tokens 0: the prompts' own log-probabilities, nothing generated."""

    prompts: list  # strings or lists of token ids
    top_k: int
    token_ids: bool  # return_tokens_as_token_ids

# Fields accepted only at their harmless values (None or the listed ones).
UNSUPPORTED = {
    "stream": (False,), "n": (1,), "best_of": (1,), "top_logprobs": (0,), "logit_bias": ({},), "tools": ([],), "functions": ([],), "suffix": ("",),
    "presence_penalty": (0,), "frequency_penalty": (0,), "response_format": ({"type": "text"},),
}


class ApiError(Exception):
    """An error answered as {"error": {...}} with an HTTP status, the shape OpenAI clients parse."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 type: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.type, self.code = status, message, param, type, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def parse_request(kind: str, body, served_model: str) -> tuple[list, GenerationConfig]:
    """Validate a /v1/chat/completions (kind "chat") or /v1/completions body; prompts are chats or strings."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    for key, ok in UNSUPPORTED.items():
        if body.get(key) is not None and body[key] not in ok:
            raise ApiError(400, f"{key}={json.dumps(body[key])} is not supported by protege serve; leave it "
                                f"out (or send {json.dumps(ok[0])})", param=key, code="unsupported_parameter")
    model = body.get("model")
    if model is not None and model != served_model:
        raise ApiError(404, f"model {model!r} is not served here; this server serves {served_model!r} "
                            f"(GET /v1/models lists it)", param="model", type="invalid_request_error",
                       code="model_not_found")
    if body.get("echo") or body.get("logprobs") not in (None, False, 0):
        return _score_request(kind, body), None
    prompts = [_chat(body.get("messages"))] if kind == "chat" else _completion_prompts(body.get("prompt"))
    return prompts, _config(kind, body)


def _score_request(kind: str, body: dict) -> ScoreRequest:
    k, max_tokens = body.get("logprobs"), body.get("max_tokens")
    if kind != "completions" or body.get("echo") is not True or max_tokens != 0:
        raise ApiError(400, "log-probabilities are served for prompts only: POST /v1/completions with echo: true, "
                            "logprobs: K and max_tokens: 0 (generated tokens' log-probabilities are not served)",
                       param="logprobs", code="unsupported_parameter")
    if not (isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= MAX_LOGPROBS):
        raise ApiError(400, f"logprobs must be an integer from 0 to {MAX_LOGPROBS} (got {json.dumps(k)})",
                       param="logprobs")
    prompt = body.get("prompt")
    if _token_ids(prompt):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(_token_ids(p) for p in prompt):
        prompts = list(prompt)
    else:
        prompts = _completion_prompts(prompt)
    return ScoreRequest(prompts, k, bool(body.get("return_tokens_as_token_ids")))


def _token_ids(x) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                                                   for t in x)


def _chat(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' is required: a non-empty list of {role, content}", param="messages")
    chat = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer"):
            raise ApiError(400, f"messages[{i}] needs a role of system, user, assistant or developer",
                           param=f"messages[{i}].role")
        content = m.get("content")
        if isinstance(content, list):  # content parts: text only
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise ApiError(400, f"messages[{i}].content: only text parts are supported",
                               param=f"messages[{i}].content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{i}].content must be a string", param=f"messages[{i}].content")
        role = "system" if m["role"] == "developer" else m["role"]
        chat.append({"role": role, "content": content})
    return chat


def _completion_prompts(prompt) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    raise ApiError(400, "'prompt' is required: a string or a non-empty list of strings (token ids only with "
                        "echo: true, logprobs: K, max_tokens: 0)", param="prompt")


def _config(kind: str, body: dict) -> GenerationConfig:
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    max_tokens = DEFAULT_MAX_TOKENS[kind] if max_tokens is None else max_tokens
    temperature = 1.0 if body.get("temperature") is None else body["temperature"]
    top_p = 1.0 if body.get("top_p") is None else body["top_p"]
    seed = 0 if body.get("seed") is None else body["seed"]
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    checks = [
        ("max_tokens", isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1,
         "a positive integer"),
        ("temperature", _number(temperature) and 0 <= temperature <= 2, "a number from 0 to 2"),
        ("top_p", _number(top_p) and 0 < top_p <= 1, "a number in (0, 1]"),
        ("seed", isinstance(seed, int) and not isinstance(seed, bool), "an integer"),
        ("stop", isinstance(stop, list) and len(stop) <= MAX_STOPS
         and all(isinstance(s, str) and s for s in stop), f"a string or a list of up to {MAX_STOPS} strings"),
    ]
    for param, ok, want in checks:
        if not ok:
            raise ApiError(400, f"{param} must be {want} (got {json.dumps(body.get(param))})", param=param)
    return GenerationConfig(max_new_tokens=max_tokens, temperature=float(temperature), top_p=float(top_p),
                            seed=seed, stop=list(stop))


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def score_response(model: str, request: ScoreRequest, scored: list[dict], decode) -> dict:
    """The completions answer to a ScoreRequest: `scored` holds per prompt its `ids`, `logprobs` (per token, None
    first) and `top` (per token: [(id, logprob), ...] most likely first, None first); `decode(id)` its text."""
    def name(token: int) -> str:
        return f"token_id:{token}" if request.token_ids else decode(token)

    choices = []
    for i, row in enumerate(scored):
        texts = [decode(t) for t in row["ids"]]
        offsets = [0, *accumulate(len(t) for t in texts[:-1])]
        top = [None if dist is None else {name(t): lp for t, lp in dist} for dist in row["top"]]
        choices.append({"index": i, "text": "".join(texts), "finish_reason": "length",
                        "logprobs": {"tokens": [name(t) for t in row["ids"]], "token_logprobs": row["logprobs"],
                                     "top_logprobs": top, "text_offset": offsets}})
    tokens_in = sum(len(r["ids"]) for r in scored)
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": choices,
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": 0, "total_tokens": tokens_in}}


def response(kind: str, model: str, gens: list[Generation], config: GenerationConfig) -> dict:
    """The OpenAI-shaped answer, with usage summed over the choices."""
    choices = []
    for i, g in enumerate(gens):
        finish = "length" if g.tokens_out >= config.max_new_tokens or g.timed_out else "stop"
        if kind == "chat":
            choices.append({"index": i, "message": {"role": "assistant", "content": g.text},
                            "finish_reason": finish})
        else:
            choices.append({"index": i, "text": g.text, "logprobs": None, "finish_reason": finish})
    tokens_in, tokens_out = sum(g.tokens_in for g in gens), sum(g.tokens_out for g in gens)
    return {
        "id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}",
        "object": "chat.completion" if kind == "chat" else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                  "total_tokens": tokens_in + tokens_out},
    }
