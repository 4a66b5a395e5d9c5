"""The cooperative cost bench, batched: both timings decode the same answers in batches and count the same
tokens (the teacher alone writes as many as the two sides did together)."""
import pytest

from protege.cooperative import CooperativeConfig
from protege.lab.throughput.cooperative_cost import cooperative_cost_ratio

from test_coop_sessions import KeepWords


@pytest.mark.precision("fp32")
def test_batched_cost_bench_times_both_sides_on_the_same_answers(tiny_pair):
    teacher, student = tiny_pair
    cfg = CooperativeConfig(max_new_tokens=40, final_markers=[], repeat_times=40)
    prompts = ["What is 3 + 4 ?", "How many people live in Tokyo ?", "Write add ( a , b ) ."]
    out = cooperative_cost_ratio(prompts, teacher, student, cfg, KeepWords(2), reencode_baseline=False,
                                 batch_size=2)
    assert out["batch_size"] == 2 and out["prompts"] == 3
    assert out["cooperative_tokens"] == 3 * 40  # greedy random models never stop before max_new_tokens
    assert 0 < out["teacher_only_tokens"] <= out["cooperative_tokens"]
    assert out["ratio"] > 0 and out["cpu_ratio"] > 0
