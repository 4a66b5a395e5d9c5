"""`protege serve` under load and bad input, and the time bound on every batch.

A real server process (the tiny model, loopback only) gets 24 well-formed requests at once with oversized,
malformed and invalid ones mixed in: every well-formed one is answered within LOAD_BOUND_S, every bad one gets
its 400, and the server answers /health afterwards. The time bound (`--request-seconds`, GenerationConfig's
max_seconds) cuts decoding on both decoding paths; a cut answer ends with finish_reason "length".

    OMP_NUM_THREADS=1 pytest -q tests/test_serve_load.py
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from protege.models.base import GenerationConfig
from protege.models.local import LocalLM

LOAD_BOUND_S = 60.0  # each well-formed request, from sending to its answer, with 35 others in flight
LONG = GenerationConfig(max_new_tokens=900)


def post(url: str, body, timeout: float) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_concurrent_load_with_bad_requests_mixed_in(tiny_server):
    url = tiny_server.url + "/chat/completions"
    model = tiny_server.model

    def chat(text: str, **extra) -> dict:
        return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 8, **extra}

    good = [chat(f"Question {i}: where is Paris ?" * (1 + i % 4)) for i in range(24)]
    bad = ([chat("Paris is a location . " * 400)] * 3  # past the 1,024-token context
           + [chat("hi", max_tokens=10 ** 9)] * 3  # prompt + max_tokens past the context
           + [b'{"model": "x", "messages": [' ] * 3  # not JSON
           + [chat("hi", temperature="hot"), chat("hi", n=0), {"model": model}])  # invalid fields
    jobs = [(True, body) for body in good] + [(False, body) for body in bad]
    jobs = [jobs[i] for i in sorted(range(len(jobs)), key=lambda i: (i * 7) % len(jobs))]  # interleaved

    def send(job):
        began = time.monotonic()
        try:
            status, answer = post(url, job[1], timeout=LOAD_BOUND_S + 30)
        except OSError as e:
            status, answer = None, {"sent": str(job[1])[:80], "error": repr(e)}
        return job[0], status, answer, time.monotonic() - began

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    for well_formed, status, answer, seconds in results:
        if well_formed:
            assert status == 200 and answer["choices"][0]["message"]["role"] == "assistant", answer
            assert seconds < LOAD_BOUND_S, f"a well-formed request took {seconds:.1f} s"
        else:
            assert status == 400 and answer["error"]["message"], answer
    assert tiny_server.health()["status"] == "ok"
    assert post(url, chat("still there ?"), timeout=30)[0] == 200


@pytest.mark.parametrize("shared_decoding", [True, False], ids=["shared-prefix-decode", "transformers-generate"])
def test_max_seconds_cuts_decoding_and_says_so(tiny_model_dir, shared_decoding):
    lm = LocalLM.from_dir(tiny_model_dir, batch_size=4)
    lm.shared_decoding = shared_decoding and lm.shared_decoding
    prompts = ["Paris is a location ."] * 2
    full = lm.generate(prompts, LONG)
    if all(g.tokens_out < 50 for g in full):
        pytest.skip("the tiny model ends its answers too early to show a cut")
    began = time.monotonic()
    cut = lm.generate(prompts, GenerationConfig(max_new_tokens=900, max_seconds=1e-6))
    assert time.monotonic() - began < 5.0
    for whole, part in zip(full, cut):
        assert part.timed_out and part.tokens_out < whole.tokens_out
        assert not whole.timed_out
    assert not any(g.timed_out for g in lm.generate(prompts, GenerationConfig(max_new_tokens=4, max_seconds=60)))


def test_the_server_bound_ends_an_answer_with_length(tiny_model_dir):
    from protege.serve.server import ModelServer

    lm = LocalLM.from_dir(tiny_model_dir, batch_size=4)
    server = ModelServer(lm, port=0, request_seconds=1e-6)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        body = {"model": server.model_id, "prompt": "Paris is a location .", "max_tokens": 900}
        status, answer = post(server.url + "/completions", body, timeout=30)
        assert status == 200 and answer["choices"][0]["finish_reason"] == "length"
        assert answer["usage"]["completion_tokens"] < 900
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="request-seconds"):
        ModelServer(lm, port=0, request_seconds=0)
