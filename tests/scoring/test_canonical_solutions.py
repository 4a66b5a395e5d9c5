"""Golden: every canonical MBPP (test split) and HumanEval solution passes in the sandbox; wrong ones fail."""
import pytest
from markers import requires_data

from protege.scoring.sandbox import run_many
from protege.tasks.kinds import code
from protege.tasks.spec import load_task


@requires_data
@pytest.mark.parametrize("name,count", [("humaneval", 164), ("mbpp", 500)])
def test_canonical_solutions_pass_and_wrong_ones_fail(name, count):
    spec = load_task(name)
    items = spec.test_examples()
    assert len(items) == count
    right = run_many([code.program(spec, it, code.parse(spec, code.target(spec, it))) for it in items],
                     timeout_s=10, allow_code_execution=True)
    failing = [(it.id, r.status, r.stderr[-300:]) for it, r in zip(items, right) if not r.passed]
    assert failing == []
    # The same programs with every function returning None: all must fail (asserts are really executed).
    wrong = run_many([code.program(spec, it, _returns_none(it.reference)) for it in items], timeout_s=10,
                     allow_code_execution=True)
    assert sum(r.passed for r in wrong) == 0


def _returns_none(reference: str) -> str:
    """Every `def` keeps its signature, and its body becomes `return None`."""
    import ast

    tree = ast.parse(reference)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = [ast.Return(value=ast.Constant(value=None))]
    return ast.unparse(tree)
