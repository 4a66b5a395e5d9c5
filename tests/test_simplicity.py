"""Code curation: the measures (cyclomatic complexity, AST size, lint, unused and needless code) on known
snippets; the simplicity filter prefers a short solution to a needlessly complex equivalent and reports sizes
before and after; the execution filter keeps passing solutions and drops failing ones (sandbox, Linux only)."""
import sys

import pytest

from protege.config import CurateConfig
from protege.synth.curate import curate
from protege.synth.filters.codemetrics import measure
from protege.synth.filters.simplicity import simplest_solutions
from protege.tasks.spec import DataSource, Example, TaskSpec

TESTS = "assert count_evens([1, 2, 3, 4]) == 2\nassert count_evens([]) == 0\nassert count_evens([1, 3]) == 0"
SHORT = "def count_evens(nums):\n    return sum(1 for n in nums if n % 2 == 0)\n"
COMPLEX = '''import math


class Counter:
    def __init__(self):
        self.total = 0

    def add(self, amount):
        self.total = self.total + amount


def is_even(n):
    return n % 2 == 0


def count_evens(nums):
    counter = Counter()
    unused = 0
    for n in nums:
        if is_even(n) == True:
            counter.add(1)
        elif not is_even(n):
            counter.add(0)
        else:
            continue
    return counter.total
'''
WRONG = "def count_evens(nums):\n    return len(nums)\n"
HANGS = "def count_evens(nums):\n    while True:\n        pass\n"
SPEC = TaskSpec(name="evens", kind="code", description="Write the function.",
                seeds=[Example(text="add", tests="assert add(1, 2) == 3", entry_point="add")],
                test=DataSource(path="unused.jsonl"))


def code_rec(i, reference, text="Write a function to count the even numbers in a list."):
    # as generation writes them: no entry_point with assert tests (curation finds the function the tests call)
    return {"id": f"gen-{i}", "text": text, "reference": reference, "tests": TESTS, "ok": True}


# -- measures ----------------------------------------------------------------------------------------------
def test_cyclomatic_counts_decision_points():
    assert measure(SHORT).cyclomatic == 3  # 1 + the generator's loop and its filter
    src = "def f(x, ys):\n    if x and x > 1 or x < -1:\n        return [y for y in ys]\n    while x:\n" \
          "        try:\n            x -= 1\n        except ValueError:\n            pass\n    return 1 if x else 2\n"
    assert measure(src).cyclomatic == 1 + 1 + 2 + 1 + 1 + 1 + 1  # if, and/or, comprehension, while, except, ifexp


def test_lint_unused_and_needless_code_are_found():
    m = measure(COMPLEX, entry_point="count_evens", tests=TESTS)
    assert m.unused == ["unused import math", "unused variable unused in count_evens"]
    assert m.needless == ["class Counter used once"]  # is_even is used twice: it earns its keep
    bad = measure("from os import *\ndef f(x):\n    if x is 1:\n        return y\n    return f'no placeholders'\n")
    assert bad.lint == ["line 1: star import from os", "line 3: `is` comparison with a literal",
                        "line 5: f-string without placeholders"]
    assert measure("def f(x):\n    return y + x\n").lint == ["undefined name y"]
    wrapper = "def helper(x):\n    y = x * 2\n    return y + 1\n\ndef f(x):\n    return helper(x)\n"
    assert measure(wrapper, entry_point="f").needless == ["f only returns helper(...), its single use"]
    # imports the tests rely on (MBPP asserts may call math.isclose) are not unused
    assert measure("import math\ndef f(x):\n    return x\n", "f", "assert math.isclose(f(1.0), 1.0)").unused == []


# -- simplicity --------------------------------------------------------------------------------------------
def test_simplicity_prefers_the_short_solution_and_reports_before_after_sizes():
    records = [code_rec(0, COMPLEX), code_rec(1, SHORT)]
    drops, stats = simplest_solutions(records, CurateConfig(drop_unused=False, drop_lint=False))
    assert list(drops) == [0] and drops[0][0] == "simpler_solution_kept" and drops[0][1]["kept"] == "gen-1"
    assert stats["before"]["solutions"] == 2 and stats["after"]["solutions"] == 1
    for key in ("lines", "ast_nodes", "cyclomatic"):
        assert stats["after"][key]["mean"] < stats["before"][key]["mean"], key
    assert stats["after"]["lines"] == {"mean": 2, "median": 2, "max": 2}


def test_simplicity_thresholds_and_unused_code_drop_with_reasons():
    records = [code_rec(0, COMPLEX, text="Problem A."), code_rec(1, SHORT, text="Problem B."),
               code_rec(2, COMPLEX.replace("import math\n", "").replace("    unused = 0\n", ""), text="Problem C.")]
    drops, _ = simplest_solutions(records, CurateConfig(drop_lint=False))
    assert {pos: reason for pos, (reason, _) in drops.items()} == {0: "unused_code", 2: "needless_abstraction"}
    drops, _ = simplest_solutions(records, CurateConfig(drop_lint=False, drop_unused=False, max_cyclomatic=3))
    assert {pos: reason for pos, (reason, _) in drops.items()} == {0: "too_complex", 2: "too_complex"}
    drops, _ = simplest_solutions(records, CurateConfig(drop_unused=False, max_lines=5))
    assert {pos: reason for pos, (reason, _) in drops.items()} == {0: "too_long", 2: "too_long"}


# -- execution in the sandbox -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox():
    if not sys.platform.startswith("linux"):
        pytest.skip("the sandbox runs on Linux only")
    from protege.scoring.sandbox import SandboxError, isolation

    try:
        isolation()
    except (SandboxError, OSError) as e:
        pytest.skip(f"sandbox unavailable here: {e}")


def test_execution_keeps_passing_and_drops_failing_solutions(sandbox):
    gen = [code_rec(0, SHORT, text="Count the even numbers in a list."),
           code_rec(1, WRONG, text="Count how many list items are even."),
           code_rec(2, HANGS, text="Return the number of even values.")]
    cfg = CurateConfig(allow_code_execution=True, exec_timeout_s=1.0, contam_cosine=None)
    result = curate(SPEC, cfg, gen)
    assert [r["id"] for r in result.kept] == ["gen-0"]
    by = {r["id"]: r for r in result.dropped}
    assert by["gen-1"]["reason"] == "tests_failed" and "AssertionError" in by["gen-1"]["detail"]["error"]
    assert by["gen-2"]["reason"] == "tests_timeout"
    # assert-style tests: the row carries no entry_point, like the task's own MBPP items
    assert result.kept[0] == {"id": "gen-0", "text": "Count the even numbers in a list.", "reference": SHORT,
                              "tests": TESTS}


def test_code_curation_end_to_end_keeps_the_simplest_passing_solution(sandbox):
    gen = [code_rec(0, COMPLEX), code_rec(1, WRONG), code_rec(2, SHORT), code_rec(3, SHORT.replace("nums", "xs"))]
    cfg = CurateConfig(allow_code_execution=True, contam_cosine=None)
    result = curate(SPEC, cfg, gen)
    assert [r["id"] for r in result.kept] == ["gen-2"]  # gen-3 is as simple: the tie goes to the earlier id
    assert {r["id"]: (r["dropped_by"], r["reason"]) for r in result.dropped} == {
        "gen-0": ("simplicity", "unused_code"), "gen-1": ("execution", "tests_failed"),
        "gen-3": ("simplicity", "simpler_solution_kept")}
    assert result.code_stats["before"]["solutions"] == 3 and result.code_stats["after"]["solutions"] == 1
