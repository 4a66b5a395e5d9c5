"""Execution filter for code: run each generated solution against its generated tests in the sandbox.

    drops = failing_solutions(records, timeout_s=5.0, allow_code_execution=True)
    # {position: ("tests_failed", {"status": "failed", "error": "AssertionError"}), ...}

Solutions are untrusted model output, so nothing runs unless the caller opts in (curate.allow_code_execution);
see protege.scoring.sandbox for what confines them. Assert-style (MBPP) tests run after the solution; tests
defining check(candidate) (HumanEval) are called with the entry point.
"""
from __future__ import annotations


def program_of(rec: dict) -> str:
    from protege.scoring.sandbox import check_program

    tests = rec.get("tests") or ""
    entry = rec.get("entry_point") if "def check(" in tests else None
    return check_program(rec.get("reference") or "", tests, entry)


def failing_solutions(records: list[dict], timeout_s: float, allow_code_execution: bool,
                      workers: int | None = None, packages: list[str] | None = None) -> dict[int, tuple[str, dict]]:
    from protege.scoring.sandbox import run_many

    results = run_many([program_of(r) for r in records], workers=workers, timeout_s=timeout_s,
                       allow_code_execution=allow_code_execution, packages=packages)
    drops = {}
    for pos, result in enumerate(results):
        if not result.passed:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            drops[pos] = (f"tests_{result.status}", {"status": result.status, "reason": result.reason,
                                                     "returncode": result.returncode,
                                                     "error": lines[-1][:300] if lines else "",
                                                     "wall_s": round(result.wall_s, 3)})
    return drops
