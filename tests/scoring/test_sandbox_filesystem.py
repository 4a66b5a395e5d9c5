"""Attack: write, delete and rename outside the run's directory. Files there survive; the run's own dir works."""
import os

import pytest

from sandbox_packages import imports_of

from protege.scoring.sandbox import isolation, run_program

ATTACK = """
import os, shutil
victim, folder = {victim!r}, {folder!r}
attempts = {{
    "remove": lambda: os.remove(victim),
    "overwrite": lambda: open(victim, "w").write("pwned"),
    "create": lambda: open(os.path.join(folder, "new.txt"), "w").write("pwned"),
    "rename": lambda: os.rename(victim, victim + ".moved"),
    "rmtree": lambda: shutil.rmtree(folder),
    {bypass}
}}
for name, attempt in attempts.items():
    try:
        attempt()
        print(name, "succeeded")
    except OSError as e:
        print(name, "refused", type(e).__name__)
open("mine.txt", "w").write("ok")
print("own dir", open("mine.txt").read())
"""
# The in-process guard can be bypassed from Python; only OS layers stop these.
BYPASS = '''"posix.unlink": lambda: __import__("posix").unlink(victim),
    "_io.open": lambda: __import__("_io").open(victim, "w").write("pwned"),'''


def _attack(tmp_path, bypass: str, packages=None):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    r = run_program(imports_of(packages) + ATTACK.format(victim=str(victim), folder=str(tmp_path), bypass=bypass),
                    allow_code_execution=True, packages=packages)
    assert r.status == "passed", r.stderr
    assert "succeeded" not in r.stdout, r.stdout
    assert "own dir ok" in r.stdout
    assert victim.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["victim.txt"]


def test_python_level_writes_outside_are_refused(tmp_path, packages):
    _attack(tmp_path, bypass="", packages=packages)


def test_bypassing_the_guard_still_fails_at_the_os_level(tmp_path, packages):
    iso = isolation()
    if not (iso.readonly_fs or iso.unprivileged):
        pytest.skip(f"no OS-level write protection here: {'; '.join(iso.notes)}")
    _attack(tmp_path, bypass=BYPASS, packages=packages)
