"""Attack: read the parent's secrets from the environment, directly or through /proc."""
import subprocess

import pytest

from sandbox_packages import imports_of

from protege.scoring.sandbox import isolation, run_program

SECRET = "protege-test-secret-8c1f0a"
SNOOP = f"""
import os
print("own env", any({SECRET!r} in v for v in os.environ.values()))
seen = False
for entry in os.listdir("/proc"):
    try:
        with open(f"/proc/{{entry}}/environ", "rb") as f:
            seen = seen or {SECRET!r}.encode() in f.read()
    except OSError:
        pass
print("proc env", seen)
"""


def test_child_environment_is_scrubbed(monkeypatch, packages):
    monkeypatch.setenv("PROTEGE_TEST_TOKEN", SECRET)
    r = run_program(imports_of(packages) + f"import os\nprint(sorted(os.environ))\nprint({SECRET!r} in repr(os.environ))",
                    allow_code_execution=True, packages=packages)
    assert r.stdout.splitlines()[-1] == "False"
    threads = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"} if packages else set()
    assert set(eval(r.stdout.splitlines()[0])) <= {"PATH", "HOME", "TMPDIR", "LANG"} | threads


def test_other_processes_environments_are_out_of_reach(monkeypatch, packages):
    iso = isolation()
    if not (iso.proc or iso.unprivileged):
        pytest.skip(f"programs can read /proc/*/environ of same-uid processes here: {'; '.join(iso.notes)}")
    monkeypatch.setenv("PROTEGE_TEST_TOKEN", SECRET)
    # /proc/<pid>/environ shows the environment a process started with, so start one holding the secret.
    holder = subprocess.Popen(["sleep", "30"])
    try:
        r = run_program(imports_of(packages) + SNOOP, allow_code_execution=True, packages=packages)
    finally:
        holder.kill()
        holder.wait()
    assert r.stdout.split("\n")[:2] == ["own env False", "proc env False"], r.stdout + r.stderr
