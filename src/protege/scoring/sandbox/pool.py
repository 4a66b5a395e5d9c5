"""Host-side handles on fork servers (see forkserver.py), kept warm and shared by all threads.

The first server started also probes which confinement layers this machine allows; that answer is cached
for the life of the process and handed to every later server, so probing happens once. Run directories
live in one base directory per host process (`base_dir()`), removed at exit.
"""
from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

from protege.scoring.sandbox.result import SandboxError

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkserver.py")
# Nothing of the parent's environment (tokens, keys) reaches the server or, through it, untrusted code.
SERVER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}
START_TIMEOUT_S = 30.0
# When the server is root, each server's programs run as a uid of their own from this otherwise unused
# range, so concurrent runs cannot touch each other's files and RLIMIT_NPROC counts one run at a time.
RUN_UID_BASE = 1 << 30
SCRATCH = "scratch"  # every run mounts its own tmpfs here, in its own mount namespace

_lock = threading.Lock()
_idle: list[ForkServer] = []
_probe: dict | None = None  # {"layers": [...], "notes": [...]} from the first server
_base: str | None = None
_slots = itertools.count()


def base_dir() -> str:
    global _base
    with _lock:
        if _base is None:
            _base = os.path.realpath(tempfile.mkdtemp(prefix="protege-sandbox-"))
            os.chmod(_base, 0o711)  # run uids may enter to reach their own dir, not list the others
            os.mkdir(os.path.join(_base, SCRATCH))
        return _base


class ForkServer:
    def __init__(self, layers_arg: str, base: str):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        run_uid = RUN_UID_BASE + ((os.getpid() & 0xFFFF) << 8) + next(_slots) % 256
        with theirs:
            # -S: no site-packages import (~4 ms less per server); programs get the standard library only.
            argv = [str(theirs.fileno()), layers_arg, base, str(run_uid)]
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", SERVER, *argv],
                pass_fds=[theirs.fileno()], env=SERVER_ENV, cwd="/", stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, start_new_session=True,
            )
        self.sock = ours
        self.report = self.recv(START_TIMEOUT_S)
        if self.report is None or "error" in self.report:
            self.close()
            why = self.report["error"] if self.report else f"exit code {self.proc.poll()}; see stderr"
            raise SandboxError(f"sandbox fork server did not start: {why}")

    def send(self, message: dict, fds: list[int]) -> None:
        socket.send_fds(self.sock, [json.dumps(message).encode()], fds)

    def kill_run(self) -> None:
        try:
            self.sock.send(b'{"kill": true}')
        except OSError:
            pass  # a dead server cannot report an exit either; the caller discards it after GRACE_S

    def recv(self, timeout: float | None) -> dict | None:
        """One message, or None if the server went away or said nothing within `timeout`."""
        if not select.select([self.sock], [], [], timeout)[0]:
            return None
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            return None
        return json.loads(data) if data else None

    def close(self) -> None:
        # The server exits on EOF after killing any run in progress. A kill covers a server that no longer
        # answers; as pid 1 of its own pid namespace it then takes every run's processes with it.
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def probe_report() -> dict:
    """What the first server found this machine allows (starts it if needed)."""
    release(acquire())
    return _probe


def acquire() -> ForkServer:
    global _probe
    base = base_dir()
    with _lock:
        if _idle:
            return _idle.pop()
        if _probe is None:
            server = ForkServer("probe", base)
            _probe = server.report
            return server
    return ForkServer(",".join(_probe["layers"]) or ",", base)


def release(server: ForkServer) -> None:
    with _lock:
        _idle.append(server)


def discard(server: ForkServer) -> None:
    server.close()


def _forget_after_fork() -> None:
    # A forked copy of this process (multiprocessing) must not share our servers, sockets or run dirs.
    global _lock, _base
    _lock, _base = threading.Lock(), None
    _idle.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def _shutdown() -> None:
    with _lock:
        while _idle:
            _idle.pop().close()
        if _base is not None:
            shutil.rmtree(_base, ignore_errors=True)
