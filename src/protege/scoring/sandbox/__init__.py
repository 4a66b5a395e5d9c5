"""Sandboxed execution of untrusted (model-generated) Python, off unless the caller opts in. Linux only.

    from protege.scoring.sandbox import check_program, run_many
    results = run_many([check_program(solution, tests, "add")], allow_code_execution=True)
    python -m protege.scoring.sandbox    # which isolation layers hold on this machine

Programs see the standard library only, plus installed packages a task names (packages.py). Layout:
  runner.py      run_program / run_many: output capture, wall clock, result
  pool.py        warm fork servers on the host side, probed once
  forkserver.py  the trusted server process: server-wide confinement, one forked child per program
  child.py       per-run namespaces, privilege drop, executing the program
  confine.py     namespace and mount mechanisms;  privileges.py  capabilities and rlimits
  guard.py       in-process write guard (defence in depth);  isolation.py  what the kernel allowed
  result.py      Limits, ExecResult (status, reason), errors;  program.py  solution + tests -> one program
  packages.py    read-only links to the third-party packages a task names
"""
from protege.scoring.sandbox.isolation import Isolation, isolation
from protege.scoring.sandbox.program import check_program
from protege.scoring.sandbox.result import CodeExecutionNotAllowed, ExecResult, Limits, SandboxError
from protege.scoring.sandbox.runner import run_many, run_program

__all__ = [
    "CodeExecutionNotAllowed", "ExecResult", "Isolation", "Limits", "SandboxError",
    "check_program", "isolation", "run_many", "run_program",
]
