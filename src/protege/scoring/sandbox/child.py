"""What a fork server child does for one run: enter its namespaces, drop privileges, run the program.

Loaded by path from `forkserver.py` (standard library only). The child is forked straight into a fresh pid
namespace where the kernel allows it, so it is that namespace's pid 1: when it dies, for whatever reason,
the kernel kills every process it left behind, including children that setsid() out of its process group.
The server kills it (and its process group) when the host asks, on timeout or too much output.
"""
import atexit
import builtins
import json
import linecache
import os
import sys
import traceback
import types

MEMORY_EXIT = 86  # the program raised MemoryError (result.py maps it to status "memory")
SETUP_EXIT = 87  # confinement could not be applied, so the program never ran
SETUP_MARK = "protege-sandbox: setup failed: "


def die_setup(message: str) -> None:
    os.write(2, f"{SETUP_MARK}{message}\n".encode())
    os._exit(SETUP_EXIT)


def enter(mods, req: dict, layers: tuple | None, run_uid: int | None, in_pid_ns: bool) -> dict:
    """Per-run namespaces: network, and a mount namespace for a private scratch dir and /proc."""
    probing = layers is None
    want = lambda name: probing or name in layers  # noqa: E731
    workdir, uid = req["workdir"], os.getuid() if run_uid is None else run_uid
    if probing:
        combos = [("mnt", "net"), ("net",), ()]
    else:
        combos = [tuple(n for n in ("mnt", "net") if n in layers)]
    got, notes = mods.confine.unshare(combos, strict=not probing)
    report = {"layers": list(got) + (["pid"] if in_pid_ns else []), "notes": notes}
    scratch_mb = req["limits"]["scratch_mb"]
    steps = [("scratch", lambda: mods.confine.mount_scratch(workdir, scratch_mb, uid, uid))]
    if in_pid_ns:
        steps.append(("proc", mods.confine.mount_proc))
    for name, step in steps:
        if "mnt" in got and want(name) and (name != "scratch" or req["scratch"]):
            try:
                step()
                report["layers"].append(name)
            except OSError as e:
                if not probing:
                    raise
                report["notes"].append(str(e))
    if not req["scratch"] and run_uid is not None:
        os.chown(workdir, run_uid, run_uid)  # a dir the host made on disk: hand it to the run's uid
    os.chdir(workdir)
    return report


def start(mods, req: dict, fds: list[int], layers: tuple | None, run_uid: int | None,
          in_pid_ns: bool) -> None:
    """Never returns. `layers=None` probes: apply what the kernel allows and print a report instead of
    running anything. `run_uid`: the uid to run as when the server is root (None: keep ours, not root).
    fds: stdout and stderr write ends, then a memfd holding the program's source."""
    raw = os.pread(fds[2], os.fstat(fds[2]).st_size, 0) if len(fds) > 2 else b""
    source = raw.decode("utf-8", "surrogatepass")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    os.closerange(3, 1 << 16)  # the server's socket, namespace handle and fd copies stay out of reach
    os.setsid()
    workdir = req["workdir"]
    os.environ.clear()
    os.environ.update(PATH="/usr/local/bin:/usr/bin:/bin", HOME=workdir, TMPDIR=workdir, LANG="C.UTF-8")
    paths = req.get("paths") or []
    if paths:  # third-party packages the task named (packages.py): first on the path, threads kept to one
        sys.path[:0] = paths
        os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    path = os.path.join(workdir, "program.py")
    try:
        report = enter(mods, req, layers, run_uid, in_pid_ns)
        if layers is None:
            os.write(1, json.dumps(report).encode())
            os._exit(0)
        mods.privileges.drop_privileges(run_uid)
        # Without root the server and its parent share the program's uid in its user namespace.
        mods.privileges.set_limits(req["limits"], also_counted=2 if "user" in layers else 0)
    except OSError as e:
        die_setup(str(e))
    mods.guard.install(workdir)
    run(source, path)


def run(source: str, path: str) -> None:
    """Execute the program as __main__ and exit with its status; never returns."""
    # Tracebacks read source lines through linecache; seeding it saves writing the file (mtime None: kept).
    linecache.cache[path] = (len(source), None, source.splitlines(True), path)
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
    except BaseException as e:  # noqa: BLE001 - any failure of untrusted code is a result, not our crash
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)  # tb_next: skip this file's frame
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - a broken pipe at exit must not change the recorded code
        pass
    os._exit(code & 0xFF)
