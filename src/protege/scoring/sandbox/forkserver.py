"""Fork server: one long-lived trusted Python that forks a confined child per untrusted program.

Started by `pool.py` as `python -I -S -B forkserver.py FD LAYERS BASE RUN_UID` with a scrubbed environment
(stdlib only, so it loads its siblings by path). FD is its end of a SOCK_SEQPACKET socketpair; BASE the
directory the host creates run dirs in; RUN_UID the otherwise unused uid programs run under when we are root.
Starting an interpreter costs ~10 ms of CPU, forking this one ~1 ms: that is most of the sandbox's speed.
So is doing the expensive confinement once here instead of per run (see `setup`).

LAYERS is "probe" for the first server (try everything, report what the kernel allowed) or the layers the
probe found, which every later server and run must apply or refuse to run: fail closed, never silently weaker.

Messages are JSON. server -> host once: {"layers", "notes"} (or {"error"}). Per run, host -> server:
{"workdir", "scratch", "limits", "paths"} with the stdout/stderr write ends and a memfd holding the program attached;
server -> host: {"started"} (or {"error"}), later {"exit", "cpu_s"} (exit < 0: killed by that signal). Any
host message during a run means "kill it": the server kills, not the host, because only it knows the
child's pid in its own pid namespace, and it reaps the child only afterwards, so the pid cannot be reused.
"""
import gc
import importlib
import importlib.util
import json
import os
import select
import socket
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
# Imported once by the server so every forked program finds them in sys.modules: each HumanEval prompt
# starts with `from typing import List`, and a fresh import of typing alone costs several ms per run.
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
           "random", "hashlib", "fractions", "decimal", "dataclasses", "statistics")


def _load(name: str):
    path = os.path.join(HERE, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_protege_sandbox_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mods = types.SimpleNamespace(**{name: _load(name) for name in ("confine", "privileges", "guard", "child")})


def interpreter_paths() -> list[str]:
    paths = sys.path + [os.path.dirname(os.path.realpath(sys.executable))]
    return [os.path.realpath(p) for p in paths if os.path.isdir(p)]


def setup(base: str, layers: tuple | None) -> dict:
    """Once per server: the namespaces and mounts that every run inherits. `layers=None` probes."""
    probing, root = layers is None, os.geteuid() == 0
    want = lambda name: probing or name in layers  # noqa: E731
    applied, notes = [], []
    confine = mods.confine
    if not root and want("user"):
        # Without privileges the kernel grants namespaces only inside a user namespace of our own; uid 0 in
        # it is still us outside, so this gives programs nothing we did not have.
        got, more = confine.unshare([("user",)], strict=not probing)
        notes += more
        if got:
            confine.map_self(os.getuid(), os.getgid())
            applied.append("user")
    if (root or "user" in applied) and want("pid"):
        # The server becomes pid 1 of its own pid namespace, each run pid 1 of one nested in it: killing the
        # server (pool.py does, if it stops answering) then kills every process of every run.
        try:
            confine.become_pid1()
            applied.append("pid")
        except OSError as e:
            if not probing:
                raise
            notes.append(str(e))
    if (root or "user" in applied) and want("ro"):
        got, more = confine.unshare([("mnt",)], strict=not probing)
        notes += more
        if got:
            refused = confine.prepare_filesystem(base, interpreter_paths() if root else [])
            if not refused:
                applied.append("ro")
            elif probing:
                notes.append(f"read-only remount refused for {', '.join(refused)}")
            else:
                raise OSError(f"read-only remount refused for {', '.join(refused)}")
    if not root:
        applied.append("uid")  # we are not root, so neither are programs
    elif want("uid"):
        closed = [d for d in map(confine.first_closed_dir, interpreter_paths() + [base]) if d]
        if not closed:
            applied.append("uid")
        else:
            notes.append(f"programs run as root: the interpreter sits under {closed[0]}, which another uid "
                         "cannot enter, and without a mount namespace it cannot be exposed")
    server_wide = ("user", "pid", "ro", "uid")
    missing = [] if probing else [n for n in server_wide if n in layers and n not in applied]
    if missing:
        raise OSError(f"server-wide layers {missing} no longer apply: {'; '.join(notes)}")
    return {"layers": applied, "notes": notes}


def _fork_child(req: dict, fds: list[int], layers, run_uid, pid_ns, sock=None) -> int:
    pid = pid_ns.fork() if pid_ns is not None else os.fork()
    if pid == 0:
        try:
            if sock is not None:
                sock.close()
            mods.child.start(mods, req, fds, layers, run_uid, pid_ns is not None)
        finally:
            os._exit(mods.child.SETUP_EXIT)  # never fall back into the server loop
    return pid


def probe(base: str, run_uid, pid_ns) -> tuple[dict, object]:
    """Fork one child that applies every per-run layer the kernel allows and reports which held.
    Returns the report and the PidNamespaces to use from now on (None if per-run pid namespaces failed)."""
    workdir = tempfile.mkdtemp(prefix="probe-", dir=base)
    req = {"workdir": workdir, "scratch": True, "limits": {"scratch_mb": 1}}
    out_r, out_w = os.pipe()
    notes = []
    try:
        pid = _fork_child(req, [out_w, out_w], None, run_uid, pid_ns)
    except OSError as e:
        notes.append(f"pid namespace per run: {e}")
        pid_ns = None
        pid = _fork_child(req, [out_w, out_w], None, run_uid, pid_ns)
    os.close(out_w)
    data = b"".join(iter(lambda: os.read(out_r, 65536), b""))
    os.close(out_r)
    os.waitpid(pid, 0)
    os.rmdir(workdir)
    if not data.startswith(b"{"):
        return {"layers": [], "notes": notes + [data.decode(errors="replace")]}, pid_ns
    found = json.loads(data)
    return {"layers": found["layers"], "notes": notes + found["notes"]}, pid_ns


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the group first: without a pid namespace it is all we can reach
        try:
            kill(pid, 9)
        except ProcessLookupError:
            pass


def _supervise(sock: socket.socket, pid: int):
    """Wait for the child to exit; any message from the host meanwhile (or its EOF) means: kill it now.
    Returns the child's wait status, resource usage and whether the host is still there."""
    try:
        exited = os.pidfd_open(pid)
    except (AttributeError, OSError):  # kernels before 5.3: poll instead
        exited = None
    host_there = True
    try:
        while True:
            ready = select.select([sock] + ([exited] if exited is not None else []), [], [],
                                  None if exited is not None else 0.02)[0]
            if exited in ready or (exited is None and os.waitid(
                    os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None):
                break
            if sock in ready:
                host_there = bool(sock.recv(1 << 16))
                _kill(pid)
    finally:
        if exited is not None:
            os.close(exited)
    _kill(pid)  # stragglers in its group; the exited child is not reaped yet, so its pid is still ours
    _, status, usage = os.wait4(pid, 0)
    return status, usage, host_there


def serve(sock: socket.socket, layers: tuple, run_uid, pid_ns) -> None:
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        except OSError:
            return
        if not msg:
            return  # the host closed its end: it is done with us (or gone)
        if not fds:
            continue  # a kill request that crossed the exit report of a finished run
        try:
            pid = _fork_child(json.loads(msg), fds, layers, run_uid, pid_ns, sock)
            reply = {"started": True}
        except OSError as e:  # fail closed: no run without the pid namespace the probe promised
            pid, reply = None, {"error": f"{mods.child.SETUP_MARK}{e}"}
        for fd in fds:
            os.close(fd)
        try:
            sock.send(json.dumps(reply).encode())
            if pid is None:
                continue
            status, usage, host_there = _supervise(sock, pid)
            if not host_there:
                return
            cpu_s = usage.ru_utime + usage.ru_stime
            sock.send(json.dumps({"exit": os.waitstatus_to_exitcode(status), "cpu_s": cpu_s}).encode())
        except OSError:
            return


def main() -> None:
    fd, wanted, base, run_uid = sys.argv[1:5]
    sock = socket.socket(fileno=int(fd))
    for name in PRELOAD:
        importlib.import_module(name)
    # Children would otherwise let the collector walk (and so copy-on-write) every page the server filled.
    gc.freeze()
    layers = None if wanted == "probe" else tuple(n for n in wanted.split(",") if n)
    real_root = os.geteuid() == 0  # before setup(): inside our own user namespace we look like root too
    try:
        report = setup(base, layers)
        uid = int(run_uid) if real_root and "uid" in report["layers"] else None
        pid_ns = mods.confine.PidNamespaces() if "pid" in report["layers"] else None
        if layers is None:
            found, pid_ns = probe(base, uid, pid_ns)
            held = [n for n in report["layers"] if n != "pid" or pid_ns is not None] + found["layers"]
            report = {"layers": list(dict.fromkeys(held)), "notes": report["notes"] + found["notes"]}
        else:  # setup() applied the server-wide layers strictly; the per-run ones are enforced per run
            report["layers"] = list(layers)
    except OSError as e:
        report = {"error": f"{mods.child.SETUP_MARK}{e}"}
    sock.send(json.dumps(report).encode())
    if "error" not in report:
        serve(sock, tuple(report["layers"]), uid, pid_ns)


if __name__ == "__main__":
    main()
