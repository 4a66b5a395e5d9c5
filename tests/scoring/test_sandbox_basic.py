"""Sandbox basics: a passing program passes, an exception fails, nothing runs unless the caller opts in."""
import pytest

from protege.scoring.sandbox import (
    CodeExecutionNotAllowed, Limits, check_program, run_many, run_program,
)


def test_passing_program_passes_with_its_output():
    r = run_program("print(sum(range(10)))", allow_code_execution=True)
    assert (r.status, r.returncode, r.stdout) == ("passed", 0, "45\n")


def test_exception_fails_with_traceback():
    r = run_program("def f():\n    raise ValueError('boom')\nf()", allow_code_execution=True)
    assert (r.status, r.returncode) == ("failed", 1)
    assert "ValueError: boom" in r.stderr and "line 2, in f" in r.stderr  # source lines point at the program


def test_sys_exit_codes_are_kept():
    assert run_program("import sys; sys.exit(3)", allow_code_execution=True).returncode == 3
    assert run_program("raise SystemExit", allow_code_execution=True).status == "passed"


def test_nothing_runs_without_opt_in(tmp_path):
    marker = tmp_path / "ran"
    program = f"open({str(marker)!r}, 'w').close()"
    with pytest.raises(CodeExecutionNotAllowed, match="--allow-code-execution"):
        run_program(program)
    with pytest.raises(CodeExecutionNotAllowed, match="allow_code_execution=True"):
        run_many([program])
    assert not marker.exists()


def test_stdin_is_closed():
    r = run_program("import sys; print(repr(sys.stdin.read()))", allow_code_execution=True)
    assert r.stdout == "''\n"


def test_check_program_humaneval_and_mbpp_styles():
    solution = "def add(a, b):\n    return a + b\n"
    humaneval = check_program(solution, "def check(candidate):\n    assert candidate(2, 3) == 5\n", "add")
    mbpp = check_program(solution, ["assert add(1, 1) == 2", "assert add(0, 0) == 0"])
    wrong = check_program("def add(a, b):\n    return a - b\n", ["assert add(1, 1) == 2"])
    results = run_many([humaneval, mbpp, wrong], allow_code_execution=True)
    assert [r.status for r in results] == ["passed", "passed", "failed"]
    assert "AssertionError" in results[2].stderr
    with pytest.raises(ValueError, match="check"):
        check_program(solution, ["assert add(1, 1) == 2"], "add")


def test_bad_limits_are_rejected():
    with pytest.raises(ValueError, match="memory_mb=0"):
        Limits(memory_mb=0)
