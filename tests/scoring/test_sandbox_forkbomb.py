"""Attack: fork bomb whose children leave the process group. It stays bounded and nothing outlives the run.

The bomb is capped at 200 forks in its own code, so even if every sandbox limit failed it could not hurt the
machine; each child becomes `sleep <marker>` so we can look for survivors by command line.
"""
import os
import random
import signal
import subprocess
import time

from sandbox_packages import imports_of

from protege.scoring.sandbox import Limits, isolation, run_program

BOMB = """
import os, time
n = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        {escape}
        os.execv("/bin/sleep", ["sleep", "{marker}"])
    n += 1
print(n, flush=True)
time.sleep(60)
"""


def _survivors(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read().split(b"\0"):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def test_fork_bomb_is_bounded_and_fully_killed(packages):
    iso = isolation()
    marker = f"{40 + random.random():.6f}"  # a sleep length no other process uses
    # Without a pid namespace, children that setsid() escape the group kill: a documented limitation.
    escape = "os.setsid()" if iso.pid else "pass"
    try:
        r = run_program(imports_of(packages) + BOMB.format(escape=escape, marker=marker), timeout_s=2.0,
                        limits=Limits(max_procs=16), allow_code_execution=True, packages=packages)
        assert r.status == "timeout"
        forked = int(r.stdout.split()[0])
        if iso.nproc_enforced:
            assert forked <= 16, f"RLIMIT_NPROC should have stopped the bomb, it forked {forked}"
        deadline = time.monotonic() + 3.0
        while _survivors(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _survivors(marker) == []
        assert subprocess.run(["true"]).returncode == 0  # the host can still start processes
    finally:
        for pid in _survivors(marker):
            os.kill(pid, signal.SIGKILL)
