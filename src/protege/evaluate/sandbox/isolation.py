"""Which confinement layers actually hold on this machine, detected once and stated plainly.

    python -m protege.evaluate.sandbox.isolation     # prints the report

Layers (all Linux namespaces set up by confine.py, or the fallback that applies without them):
  user        own user namespace: RLIMIT_NPROC is enforced even when we run as root
  network     own network namespace with no interface up: no connections, not even to 127.0.0.1
  pid         own pid namespace: killing the run kills every process it started
  proc        a /proc showing only the run's processes: other processes' environments are out of sight
  readonly_fs every mount except the run's temp dir is read-only, so writes and deletes elsewhere fail
The in-process write guard (guard.py) and rlimits apply everywhere; they are the only layers left when the
kernel refuses namespaces.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from protege.evaluate.sandbox import pool

MISSING = {
    "user": "no user namespace: RLIMIT_NPROC does not bind root, so only the pid namespace contains fork bombs",
    "net": "no network namespace: programs can open network connections",
    "pid": "no pid namespace: processes that leave the process group can outlive the run",
    "proc": "no private /proc: programs can read other processes' command lines and environments",
    "ro": "no read-only mounts: only the bypassable in-process guard stops writes outside the temp dir",
}


@dataclass(frozen=True)
class Isolation:
    user: bool
    network: bool
    pid: bool
    proc: bool
    readonly_fs: bool
    nproc_enforced: bool
    notes: tuple[str, ...]  # one line per layer that is missing, and why the kernel refused

    def describe(self) -> str:
        held = [name for name in ("user", "network", "pid", "proc", "readonly_fs") if getattr(self, name)]
        lines = [f"layers in force: {', '.join(held) or 'none'} + rlimits + in-process write guard"]
        lines.append(f"RLIMIT_NPROC enforced: {self.nproc_enforced}")
        return "\n".join(lines + [f"  - {note}" for note in self.notes])


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    report = pool.probe_report()
    layers = set(report["layers"])
    notes = [MISSING[name] for name in MISSING if name not in layers] + list(report["notes"])
    return Isolation(
        user="user" in layers,
        network="net" in layers,
        pid="pid" in layers,
        proc="proc" in layers,
        readonly_fs="ro" in layers,
        # The kernel exempts tasks with CAP_SYS_ADMIN/CAP_SYS_RESOURCE in the initial user namespace.
        nproc_enforced="user" in layers or os.geteuid() != 0,
        notes=tuple(notes),
    )


if __name__ == "__main__":
    print(isolation().describe())
