"""Run untrusted Python programs: one confined process tree each, output capped, wall clock enforced.

    from protege.scoring.sandbox import run_program, run_many
    run_program("print(1 + 1)", allow_code_execution=True).stdout   # '2\\n'

Each program runs in a child forked from a warm fork server (pool.py, forkserver.py, child.py) with its own
working dir (cwd, HOME and TMPDIR; a private tmpfs where the kernel allows, else a dir we delete), a
scrubbed environment, stdin closed, no privileges, rlimits (memory, CPU, processes, file size, open files)
and whatever namespaces this machine allows (`python -m protege.scoring.sandbox` says which).
Linux only. Nothing needs root; run as root (as in a container) every layer applies.
"""
from __future__ import annotations

import os
import selectors
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass, field

from protege.scoring.sandbox import pool
from protege.scoring.sandbox.isolation import isolation
from protege.scoring.sandbox.packages import package_view
from protege.scoring.sandbox.result import (
    SETUP_EXIT, SETUP_MARK, CodeExecutionNotAllowed, ExecResult, Limits, SandboxError, classify,
)

GRACE_S = 5.0  # after a kill, how long the server may take to report the exit before we call it broken
DRAIN_S = 0.5  # after the exit, how long to wait for stragglers that still hold the output pipes


def run_program(code: str, timeout_s: float = 5.0, limits: Limits | None = None,
                allow_code_execution: bool = False, packages: Sequence[str] | None = None) -> ExecResult:
    """`packages`: installed third-party packages the program may import (packages.py), read-only."""
    if not allow_code_execution:
        raise CodeExecutionNotAllowed()
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive; got {timeout_s!r}")
    limits = limits or Limits()
    view = package_view(packages)
    iso = isolation()
    base = pool.base_dir()
    # Without a private tmpfs per run, fall back to a dir on disk that we create and remove ourselves.
    workdir = os.path.join(base, pool.SCRATCH) if iso.scratch else tempfile.mkdtemp(prefix="run-", dir=base)
    try:
        server = pool.acquire()
        try:
            result, healthy = _execute(server, code, workdir, iso.scratch, timeout_s, limits, view)
        except BaseException:
            pool.discard(server)
            raise
        (pool.release if healthy else pool.discard)(server)
    finally:
        if not iso.scratch:
            shutil.rmtree(workdir, ignore_errors=True)
    notes = tuple(result.pop("notes")) + iso.notes
    return ExecResult(**result, network_isolated=iso.network, notes=notes)


def run_many(programs: list[str], workers: int | None = None, timeout_s: float = 5.0,
             limits: Limits | None = None, allow_code_execution: bool = False,
             packages: Sequence[str] | None = None) -> list[ExecResult]:
    """Results in the order of `programs`. Threads suffice: each program is its own process tree."""
    if not allow_code_execution:
        raise CodeExecutionNotAllowed()
    if not programs:
        return []
    workers = min(workers or os.cpu_count() or 1, len(programs))
    package_view(packages)  # built once here, not by every thread
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as ex:
        return list(ex.map(lambda p: run_program(p, timeout_s, limits, True, packages), programs))


@dataclass
class _Outcome:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    returncode: int | None = None  # None until the server reports the exit
    cpu_s: float = 0.0
    timed_out: bool = False
    overflowed: bool = False
    notes: list[str] = field(default_factory=list)


def _execute(server: pool.ForkServer, code: str, workdir: str, scratch: bool, timeout_s: float,
             limits: Limits, view: str | None) -> tuple[dict, bool]:
    """Returns the ExecResult fields (less isolation) and whether the server is fit for reuse."""
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    source = os.memfd_create("program", os.MFD_CLOEXEC)  # any size, no disk, gone with its last fd
    child_limits = limits.for_child(timeout_s)
    start = time.monotonic()
    try:
        os.write(source, code.encode("utf-8", "surrogatepass"))
        request = {"workdir": workdir, "scratch": scratch, "limits": child_limits, "paths": [view] if view else []}
        server.send(request, [out_w, err_w, source])
    finally:
        for fd in (out_w, err_w, source):
            os.close(fd)
    sel = selectors.DefaultSelector()
    try:
        started = server.recv(GRACE_S)
        if started is None or "error" in started:
            raise SandboxError(started["error"] if started else "sandbox fork server stopped answering")
        for fd in (out_r, err_r, server.sock):
            sel.register(fd, selectors.EVENT_READ)
        outcome = _Outcome()
        healthy = _collect(sel, server, {out_r: outcome.stdout, err_r: outcome.stderr}, outcome,
                           start + timeout_s, timeout_s, limits.output_bytes)
    finally:
        sel.close()
        os.close(out_r)
        os.close(err_r)
    stdout = outcome.stdout.decode("utf-8", "replace")
    stderr = outcome.stderr.decode("utf-8", "replace")
    if outcome.returncode == SETUP_EXIT and stderr.startswith(SETUP_MARK):
        raise SandboxError(f"{stderr.strip()} (the program did not run; see isolation.py for the layers)")
    cpu_exhausted = outcome.cpu_s >= child_limits["cpu_s"] - 0.05  # rusage is in ticks; allow for it
    if cpu_exhausted and not outcome.timed_out:
        outcome.notes.append(f"CPU time limit of {child_limits['cpu_s']:g}s reached")
    status = classify(outcome.returncode, stderr, outcome.timed_out, outcome.overflowed, cpu_exhausted)
    fields = dict(status=status, returncode=outcome.returncode, stdout=stdout, stderr=stderr,
                  wall_s=time.monotonic() - start, notes=outcome.notes)
    return fields, healthy


def _collect(sel, server: pool.ForkServer, buffers: dict, outcome: _Outcome, deadline: float,
             timeout_s: float, cap: int) -> bool:
    """Read output until the run is over; kill it on timeout or overflow. False: the server is broken."""
    total, killed = 0, False
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline:
            if killed and outcome.returncode is None:
                outcome.notes.append("fork server did not report the exit; discarded")
                return False
            if killed:
                outcome.notes.append("output pipes still held after exit; stopped reading")
                return True
            outcome.timed_out = killed = True
            outcome.notes.append(f"wall-clock timeout after {timeout_s:g}s: killed with all its processes")
            server.kill_run()
            deadline = now + GRACE_S
        for key, _ in sel.select(max(0.0, deadline - now)):
            if key.fileobj is server.sock:
                sel.unregister(server.sock)
                message = server.recv(0)
                if message is None:
                    outcome.notes.append("fork server died")
                    return False
                outcome.returncode, outcome.cpu_s = message["exit"], message["cpu_s"]
                killed, deadline = True, min(deadline, time.monotonic() + DRAIN_S)
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                continue
            buffers[key.fd] += chunk[: max(cap - total, 0)]
            total += len(chunk)
            if total > cap and not outcome.overflowed:
                outcome.overflowed = killed = True
                outcome.notes.append(f"output over {cap} bytes: truncated, killed with all its processes")
                server.kill_run()
                deadline = time.monotonic() + GRACE_S
    return True
