"""Installed third-party packages a sandboxed program may import, shown to it read-only.

    from protege.scoring.sandbox import run_program
    run_program("import numpy; print(numpy.ones(3).sum())", packages=["numpy"], allow_code_execution=True)

Programs see the standard library only unless their task names packages (`packages: [numpy, pandas]` in the
task spec, `--package` on `protege score`/`eval`). For those names, `package_view` builds once per host process
a directory of symbolic links to each package and everything its distribution requires (dependencies read from
the installed metadata), and the child puts that directory first on `sys.path`. The directory lives outside the
run dirs' base, so where the read-only file system layer holds (`python -m protege.scoring.sandbox`) the program
can neither change the links nor what they point to; every other layer (namespaces, rlimits, the write guard)
is unchanged. Packages not named stay hidden, which is why a missing name shows up as an import error in the
per-item `reason` and in the summary's warning.
"""
from __future__ import annotations

import atexit
import importlib.metadata as metadata
import importlib.util
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Sequence

from protege.errors import ConfigError

_views: dict[tuple[str, ...], str] = {}
_lock = threading.Lock()
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def package_view(names: Sequence[str] | None) -> str | None:
    """The directory to put on the program's sys.path, or None when no third-party package is named."""
    wanted = tuple(sorted({n for n in names or () if n not in sys.stdlib_module_names}))
    if not wanted:
        return None
    with _lock:
        if wanted not in _views:
            _views[wanted] = _build(wanted)
        return _views[wanted]


def _build(names: tuple[str, ...]) -> str:
    entries = {}  # link name -> real path
    owners = metadata.packages_distributions()  # top-level name -> distributions: one scan of site-packages
    for name in names:
        if not NAME.match(name):
            raise ConfigError("packages", [f"{name!r} is not an importable top-level name; write e.g. numpy, "
                                           "pandas, sklearn (what follows `import`)"])
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ConfigError("packages", [f"{name} is not installed in this environment ({sys.executable}); "
                                           f"install it (pip install {name}) or drop it from packages"])
        dists = owners.get(name)
        if not dists:  # a module outside any distribution: show just it
            entries[name] = _module_root(spec)
            continue
        for dist in _closure(dists):
            entries.update(_top_level(dist))
    _check_readable(entries.values())
    view = tempfile.mkdtemp(prefix="protege-sandbox-packages-")
    os.chmod(view, 0o755)  # programs may run as another uid (when we are root): they must list it
    for link, target in sorted(entries.items()):
        os.symlink(target, os.path.join(view, link))
    atexit.register(shutil.rmtree, view, True)
    return view


def _closure(dist_names: Sequence[str]) -> list[metadata.Distribution]:
    """The named distributions and every distribution they require (markers evaluated, extras left out)."""
    from packaging.requirements import Requirement

    seen, todo, out = set(), list(dist_names), []
    while todo:
        key = _normal(todo.pop())
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(key)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed: the package copes, as it does outside
        out.append(dist)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return out


def _top_level(dist: metadata.Distribution) -> dict[str, str]:
    """First path parts of the distribution's installed files (package dirs, modules, .libs, its dist-info)."""
    parts = {}
    for file in dist.files or []:
        first = file.parts[0]
        if first in ("..", "__pycache__") or first.endswith(".pth"):
            continue
        path = os.path.realpath(str(dist.locate_file(first)))
        if os.path.exists(path):
            parts[first] = path
    return parts


def _module_root(spec) -> str:
    if spec.submodule_search_locations:
        return os.path.realpath(list(spec.submodule_search_locations)[0])
    return os.path.realpath(spec.origin)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_readable(paths) -> None:
    """Programs run as an unprivileged uid when we are root: a package under a private home would not import."""
    if os.geteuid() != 0:
        return
    for path in set(paths):
        d = path if os.path.isdir(path) else os.path.dirname(path)
        while d not in ("/", ""):
            if not os.stat(d).st_mode & stat.S_IXOTH:
                raise ConfigError("packages", [
                    f"{path} is inside {d}, which other users cannot enter, and sandboxed programs run as an "
                    f"unprivileged user: install the packages in an environment outside {d} (or chmod o+x it)"])
            d = os.path.dirname(d)
