"""`protege serve` prompt log-probabilities in the shape vLLM serves them (echo, logprobs K, max_tokens 0), checked
against the model computed here, and the requests it refuses."""
import math

import pytest
import torch

from protege.models.local import LocalLM
from test_serve_load import post


def test_prompt_logprobs_match_the_model(tiny_server, tiny_model_dir):
    lm = LocalLM.from_dir(tiny_model_dir)
    text = "Paris is a location ."
    status, answer = post(tiny_server.url + "/completions", {"model": tiny_server.model, "prompt": text,
                                                             "echo": True, "logprobs": 3, "max_tokens": 0,
                                                             "return_tokens_as_token_ids": True}, 30)
    assert status == 200, answer
    got = answer["choices"][0]["logprobs"]
    ids = lm.tokenizer(text)["input_ids"]
    assert got["tokens"] == [f"token_id:{i}" for i in ids]  # ids: two byte pieces may decode to one string
    assert got["top_logprobs"][0] is None and got["token_logprobs"][0] is None
    assert answer["choices"][0]["text"] == lm.tokenizer.decode(ids) and answer["usage"]["prompt_tokens"] == len(ids)
    with torch.no_grad(), lm.autocast():
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    for t in range(1, len(ids)):
        assert math.isclose(got["token_logprobs"][t], float(logp[t - 1, ids[t]]), abs_tol=0.05)
        top = got["top_logprobs"][t]
        assert sorted(int(k.split(":")[1]) for k in top) == sorted(logp[t - 1].topk(3).indices.tolist())
        assert math.isclose(max(top.values()), float(logp[t - 1].max()), abs_tol=0.05)
    as_ids = post(tiny_server.url + "/completions", {"prompt": ids, "echo": True, "logprobs": 2, "max_tokens": 0,
                                                     "return_tokens_as_token_ids": True}, 30)[1]
    assert as_ids["choices"][0]["logprobs"]["token_logprobs"] == got["token_logprobs"]


@pytest.mark.parametrize("path, body, fragment", [
    ("/completions", {"prompt": "hi", "echo": True, "logprobs": 3, "max_tokens": 4}, "max_tokens: 0"),
    ("/completions", {"prompt": "hi", "logprobs": 3}, "echo: true"),
    ("/completions", {"prompt": "hi", "echo": True, "logprobs": 1000, "max_tokens": 0}, "from 0 to 100"),
    ("/completions", {"prompt": [1, 2, 99999], "echo": True, "logprobs": 1, "max_tokens": 0}, "vocabulary"),
    ("/completions", {"prompt": [1, 2, 3]}, "token ids only with echo"),
    ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "logprobs": True}, "prompts only"),
])
def test_logprob_requests_it_cannot_serve_are_refused(tiny_server, path, body, fragment):
    status, answer = post(tiny_server.url + path, body, 30)
    assert status == 400 and fragment in answer["error"]["message"], answer
