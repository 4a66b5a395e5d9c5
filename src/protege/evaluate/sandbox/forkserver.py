"""Fork server: one long-lived trusted Python that forks a confined child per untrusted program.

Started by `pool.py` as `python -I -S -B forkserver.py FD LAYERS` with a scrubbed environment (stdlib only, so
it loads its siblings by path). FD is its end of a SOCK_SEQPACKET socketpair. Starting an interpreter costs
~10 ms of CPU and forking this one ~1 ms, which is most of the sandbox's throughput. LAYERS is "probe" for the
first server (try every layer, report what the kernel allowed) or the comma-separated layers that probe found,
which every later run must apply or refuse to run (fail closed, never silently weaker).

Messages are JSON. server -> host once: {"layers", "notes"}. Per run, host -> server: {"workdir", "limits"}
with the stdout/stderr write ends attached; server -> host: {"pid"} then {"exit"} (negative = signal).

Process tree per run:  server -> runner (setsid, unshare) -> init (pid 1 of the new pid namespace: /proc,
read-only remounts) -> worker (rlimits, guard, the program). Killing the runner's process group kills init,
and the kernel then kills everything left in the namespace, even children that setsid() out of the group.
"""
import atexit
import builtins
import importlib.util
import json
import os
import signal
import socket
import sys
import tempfile
import traceback
import types

HERE = os.path.dirname(os.path.abspath(__file__))
MEMORY_EXIT = 86  # the program raised MemoryError (result.py maps it to status "memory")
SETUP_EXIT = 87  # confinement could not be applied, so the program never ran
SETUP_MARK = "protege-sandbox: setup failed: "


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_protege_sandbox_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


confine = _load("confine")
privileges = _load("privileges")
guard = _load("guard")


def _die_setup(message: str) -> None:
    os.write(2, f"{SETUP_MARK}{message}\n".encode())
    os._exit(SETUP_EXIT)


def _exit_like(code: int) -> None:
    """End this process the way the child did, so a signal death stays visible to the host as one."""
    if code < 0:
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL/SIGSTOP cannot be (and need not be) reset
            pass
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


def _close_fds_except(keep: set[int]) -> None:
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def runner(req: dict, fds: list[int], layers: tuple | None, sync: tuple[int, int]) -> None:
    """Forked from the server; never returns. `layers=None` means probe: try everything, report to stdout."""
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    _close_fds_except(set(sync))  # the server's socket and fd copies must not reach untrusted code
    os.setsid()
    workdir = req["workdir"]
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(PATH="/usr/local/bin:/usr/bin:/bin", HOME=workdir, TMPDIR=workdir, LANG="C.UTF-8")
    try:
        report = confine.enter(workdir, layers, sync)
    except OSError as e:
        _die_setup(str(e))
    os.close(sync[0])
    os.close(sync[1])
    if "pid" not in report["layers"]:
        if layers is None:
            os.write(1, json.dumps(report).encode())
            os._exit(0)
        worker(req)
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(status_r)
        init(req, layers, report, status_w)
    os.close(status_w)
    _, status = os.waitpid(pid, 0)
    data = b"".join(iter(lambda: os.read(status_r, 4096), b""))
    if layers is None:
        os.write(1, data)
        os._exit(0)
    _exit_like(int(data) if data else os.waitstatus_to_exitcode(status))


def init(req: dict, layers: tuple | None, report: dict, status_w: int) -> None:
    """pid 1 of the run's namespace: mount /proc, start the worker, reap, report the worker's exit."""
    privileges.undumpable()  # we keep capabilities in the namespace; the worker (same uid) must not ptrace us
    if "mnt" in report["layers"] and (layers is None or "proc" in layers):
        try:
            confine.mount_proc()
            report["layers"].append("proc")
        except OSError as e:
            if layers is not None:
                _die_setup(str(e))
            report["notes"].append(str(e))
    if layers is None:
        os.write(status_w, json.dumps(report).encode())
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        os.close(status_w)
        worker(req)
    while True:  # as pid 1 we also inherit every orphan, so reap until the worker itself is done
        done, status = os.waitpid(-1, 0)
        if done == pid:
            break
    os.write(status_w, str(os.waitstatus_to_exitcode(status)).encode())
    os._exit(0)  # init exiting makes the kernel SIGKILL whatever the program left behind


def worker(req: dict) -> None:
    """Run workdir/program.py as __main__ without capabilities, under rlimits and the write guard; never returns."""
    path = os.path.join(req["workdir"], "program.py")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        privileges.drop_privileges()
        privileges.set_limits(req["limits"])
    except OSError as e:
        _die_setup(str(e))
    guard.install(req["workdir"])
    main = types.ModuleType("__main__")
    main.__file__, main.__builtins__ = path, builtins
    sys.modules["__main__"], sys.argv = main, [path]
    code = 0
    try:
        exec(compile(source, path, "exec"), main.__dict__)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except MemoryError:
        code = MEMORY_EXIT
        os.write(2, b"MemoryError: the program exceeded its memory limit\n")
    except BaseException:  # noqa: BLE001 - any failure of untrusted code is a result, not our crash
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - a broken pipe at exit must not change the recorded code
        pass
    os._exit(code & 0xFF)


def _fork_runner(req: dict, fds: list[int], layers: tuple | None, sock=None) -> int:
    """Fork a runner and, if it entered a user namespace as root's child, map it onto nobody from here."""
    (ready_r, ready_w), (go_r, go_w) = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            if sock is not None:
                sock.close()
            runner(req, fds, layers, (ready_w, go_r))
        finally:
            os._exit(SETUP_EXIT)  # never fall back into the server loop
    os.close(ready_w)
    os.close(go_r)
    try:
        reply = b"g"
        if os.read(ready_r, 1) == b"u":
            try:
                confine.map_ids(str(pid), confine.NOBODY, confine.NOBODY)
            except OSError:
                reply = b"!"
        os.write(go_w, reply)
    except OSError:
        pass  # the runner died during setup; its exit status tells the host
    finally:
        os.close(ready_r)
        os.close(go_w)
    return pid


def probe() -> dict:
    workdir = tempfile.mkdtemp(prefix="protege-probe-")
    out_r, out_w = os.pipe()
    pid = _fork_runner({"workdir": workdir}, [out_w, out_w], None)
    os.close(out_w)
    data = b"".join(iter(lambda: os.read(out_r, 65536), b""))
    os.waitpid(pid, 0)
    os.rmdir(workdir)
    return json.loads(data) if data.startswith(b"{") else {"layers": [], "notes": [data.decode(errors="replace")]}


def serve(sock: socket.socket, layers: tuple) -> None:
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 2)
        except OSError:
            return
        if not msg:
            return  # the host closed its end: it is done with us (or gone)
        pid = _fork_runner(json.loads(msg), fds, layers, sock)
        for fd in fds:
            os.close(fd)
        try:
            sock.send(json.dumps({"pid": pid}).encode())
            _, status = os.waitpid(pid, 0)
            sock.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
        except OSError:
            return


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    report = probe() if sys.argv[2] == "probe" else {"layers": [n for n in sys.argv[2].split(",") if n], "notes": []}
    sock.send(json.dumps(report).encode())
    serve(sock, tuple(report["layers"]))


if __name__ == "__main__":
    main()
