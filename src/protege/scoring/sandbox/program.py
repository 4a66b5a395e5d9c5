"""Assemble a candidate solution and its tests into one program for `run_program`.

HumanEval style: `tests` defines `check(candidate)` and `entry_point` names the function to pass it.
MBPP style: `tests` is assert statements (a string or a list of lines) and `entry_point` is None.
"""
from __future__ import annotations


def check_program(solution: str, tests: str | list[str], entry_point: str | None = None) -> str:
    if not isinstance(tests, str):
        tests = "\n".join(tests)
    parts = [solution.rstrip("\n"), tests.rstrip("\n")]
    if entry_point is not None:
        if not entry_point.isidentifier():
            raise ValueError(f"entry_point must be a Python identifier; got {entry_point!r}")
        if "def check(" not in tests:
            raise ValueError("entry_point given but tests define no check(candidate); drop entry_point for "
                             "assert-style (MBPP) tests")
        parts.append(f"check({entry_point})")
    return "\n\n".join(parts) + "\n"
