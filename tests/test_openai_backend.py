"""OpenAILM against a real `protege serve` process (the tiny model), directly and through a fault proxy.

    OMP_NUM_THREADS=1 pytest -q tests/test_openai_backend.py
"""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from fault_proxy import FaultProxy
from protege.models.base import GenerationConfig
from protege.models.openai_http import BudgetExhausted, EndpointError, OpenAILM, parse_openai_name
from protege.models.resolve import ModelNotFound, load_lm

FAST = dict(backoff_base_s=0.01, backoff_max_s=0.05)  # retries in milliseconds, not seconds
CFG = GenerationConfig(max_new_tokens=3)


@pytest.fixture(scope="module")
def server(tiny_server):
    return tiny_server


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture()
def proxy(server):
    p = FaultProxy(server.root).start()
    yield p
    p.stop()


def prompt_tokens(tokenizer, prompt) -> int:
    text = prompt if isinstance(prompt, str) else tokenizer.apply_chat_template(prompt, tokenize=False,
                                                                                 add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def chats(n: int) -> list:
    return [[{"role": "user", "content": "Paris is a location . " * (i + 1)}] for i in range(n)]


def texts(n: int) -> list:
    return ["What is the capital of France ?" * (i + 1) for i in range(n)]


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


# -- round trips ------------------------------------------------------------------------------------------
def test_chat_and_completions_round_trip_in_order_with_usage(server, tokenizer):
    lm = OpenAILM(server.model, server.url, max_concurrency=3)
    assert lm.name == f"openai:{server.model}@{server.url}"
    prompts = chats(5) + texts(5)
    gens = lm.generate(chats(5), CFG) + lm.generate(texts(5), CFG)
    # Each prompt has its own length, so tokens_in proves every answer came back in its prompt's place.
    assert [g.tokens_in for g in gens] == [prompt_tokens(tokenizer, p) for p in prompts]
    assert all(0 <= g.tokens_out <= 3 and isinstance(g.text, str) for g in gens)
    assert lm.usage["requests"] == 10 and lm.usage["retries"] == 0 and lm.usage["estimated"] == 0
    assert lm.usage["tokens_in"] == sum(g.tokens_in for g in gens)
    assert lm.usage["tokens_out"] == sum(g.tokens_out for g in gens)


def test_stop_pattern_cuts_the_answer_at_the_match_and_counts_every_token_spent(server):
    import re

    lm = OpenAILM(server.model, server.url)
    free = lm.generate(texts(1), GenerationConfig(max_new_tokens=12))[0]
    assert len(free.text) > 4, free.text
    head = re.escape(free.text[: len(free.text) // 2])  # greedy: the same answer, cut after its first half
    cut = lm.generate(texts(1), GenerationConfig(max_new_tokens=12, stop_pattern=head))[0]
    assert cut.text == free.text[: len(free.text) // 2]
    assert cut.tokens_out == free.tokens_out  # the server decoded on: the tokens are spent and counted
    missing = lm.generate(texts(1), GenerationConfig(max_new_tokens=12, stop_pattern="NEVER-THERE"))[0]
    assert missing.text == free.text


def test_server_answers_in_openai_shape_and_refuses_bad_requests(server):
    with urllib.request.urlopen(server.url + "/models") as r:
        assert r.status == 200 and [m["id"] for m in json.load(r)["data"]] == [server.model]
    status, body = post(server.url + "/completions", {"model": server.model, "prompt": ["a b", "c"], "max_tokens": 2})
    assert status == 200 and body["object"] == "text_completion" and [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    bad = [
        ("/chat/completions", {"temperature": 0}, "messages"),
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}, "stream"),
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        ("/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ("/completions", {"prompt": [1, 2, 3]}, "prompt"),
        ("/completions", {"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ("/completions", {"prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ]
    for path, body, param in bad:
        status, answer = post(server.url + path, body)
        assert status == 400 and answer["error"]["param"] == param, (body, answer)
        assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["message"]
    assert post(server.url + "/chat/completions", b"{not json")[0] == 400
    assert post(server.url + "/embeddings", {"input": "x"})[0] == 404


# -- concurrency and batching -----------------------------------------------------------------------------
def test_requests_are_bounded_in_flight_and_batched_by_the_server(server, proxy, tokenizer):
    before = server.health()
    lm = OpenAILM(server.model, proxy.url, max_concurrency=4)
    prompts = texts(24)
    gens = lm.generate(prompts, CFG)
    after = server.health()
    assert [g.tokens_in for g in gens] == [prompt_tokens(tokenizer, p) for p in prompts]
    assert 2 <= proxy.max_in_flight <= 4
    assert after["prompts"] - before["prompts"] == 24
    assert after["batches"] - before["batches"] < 24 and after["max_batch"] > 1  # some forward passes held >1


# -- faults -------------------------------------------------------------------------------------------------
def test_429_500_slow_and_reset_answers_are_retried(server, tokenizer):
    schedule = [("429", 1), "500", ("slow", 2.5), "reset", "500", ("429", 1)]
    proxy = FaultProxy(server.root, schedule).start()
    try:
        lm = OpenAILM(server.model, proxy.url, max_concurrency=4, timeout_s=1.0, **FAST)
        prompts = chats(12)
        gens = lm.generate(prompts, CFG)
    finally:
        proxy.stop()
    assert [g.tokens_in for g in gens] == [prompt_tokens(tokenizer, p) for p in prompts]
    assert lm.usage["requests"] == proxy.received and lm.usage["retries"] == proxy.received - 12
    assert lm.usage["retries"] >= len(schedule)
    # Retry-After: 1 means the same request comes back no sooner than a second after the 429.
    for i, e in enumerate(proxy.events):
        if e["action"][0] == "429":
            again = next(f for f in proxy.events[i + 1:] if f["body"] == e["body"])
            assert again["arrived"] - e["answered"] >= 1.0


def test_a_server_killed_mid_run_and_restarted_loses_nothing(server, tokenizer):
    lm = OpenAILM(server.model, server.url, max_concurrency=2, timeout_s=10, max_retries=400,
                  backoff_base_s=0.05, backoff_max_s=0.25)
    prompts = texts(40)
    out: dict = {}

    def run() -> None:
        try:
            out["gens"] = lm.generate(prompts, GenerationConfig(max_new_tokens=6))
        except Exception as e:  # shown by the assertion below
            out["error"] = e

    client = threading.Thread(target=run)
    served = server.health()["prompts"]
    client.start()
    while server.health()["prompts"] < served + 4:
        time.sleep(0.005)
    assert client.is_alive()
    server.kill()
    time.sleep(0.5)  # the port stays closed a moment: connections are refused
    server.start()
    client.join(120)
    assert not client.is_alive() and "error" not in out, out.get("error")
    assert [g.tokens_in for g in out["gens"]] == [prompt_tokens(tokenizer, p) for p in prompts]
    assert lm.usage["retries"] >= 1 and server.health()["prompts"] >= 1  # the restarted server finished it


# -- budget -------------------------------------------------------------------------------------------------
def test_token_budget_stops_cleanly_before_sending_more(server, proxy):
    prompts = ["Who wrote Hamlet ?"] * 8
    probe = OpenAILM(server.model, server.url).generate(prompts[:1], CFG)[0]
    per_request = probe.tokens_in + probe.tokens_out
    lm = OpenAILM(server.model, proxy.url, max_concurrency=1, token_budget=3 * per_request - 1)
    with pytest.raises(BudgetExhausted) as e:
        lm.generate(prompts, CFG)
    assert [g is not None for g in e.value.partial] == [True] * 3 + [False] * 5
    assert proxy.received == 3 and lm.usage["requests"] == 3
    assert "token_budget" in str(e.value)
    with pytest.raises(BudgetExhausted) as again:  # a spent budget sends nothing at all
        lm.generate(prompts[:2], CFG)
    assert again.value.partial == [None, None] and proxy.received == 3


def test_money_budget_with_concurrency_keeps_every_finished_answer(server, proxy):
    prompts = ["Who wrote Hamlet ?"] * 20
    probe = OpenAILM(server.model, server.url).generate(prompts[:1], CFG)[0]
    cost = probe.tokens_in * 1.0 + probe.tokens_out * 2.0  # at 1 and 2 per token
    lm = OpenAILM(server.model, proxy.url, max_concurrency=4, price_in_per_m=1e6, price_out_per_m=2e6,
                  budget=2.5 * cost)
    with pytest.raises(BudgetExhausted) as e:
        lm.generate(prompts, CFG)
    finished = [g for g in e.value.partial if g is not None]
    # Every request sent finished and was kept; none started after the third answer reached the budget
    # beyond those already in flight (at most max_concurrency - 1 others).
    assert proxy.received == lm.usage["requests"] == len(finished)
    assert 3 <= len(finished) <= 3 + 3
    assert lm.usage["cost"] == pytest.approx(sum(g.tokens_in * 1.0 + g.tokens_out * 2.0 for g in finished))


# -- failures that must not be retried ----------------------------------------------------------------------
def test_a_400_fails_at_once_with_the_server_message(server):
    lm = OpenAILM(server.model, server.url, **FAST)
    start = time.monotonic()
    with pytest.raises(EndpointError) as e:
        lm.generate(chats(1), GenerationConfig(max_new_tokens=3, temperature=-1.0))
    assert e.value.status == 400 and "temperature must be a number from 0 to 2" in str(e.value)
    assert "change the request" in str(e.value)
    wrong = OpenAILM("gpt-4o", server.url, **FAST)
    with pytest.raises(EndpointError) as e:
        wrong.generate(chats(3), CFG)
    assert e.value.status == 404 and f"serves {server.model!r}" in str(e.value) and "check the model name" in str(e.value)
    assert lm.usage["retries"] == wrong.usage["retries"] == 0 and time.monotonic() - start < 5


def test_an_unreachable_server_fails_after_the_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lm = OpenAILM("tiny", f"http://127.0.0.1:{port}/v1", max_retries=2, **FAST)
    with pytest.raises(EndpointError, match="still failing after 2 retries"):
        lm.generate(["hi"], CFG)
    assert lm.usage["requests"] == 3


# -- names and resolution -----------------------------------------------------------------------------------
def test_parse_openai_name():
    assert parse_openai_name("openai:gpt-4o-mini@https://api.openai.com/v1") == ("gpt-4o-mini",
                                                                                "https://api.openai.com/v1")
    assert parse_openai_name("openai:smol@http://127.0.0.1:8000/v1/") == ("smol", "http://127.0.0.1:8000/v1")
    assert parse_openai_name("openai:org/model@name@http://h:1/v1") == ("org/model@name", "http://h:1/v1")
    for bad in ["openai:gpt-4o", "openai:@http://h/v1", "openai:m@ftp://h/v1", "gpt@http://h/v1",
                "openai:m@http:///v1", "openai:m @http://h/v1"]:
        with pytest.raises(ValueError, match="openai:<model>@<base_url>"):
            parse_openai_name(bad)
    with pytest.raises(ModelNotFound, match="openai:<model>@<base_url>"):
        load_lm("openai:no-url")


def test_load_lm_sends_the_key_from_the_named_variable(server, proxy, monkeypatch):
    monkeypatch.setenv("PROTEGE_TEST_KEY", "sk-test")
    lm = load_lm(f"openai:{server.model}@{proxy.url}", api_key_env="PROTEGE_TEST_KEY", batch_size=16, max_concurrency=2)
    assert isinstance(lm, OpenAILM) and lm.max_concurrency == 2
    lm.generate(["hi"], CFG)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    load_lm(f"openai:{server.model}@{proxy.url}").generate(["hi"], CFG)
    assert proxy.events[0]["headers"].get("Authorization") == "Bearer sk-test"
    assert "Authorization" not in proxy.events[1]["headers"]
    with pytest.raises(NotImplementedError, match="local model"):
        lm.score_continuations("hi", ["a"])


def test_serve_merges_an_adapter(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from protege.serve import load_model

    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                                LoraConfig(r=2, target_modules=["q_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.5)  # a trained adapter changes q_proj; a fresh one (B = 0) would not
    peft_model.save_pretrained(tmp_path / "adapter")
    base, tuned = load_model(str(tiny_model_dir)), load_model(str(tiny_model_dir), str(tmp_path / "adapter"))
    assert tuned.name == base.name + "+lora"
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(base.model.state_dict()[q], tuned.model.state_dict()[q])
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_model(str(tiny_model_dir), str(tmp_path))


def test_requests_beyond_the_context_get_a_400_naming_both_numbers(server, tokenizer):
    url = server.url + "/chat/completions"
    huge = post(url, {"model": server.model, "messages": chats(1)[0], "max_tokens": 10 ** 9})
    assert huge[0] == 400 and huge[1]["error"]["code"] == "context_length_exceeded"
    message = huge[1]["error"]["message"]
    assert "maximum context length is 1024 tokens" in message and f"{10 ** 9} for the completion" in message
    long_chat = [{"role": "user", "content": "Paris is a location . " * 400}]
    n = prompt_tokens(tokenizer, long_chat)
    too_long = post(url, {"model": server.model, "messages": long_chat, "max_tokens": 4})
    assert too_long[0] == 400 and f"({n} in the messages, 4 for the completion)" in too_long[1]["error"]["message"]
    assert too_long[1]["error"]["param"] == "messages"
    fine = post(url, {"model": server.model, "messages": chats(1)[0], "max_tokens": 4})
    assert fine[0] == 200  # the server stays up and answers the next request
