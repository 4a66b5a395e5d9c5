"""Run untrusted Python programs: one confined process tree each, output capped, wall clock enforced.

    from protege.evaluate.sandbox import run_program, run_many
    run_program("print(1 + 1)", allow_code_execution=True).stdout   # '2\\n'

Each program gets its own temp dir (its cwd, HOME and TMPDIR, deleted afterwards), a scrubbed environment,
stdin closed, rlimits (memory, CPU, processes, file size, open files) and whatever namespaces this machine
allows (see isolation.py). Nothing here needs root; as root in a container every layer applies.
"""
from __future__ import annotations

import os
import selectors
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from protege.evaluate.sandbox import pool
from protege.evaluate.sandbox.isolation import isolation
from protege.evaluate.sandbox.result import (
    SETUP_EXIT, SETUP_MARK, CodeExecutionNotAllowed, ExecResult, Limits, SandboxError, classify,
)

GRACE_S = 5.0  # after a kill, how long the server may take to report the exit before we call it broken
DRAIN_S = 0.5  # after the exit, how long to wait for stragglers that still hold the output pipes


def run_program(code: str, timeout_s: float = 5.0, limits: Limits | None = None,
                allow_code_execution: bool = False) -> ExecResult:
    if not allow_code_execution:
        raise CodeExecutionNotAllowed()
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive; got {timeout_s!r}")
    limits = limits or Limits()
    iso = isolation()
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="protege-sandbox-"))
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as f:
            f.write(code)
        server = pool.acquire()
        try:
            result, healthy = _execute(server, workdir, timeout_s, limits)
        except BaseException:
            pool.discard(server)
            raise
        (pool.release if healthy else pool.discard)(server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    notes = tuple(result.pop("notes")) + iso.notes
    return ExecResult(**result, network_isolated=iso.network, notes=notes)


def run_many(programs: list[str], workers: int | None = None, timeout_s: float = 5.0,
             limits: Limits | None = None, allow_code_execution: bool = False) -> list[ExecResult]:
    """Results in the order of `programs`. Threads suffice: each program is its own process tree."""
    if not allow_code_execution:
        raise CodeExecutionNotAllowed()
    if not programs:
        return []
    workers = min(workers or os.cpu_count() or 1, len(programs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as ex:
        return list(ex.map(lambda p: run_program(p, timeout_s, limits, allow_code_execution=True), programs))


def _kill(pid: int) -> None:
    # The runner is its own process group leader (setsid). Until the server reports its exit it is unreaped,
    # so the pid cannot have been reused. Killing the pid too covers the instant before its setsid().
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _execute(server: pool.ForkServer, workdir: str, timeout_s: float, limits: Limits) -> tuple[dict, bool]:
    """Returns the ExecResult fields (less isolation) and whether the server is fit for reuse."""
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    start = time.monotonic()
    try:
        server.send({"workdir": workdir, "limits": limits.for_child(timeout_s)}, [out_w, err_w])
    finally:
        os.close(out_w)
        os.close(err_w)
    started = server.recv(GRACE_S)
    if started is None:
        os.close(out_r)
        os.close(err_r)
        raise SandboxError("sandbox fork server stopped answering before the program started")
    pid = started["pid"]
    captured = {out_r: bytearray(), err_r: bytearray()}
    total, returncode, notes = 0, None, []
    timed_out = overflowed = killed = False
    deadline = start + timeout_s
    sel = selectors.DefaultSelector()
    for fd in (out_r, err_r, server.sock):
        sel.register(fd, selectors.EVENT_READ)
    try:
        while len(sel.get_map()) > 0:
            now = time.monotonic()
            if not killed and now >= deadline:
                timed_out = killed = True
                notes.append(f"wall-clock timeout after {timeout_s:g}s: process group killed")
                _kill(pid)
                deadline = now + GRACE_S
            elif killed and now >= deadline:
                if returncode is None:
                    notes.append("fork server did not report the exit; discarded")
                    return _fields(captured, out_r, err_r, None, start, timed_out, overflowed, notes), False
                notes.append("output pipes still held after exit; stopped reading")
                break
            for key, _ in sel.select(max(0.0, deadline - now)):
                if key.fileobj is server.sock:
                    sel.unregister(server.sock)
                    message = server.recv(0)
                    if message is None:
                        notes.append("fork server died")
                        return _fields(captured, out_r, err_r, None, start, timed_out, overflowed, notes), False
                    returncode = message["exit"]
                    _kill(pid)  # leftovers in the group (only possible without a pid namespace)
                    killed, deadline = True, min(deadline, time.monotonic() + DRAIN_S)
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                room = limits.output_bytes - total
                captured[key.fd] += chunk[: max(room, 0)]
                total += len(chunk)
                if total > limits.output_bytes and not overflowed:
                    overflowed = killed = True
                    notes.append(f"output over {limits.output_bytes} bytes: truncated and process group killed")
                    _kill(pid)
                    deadline = time.monotonic() + GRACE_S
    finally:
        sel.close()
    return _fields(captured, out_r, err_r, returncode, start, timed_out, overflowed, notes), True


def _fields(captured, out_r, err_r, returncode, start, timed_out, overflowed, notes) -> dict:
    os.close(out_r)
    os.close(err_r)
    stdout = captured[out_r].decode("utf-8", "replace")
    stderr = captured[err_r].decode("utf-8", "replace")
    if returncode == SETUP_EXIT and stderr.startswith(SETUP_MARK):
        raise SandboxError(f"{stderr.strip()} (the program did not run; see isolation.py for the layers)")
    status = classify(returncode, stderr, timed_out, overflowed)
    return dict(status=status, returncode=returncode, stdout=stdout, stderr=stderr,
                wall_s=time.monotonic() - start, notes=notes)
