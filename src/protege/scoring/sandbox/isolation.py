"""Which confinement layers actually hold on this machine, detected once and stated plainly.

    python -m protege.scoring.sandbox     # prints the report

Layers (Linux mechanisms set up by forkserver.py/child.py with confine.py, each only where the kernel allows):
  unprivileged  programs run without root or capabilities (as root we switch to a uid of their own), so file
                permissions apply and RLIMIT_NPROC binds (the kernel exempts root from it)
  readonly_fs   every mount except the run dirs' base is read-only: writes and deletes elsewhere fail
  network       own network namespace with no interface up: no connections, not even to 127.0.0.1
  pid           own pid namespace: killing the run kills every process it started
  proc          a /proc showing only the run's processes: other processes' environments are out of sight
  scratch       the working dir is a fresh size-limited tmpfs only the run sees, gone when it ends
rlimits, the wall-clock kill and the in-process write guard (guard.py) apply everywhere.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from protege.scoring.sandbox import pool

MISSING = {
    "uid": "programs run as root: RLIMIT_NPROC does not bind, only the pid namespace contains fork bombs",
    "ro": "no read-only mounts: only the bypassable in-process guard stops writes outside the run dir",
    "net": "no network namespace: programs can open network connections",
    "pid": "no pid namespace: processes that leave the process group can outlive the run",
    "proc": "no private /proc: programs can see other processes and, as the same uid, their environments",
    "scratch": "no private scratch tmpfs: run dirs live on disk in one directory shared by all runs",
}


@dataclass(frozen=True)
class Isolation:
    unprivileged: bool
    readonly_fs: bool
    network: bool
    pid: bool
    proc: bool
    scratch: bool
    notes: tuple[str, ...]  # one line per layer that is missing, and why the kernel refused

    @property
    def nproc_enforced(self) -> bool:
        return self.unprivileged

    def describe(self) -> str:
        names = ("unprivileged", "readonly_fs", "network", "pid", "proc", "scratch")
        held = [name for name in names if getattr(self, name)]
        lines = [f"isolation layers in force: {', '.join(held) or 'none'}; "
                 "plus rlimits, wall-clock kill and in-process write guard"]
        return "\n".join(lines + [f"  - {note}" for note in self.notes])


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    report = pool.probe_report()
    layers = set(report["layers"])
    notes = [MISSING[name] for name in MISSING if name not in layers] + list(report["notes"])
    return Isolation(
        unprivileged="uid" in layers,
        readonly_fs="ro" in layers,
        network="net" in layers,
        pid="pid" in layers,
        proc="proc" in layers,
        scratch="scratch" in layers,
        notes=tuple(notes),
    )
