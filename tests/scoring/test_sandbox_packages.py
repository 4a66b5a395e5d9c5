"""Third-party packages in the sandbox: hidden unless named, importable read-only when named, and each failed
run says why (syntax error, import error, assertion, other exception, timeout, ...)."""
import hashlib
import os

import numpy
import pytest

from protege.errors import ConfigError
from protege.scoring.sandbox import isolation, run_many, run_program
from protege.scoring.sandbox.packages import package_view

USES_NUMPY = "import numpy as np\nassert np.arange(4).sum() == 6\nprint(np.__version__)"


def test_packages_are_hidden_unless_named():
    r = run_program(USES_NUMPY, allow_code_execution=True)
    assert (r.status, r.reason, r.missing_module) == ("failed", "import_error", "numpy"), r.stderr


def test_a_named_package_imports_and_others_stay_hidden():
    r = run_program(USES_NUMPY, packages=["numpy"], allow_code_execution=True)
    assert r.passed, r.stderr
    assert r.stdout.strip() == numpy.__version__
    hidden = run_program("import torch", packages=["numpy"], allow_code_execution=True)
    assert (hidden.reason, hidden.missing_module) == ("import_error", "torch")


def test_dependencies_come_with_the_package():
    """pandas needs numpy, dateutil, ... : naming pandas alone is enough."""
    r = run_program("import pandas as pd\nprint(int(pd.DataFrame({'a': [1, 2, 3]}).a.sum()))",
                    packages=["pandas"], allow_code_execution=True)
    assert r.passed and r.stdout.strip() == "6", r.stderr


def test_standard_library_names_need_no_view():
    assert package_view(["math", "json"]) is None
    assert package_view(None) is None


def test_the_package_files_cannot_be_changed():
    target = os.path.join(os.path.dirname(numpy.__file__), "version.py")
    before = hashlib.sha256(open(target, "rb").read()).hexdigest()
    view = package_view(["numpy"])
    attempts = ["open(target, 'a').write('pwned')", "os.remove(os.path.join(view, 'numpy'))",
                "os.symlink('/tmp', os.path.join(view, 'evil'))"]
    if isolation().readonly_fs:  # past the in-process guard only the read-only mounts hold
        attempts += ["__import__('_io').open(target, 'a').write('pwned')",
                     "__import__('posix').unlink(os.path.join(view, 'numpy'))"]
    code = "import os, numpy\ntarget, view = {!r}, {!r}\n".format(target, view) + "".join(
        f"try:\n    {a}\n    print('succeeded', {a!r})\nexcept OSError:\n    pass\n" for a in attempts)
    r = run_program(code, packages=["numpy"], allow_code_execution=True)
    assert r.passed and "succeeded" not in r.stdout, r.stdout + r.stderr
    assert hashlib.sha256(open(target, "rb").read()).hexdigest() == before
    assert sorted(os.listdir(view)) == sorted(os.listdir(package_view(["numpy"])))
    assert "evil" not in os.listdir(view) and "numpy" in os.listdir(view)


@pytest.mark.parametrize("name, fix", [("no_such_pkg_x", "pip install no_such_pkg_x"),
                                       ("numpy-core", "importable top-level name")])
def test_a_package_that_cannot_be_exposed_is_a_clear_error(name, fix):
    with pytest.raises(ConfigError, match=fix):
        run_program("pass", packages=[name], allow_code_execution=True)


def test_each_failure_names_its_reason():
    programs = {
        "passed": "x = 1",
        "syntax_error": "def f(:\n    pass",
        "import_error": "import numpy",
        "assertion": "assert 1 == 2, 'wrong'",
        "exception": "1 / 0",
        "exit_status": "import sys; sys.exit(3)",
        "timeout": "while True: pass",
    }
    results = run_many(list(programs.values()), timeout_s=1.0, allow_code_execution=True)
    assert [r.reason for r in results] == list(programs)
