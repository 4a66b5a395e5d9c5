"""OpenAI-compatible HTTP backend: any server speaking /v1/chat/completions and /v1/completions.

    lm = OpenAILM("gpt-4o-mini", "https://api.openai.com/v1", api_key=os.environ["OPENAI_API_KEY"],
                  price_in_per_m=0.15, price_out_per_m=0.6, budget=2.0)
    lm.generate([[{"role": "user", "content": "Write a question about Paris."}]], GenerationConfig(max_new_tokens=32))
    lm.usage   # {'requests': 1, 'retries': 0, 'tokens_in': 14, 'tokens_out': 32, 'cost': 2.13e-05, 'estimated': 0}

or by name through `protege.models.resolve.load_lm("openai:gpt-4o-mini@https://api.openai.com/v1")`, and
against a local model served with `protege serve`. A chat prompt goes to /chat/completions, a string to
/completions. Requests run concurrently (at most `max_concurrency` in flight); 429s, 5xx answers, timeouts and
refused or reset connections are retried with exponential backoff and full jitter (a Retry-After header sets
the least wait), so a rate-limited or restarting server costs time, not the run. Other 4xx answers fail at
once. With a budget (money from the prices per million tokens, and/or tokens), no request is sent once the
budget is spent, and `generate` raises `BudgetExhausted` holding the completions that did finish.

Only the standard library is used (urllib), so this backend adds no dependency.
"""
from __future__ import annotations

import json
import random
import re
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from typing import Sequence

from protege.models.base import Generation, GenerationConfig, Prompt

_NAME = re.compile(r"^openai:(?P<model>[^\s]+?)@(?P<url>https?://[^\s/@]+(?:/[^\s]*)?)$")


class BudgetExhausted(RuntimeError):
    """The budget was spent before every prompt was answered; `.partial` holds what finished (None elsewhere)."""

    def __init__(self, message: str, partial: list[Generation | None]):
        super().__init__(message)
        self.partial = partial


class EndpointError(RuntimeError):
    """The endpoint refused a request (a 4xx other than 429) or kept failing past the retries.

    `.partial` holds the completions that finished before it (None elsewhere), as for BudgetExhausted."""

    def __init__(self, message: str, partial: list[Generation | None] | None = None, status: int | None = None):
        super().__init__(message)
        self.partial = partial
        self.status = status


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class _Stopped(Exception):
    """Raised inside a worker when the run stops (budget spent or another request failed)."""


def parse_openai_name(name: str) -> tuple[str, str]:
    """`openai:<model>@<base_url>` -> (model, base_url without a trailing slash)."""
    m = _NAME.match(name.strip())
    if not m:
        raise ValueError(
            f"model name {name!r} is not of the form openai:<model>@<base_url>, e.g. "
            "openai:gpt-4o-mini@https://api.openai.com/v1 or openai:smol@http://127.0.0.1:8000/v1 "
            "(the base URL starts with http:// or https:// and includes /v1)"
        )
    return m["model"], m["url"].rstrip("/")


class OpenAILM:
    """An LM answered by an OpenAI-compatible endpoint; `usage` holds running totals over every call."""

    def __init__(self, model: str, base_url: str, api_key: str | None = None, max_concurrency: int = 8,
                 timeout_s: float = 120, max_retries: int = 6, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30, price_in_per_m: float = 0, price_out_per_m: float = 0,
                 budget: float | None = None, token_budget: int | None = None):
        problems = [f"{k} must be > 0 (got {v})" for k, v in
                    [("max_concurrency", max_concurrency), ("timeout_s", timeout_s)] if v <= 0]
        problems += [f"{k} must be >= 0 (got {v})" for k, v in
                     [("max_retries", max_retries), ("backoff_base_s", backoff_base_s),
                      ("backoff_max_s", backoff_max_s), ("price_in_per_m", price_in_per_m),
                      ("price_out_per_m", price_out_per_m)] if v < 0]
        if not base_url.startswith(("http://", "https://")):
            problems.append(f"base_url must start with http:// or https:// (got {base_url!r})")
        if problems:
            raise ValueError(f"OpenAILM({model!r}): " + "; ".join(problems))
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.name = f"openai:{model}@{self.base_url}"
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.price_in_per_m = price_in_per_m
        self.price_out_per_m = price_out_per_m
        self.budget = budget
        self.token_budget = token_budget
        # requests: HTTP requests sent (retries included); estimated: answers without `usage`, counted by chars.
        self.usage = {"requests": 0, "retries": 0, "tokens_in": 0, "tokens_out": 0, "cost": 0.0, "estimated": 0}
        self._lock = threading.Lock()

    # -- the LM protocol ------------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[Generation]:
        results: list[Generation | None] = [None] * len(prompts)
        stop = threading.Event()
        failures: list[BaseException] = []

        def work(i: int) -> None:
            try:
                results[i] = self._complete(prompts[i], config, stop)
            except _Stopped:
                pass
            except BaseException as e:  # the first failure stops the run; the rest are its echoes
                with self._lock:
                    failures.append(e)
                stop.set()

        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(1, len(prompts)))) as pool:
            try:
                list(pool.map(work, range(len(prompts))))
            except BaseException:  # Ctrl-C: the queued prompts must not go out while the pool drains
                stop.set()
                raise
        if failures:
            err = failures[0]
            if isinstance(err, EndpointError):
                err.partial = results
                raise err
            raise err
        if any(r is None for r in results):
            done = sum(r is not None for r in results)
            raise BudgetExhausted(f"{self.name}: budget spent ({self._spent_text()}) after {done} of "
                                  f"{len(prompts)} completions; raise the budget to go on", results)
        return results  # type: ignore[return-value]

    def score_continuations(self, prompt: Prompt, continuations: Sequence[str]) -> list[float]:
        raise NotImplementedError(
            f"{self.name}: scoring continuations needs the model's log-probabilities, which an OpenAI-compatible "
            "endpoint does not give; score with a local model (bundled:... or hf:...), or use generate-then-parse "
            "scoring (eval.scoring: generate)"
        )

    # -- prompt log-probabilities (distillation from a served teacher) ----------------------------------------
    def prompt_logprobs(self, rows: Sequence[list[int]], top_k: int) -> list[list[dict[int, float] | None]]:
        """For each row of token ids, the teacher's top-k log-probabilities at every position (None first):
        entry t predicts token t. Sent as /completions with echo, logprobs and max_tokens 0, tokens as ids
        (vLLM's return_tokens_as_token_ids; protege serve speaks the same). Rows go out concurrently."""
        stop = threading.Event()

        def one(ids: list[int]) -> list[dict[int, float] | None]:
            top = self._echo(list(ids), top_k, stop).get("top_logprobs")
            if not isinstance(top, list) or len(top) != len(ids):
                raise EndpointError(f"{self.name}/completions: asked for the log-probabilities of {len(ids)} prompt "
                                    f"tokens, got {'none' if not isinstance(top, list) else len(top)}; the server "
                                    "must support echo with logprobs and max_tokens 0 (vLLM and protege serve do)")
            return [None if dist is None else {_token_id(t): float(lp) for t, lp in dist.items()} for dist in top]

        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(1, len(rows)))) as pool:
            return list(pool.map(one, rows))

    def echo_token_ids(self, text: str) -> list[int]:
        """How the server tokenizes `text` (its echoed prompt tokens, as ids)."""
        return [_token_id(t) for t in self._echo(text, 0, threading.Event()).get("tokens") or []]

    def _echo(self, prompt: str | list[int], top_k: int, stop: threading.Event) -> dict:
        """The `logprobs` object of an echo request for `prompt` (nothing generated), its prompt tokens charged."""
        body = {"model": self.model, "prompt": prompt, "echo": True, "logprobs": top_k, "max_tokens": 0,
                "temperature": 0, "return_tokens_as_token_ids": True}
        try:
            answer = self._request("/completions", body, stop)
        except _Stopped:
            raise BudgetExhausted(f"{self.name}: budget spent ({self._spent_text()}) while scoring prompts; "
                                  "raise the budget to go on", []) from None
        logprobs = answer["choices"][0].get("logprobs") or {}
        self._charge(len(logprobs.get("tokens") or []), 0)
        return logprobs

    # -- budget -------------------------------------------------------------------------------------------
    def budget_spent(self) -> bool:
        with self._lock:
            return self._budget_spent()

    def _budget_spent(self) -> bool:
        u = self.usage
        return ((self.budget is not None and u["cost"] >= self.budget)
                or (self.token_budget is not None and u["tokens_in"] + u["tokens_out"] >= self.token_budget))

    def _spent_text(self) -> str:
        u = self.usage
        parts = []
        if self.budget is not None:
            parts.append(f"cost {u['cost']:.4g} of budget {self.budget:g}")
        if self.token_budget is not None:
            parts.append(f"{u['tokens_in'] + u['tokens_out']} tokens of token_budget {self.token_budget}")
        return ", ".join(parts)

    # -- one prompt ---------------------------------------------------------------------------------------
    def _payload(self, prompt: Prompt, config: GenerationConfig) -> tuple[str, dict]:
        body = {"model": self.model, "max_tokens": config.max_new_tokens, "temperature": config.temperature,
                "top_p": config.top_p, "seed": config.seed}
        if config.stop:
            body["stop"] = list(config.stop)
        if isinstance(prompt, str):
            return "/completions", {**body, "prompt": prompt}
        return "/chat/completions", {**body, "messages": list(prompt)}

    def _complete(self, prompt: Prompt, config: GenerationConfig, stop: threading.Event) -> Generation:
        path, body = self._payload(prompt, config)
        gen = self._account(self._request(path, body, stop), prompt, path)
        if config.stop_pattern is not None:  # no OpenAI field stops on a pattern: the server decodes on, we cut
            match = re.search(config.stop_pattern, gen.text)
            gen.text = gen.text[: match.end()] if match else gen.text
        return gen

    def _request(self, path: str, body: dict, stop: threading.Event) -> dict:
        """One answer to `body`, with the retries, backoff and budget checks every request gets."""
        data = json.dumps(body).encode()
        for attempt in range(self.max_retries + 1):
            with self._lock:
                if stop.is_set() or self._budget_spent():
                    raise _Stopped()
                self.usage["requests"] += 1
                if attempt:
                    self.usage["retries"] += 1
            try:
                answer = self._post(path, data)
            except _Retryable as e:
                if attempt == self.max_retries:
                    raise EndpointError(f"{self.name}{path}: still failing after {self.max_retries} retries "
                                        f"(last: {e}); check that the server is up, or raise max_retries/timeout_s")
                # Full jitter spreads a burst of retries out; Retry-After is the server's least wait.
                delay = random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt))
                if e.retry_after is not None:
                    delay = max(delay, e.retry_after)
                if stop.wait(delay):
                    raise _Stopped()
                continue
            return answer
        raise AssertionError("unreachable")

    def _post(self, path: str, data: bytes) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            message = _server_message(e)
            if e.code == 429 or e.code >= 500:
                raise _Retryable(f"HTTP {e.code}: {message}", _retry_after(e.headers.get("Retry-After")))
            raise EndpointError(f"{self.name}{path}: HTTP {e.code}: {message}; {_hint(e.code)}", status=e.code)
        except urllib.error.URLError as e:
            if isinstance(e.reason, OSError):  # refused, reset, DNS, timeout while connecting
                raise _Retryable(f"connection failed: {e.reason}")
            raise EndpointError(f"{self.name}{path}: {e.reason}; check base_url")
        except (OSError, HTTPException) as e:  # timeout or reset while reading the answer
            raise _Retryable(f"{type(e).__name__}: {e}")
        try:
            answer = json.loads(raw)
            answer["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retryable(f"answer is not an OpenAI completion: {raw[:200]!r}")
        return answer

    def _account(self, answer: dict, prompt: Prompt, path: str) -> Generation:
        choice = answer["choices"][0]
        text = (choice.get("message") or {}).get("content") if path == "/chat/completions" else choice.get("text")
        text = text or ""
        usage = answer.get("usage") or {}
        estimated = "prompt_tokens" not in usage or "completion_tokens" not in usage
        if estimated:  # some servers leave usage out; ~4 chars a token keeps a budget meaningful
            chars = len(prompt) if isinstance(prompt, str) else sum(len(str(m.get("content", ""))) for m in prompt)
            tokens_in, tokens_out = max(1, chars // 4), max(1, len(text) // 4)
        else:
            tokens_in, tokens_out = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        self._charge(tokens_in, tokens_out, estimated)
        return Generation(text=text, tokens_in=tokens_in, tokens_out=tokens_out)

    def _charge(self, tokens_in: int, tokens_out: int, estimated: bool = False) -> None:
        with self._lock:
            u = self.usage
            u["tokens_in"] += tokens_in
            u["tokens_out"] += tokens_out
            u["cost"] += (tokens_in * self.price_in_per_m + tokens_out * self.price_out_per_m) / 1e6
            u["estimated"] += int(estimated)


def _token_id(token: str) -> int:
    """'token_id:123' (return_tokens_as_token_ids) -> 123."""
    if not token.startswith("token_id:"):
        raise EndpointError(f"the server named a token {token!r} instead of 'token_id:N'; it must support "
                            "return_tokens_as_token_ids (vLLM and protege serve do)")
    return int(token[len("token_id:"):])


def _server_message(e: urllib.error.HTTPError) -> str:
    try:
        raw = e.read()
    except Exception:
        return e.reason or ""
    try:
        body = json.loads(raw)
        err = body.get("error", body)
        return str(err.get("message", err) if isinstance(err, dict) else err)
    except (ValueError, AttributeError):
        return raw[:300].decode(errors="replace") or str(e.reason)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (an HTTP date is rare from APIs; it falls back to plain backoff)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _hint(status: int) -> str:
    if status in (401, 403):
        return "check the API key (the environment variable named by endpoint.api_key_env)"
    if status == 404:
        return "check the model name and that base_url ends in /v1 (openai:<model>@<base_url>)"
    return "change the request (model name, max_new_tokens, temperature, top_p, stop) as the server asks"
