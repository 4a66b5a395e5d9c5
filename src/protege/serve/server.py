"""An OpenAI-compatible HTTP server over a local model (a teacher, or a distilled student with its adapter).

    protege serve --model bundled:smollm2-135m-instruct --port 8000
    protege serve --model hf:path/to/model --adapter runs/tiny/train-ab12cd/adapter

then use it as the model `openai:<id>@http://127.0.0.1:8000/v1` (printed at start), or with any OpenAI client.
Endpoints: GET /v1/models, GET /health, POST /v1/chat/completions, POST /v1/completions (also prompt
log-probabilities for distillation: echo, logprobs K, max_tokens 0; serve/prompt_logprobs.py). Concurrent requests
are batched (serve/batcher.py), each batch's decoding bounded by --request-seconds (answers cut by it end with
finish_reason "length"), and requests beyond the model's context get a 400 up front; /health reports the batches formed so far (`max_batch`: the most prompts one
forward pass answered). Standard library only: ThreadingHTTPServer, one handler thread per connection.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from protege.serve.batcher import Batcher
from protege.serve.protocol import ApiError, ScoreRequest, parse_request, response, score_response

MAX_BODY = 32 * 2**20


def load_model(name_or_dir: str, adapter: str | None = None, batch_size: int = 16):
    """A LocalLM from a resolve name (bundled:..., hf:...) or a model folder, with a LoRA adapter merged in."""
    from protege.models.local import LocalLM
    from protege.models.resolve import model_dir

    folder = Path(name_or_dir).expanduser()
    if folder.is_dir():
        lm = LocalLM.from_dir(folder, name=folder.name, batch_size=batch_size)
    else:
        lm = LocalLM.from_dir(model_dir(name_or_dir), name=name_or_dir, batch_size=batch_size)
    if adapter is None:
        return lm
    if not (Path(adapter) / "adapter_config.json").exists():
        raise FileNotFoundError(f"--adapter {adapter}: no adapter_config.json there; point it at a run's "
                                "train stage adapter/ folder (runs/<task>/train-<hash>/adapter)")
    from peft import PeftModel

    merged = PeftModel.from_pretrained(lm.model, str(adapter)).merge_and_unload()
    return LocalLM(f"{lm.name}+lora", merged, lm.tokenizer, device=lm.device, batch_size=batch_size)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections
    server: "ModelServer"

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "/health":
            self._send(200, {"status": "ok", "model": self.server.model_id, **self.server.batcher.snapshot()})
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_id, "object": "model",
                                                        "created": self.server.started, "owned_by": "protege"}]})
        else:
            self._error(ApiError(404, f"no route GET {path}; try GET /v1/models or /health", code="not_found"))

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        kind = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}.get(path)
        try:
            body = self._read_json()  # read it first, so a keep-alive connection stays in step
            if kind is None:
                raise ApiError(404, f"no route POST {path}; use /v1/chat/completions or /v1/completions",
                               code="not_found")
            prompts, config = parse_request(kind, body, self.server.model_id)
            if isinstance(prompts, ScoreRequest):
                self._score(prompts)
                return
            self._check_context(prompts, config, kind)
            config = dataclasses.replace(config, max_seconds=self.server.request_seconds)
        except ApiError as e:
            self._error(e)
            return
        try:
            gens = self.server.batcher.submit(prompts, config)
        except Exception as e:  # a model failure answers this request; the server stays up
            self._error(ApiError(500, f"generation failed: {type(e).__name__}: {e}", type="server_error"))
            return
        self._send(200, response(kind, self.server.model_id, gens, config))

    def _score(self, request: ScoreRequest) -> None:
        """Prompt log-probabilities (prompt_logprobs.py), computed on the batcher's thread like every pass."""
        from protege.serve.prompt_logprobs import prompt_ids, score_prompts

        lm, limit = self.server.lm, self.server.context_tokens
        vocab = lm.model.config.vocab_size
        rows = [prompt_ids(lm, prompt) for prompt in request.prompts]  # tokenized once, scored as ids
        for ids in rows:
            if limit is not None and len(ids) > limit:
                raise ApiError(400, f"This model's maximum context length is {limit} tokens. However, the prompt "
                                    f"has {len(ids)} tokens. Please reduce the length of the prompt.",
                               param="prompt", code="context_length_exceeded")
            if max(ids) >= vocab:
                raise ApiError(400, f"token id {max(ids)} is outside this model's vocabulary of {vocab}",
                               param="prompt")
        try:
            scored = self.server.batcher.call(lambda: score_prompts(lm, rows, request.top_k))
        except Exception as e:  # a model failure answers this request; the server stays up
            self._error(ApiError(500, f"scoring failed: {type(e).__name__}: {e}", type="server_error"))
            return
        decode = lambda t: lm.tokenizer.decode([t])  # noqa: E731
        self._send(200, score_response(self.server.model_id, request, scored, decode))

    def _check_context(self, prompts, config, kind: str) -> None:
        """A request whose prompt plus max_tokens exceeds the model's context is refused up front with both
        numbers (as vLLM does), instead of computing for minutes or failing to allocate."""
        limit = self.server.context_tokens
        if limit is None:
            return
        from protege.models.base import prompt_text

        for prompt in prompts:
            n = self.server.lm.count_tokens(prompt_text(self.server.lm, prompt))
            if n + config.max_new_tokens > limit:
                where = "messages" if kind == "chat" else "prompt"
                raise ApiError(400, f"This model's maximum context length is {limit} tokens. However, you requested "
                                    f"{n + config.max_new_tokens} tokens ({n} in the {where}, {config.max_new_tokens} "
                                    f"for the completion). Please reduce the length of the {where} or max_tokens.",
                               param="max_tokens" if n < limit else where, code="context_length_exceeded")

    def _read_json(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self.close_connection = True
            raise ApiError(400, "send a JSON body with a Content-Length header (at most 32 MiB)")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, f"the body is not valid JSON: {e}")

    def _error(self, e: ApiError) -> None:
        self._send(e.status, e.body())

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out); nothing to answer
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted server gets its port back at once
    # Connections waiting to be accepted. socketserver's default of 5 resets clients that connect together
    # (36 at once did, in tests/test_serve_load.py); uvicorn, which vLLM runs on, keeps 2,048.
    request_queue_size = 1024

    def __init__(self, lm, host: str = "127.0.0.1", port: int = 8000, batch_size: int = 16,
                 model_id: str | None = None, log_requests: bool = False, request_seconds: float = 60.0):
        if request_seconds <= 0:
            raise ValueError(f"--request-seconds must be positive (got {request_seconds})")
        self.model_id = model_id or lm.name
        # The longest one batch may decode: answers cut by it end with finish_reason "length"
        self.request_seconds = request_seconds
        self.lm = lm
        # The longest sequence the model was built for (None: unknown, not checked)
        self.context_tokens = getattr(getattr(getattr(lm, "model", None), "config", None),
                                      "max_position_embeddings", None)
        self.batcher = Batcher(lm, max_batch=batch_size)
        self.started = int(time.time())
        self.log_requests = log_requests
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, batch_size: int = 16,
          adapter: str | None = None, log_requests: bool = False, request_seconds: float = 60.0) -> None:
    """Load the model, bind, print the name to use, and answer until interrupted."""
    lm = load_model(model, adapter, batch_size)
    server = ModelServer(lm, host, port, batch_size, log_requests=log_requests, request_seconds=request_seconds)
    print(f"serving {server.model_id} at {server.url}\nuse it as the model: openai:{server.model_id}@{server.url}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
