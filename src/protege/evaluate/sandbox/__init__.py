"""Sandboxed execution of untrusted (model-generated) Python, off unless the caller opts in.

    from protege.evaluate.sandbox import check_program, run_many
    results = run_many([check_program(sol, tests, "add")], allow_code_execution=True)
    python -m protege.evaluate.sandbox.isolation    # which isolation layers hold on this machine

Layout: runner.py (public entry points, output capture), pool.py + forkserver.py (warm trusted process that
forks one confined child per program), confine.py (namespaces, mounts, rlimits), guard.py (in-process write
guard), isolation.py (what the kernel allowed), result.py (types), program.py (solution + tests -> program).
"""
from protege.evaluate.sandbox.isolation import Isolation, isolation
from protege.evaluate.sandbox.program import check_program
from protege.evaluate.sandbox.result import CodeExecutionNotAllowed, ExecResult, Limits, SandboxError
from protege.evaluate.sandbox.runner import run_many, run_program

__all__ = [
    "CodeExecutionNotAllowed", "ExecResult", "Isolation", "Limits", "SandboxError",
    "check_program", "isolation", "run_many", "run_program",
]
