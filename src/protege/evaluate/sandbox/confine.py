"""Namespace and mount steps, run inside a freshly forked sandbox child (never in the host process).

Loaded by path from `forkserver.py`, which runs under `python -I -S`, so this file imports only the standard
library. Each function is one Linux mechanism; `enter()` (last) applies them in the order the kernel needs:

    unshare()          new namespaces, trying the combinations it is given until the kernel accepts one
    map_ids(), become()  run as an unprivileged uid (nobody when we are root) so rlimits and permissions bind
    bind_workdir()     private mount propagation; the temp dir bound onto itself so it stays writable
    expose()           make the interpreter's files reachable for nobody when they sit under /root (0700)
    readonly_rest()    remount every other mount read-only
    mount_proc()       a /proc that shows only this run's processes (hides the host's environments)
"""
import ctypes
import os
import re
import stat
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
FLAGS = {"user": CLONE_NEWUSER, "mnt": CLONE_NEWNS, "net": CLONE_NEWNET, "pid": CLONE_NEWPID}
NOBODY = 65534

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
# Inside a user namespace the kernel refuses a remount that drops an inherited nosuid/nodev/noexec ("locked").
LOCKED = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


class SetupError(OSError):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(err, f"{what}: {os.strerror(err)}")


def _mount(src, target, fstype, flags: int, what: str, data: bytes | None = None) -> None:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(enc(src), enc(target), enc(fstype), flags, data), what)


def unshare(combos: list[tuple[str, ...]], strict: bool) -> tuple[tuple[str, ...], list[str]]:
    """Enter the first combination of namespaces the kernel accepts; with `strict`, the first or SetupError."""
    notes = []
    for combo in combos:
        if not combo or _libc.unshare(sum(FLAGS[n] for n in combo)) == 0:
            return combo, notes
        err = ctypes.get_errno()
        notes.append(f"unshare({'+'.join(combo)}) refused: {os.strerror(err)}")
        if strict:
            raise SetupError(err, notes[-1])
    return (), notes


def map_ids(pid: str, outer_uid: int, outer_gid: int) -> None:
    """Map uid/gid 0 inside the user namespace of `pid` ("self" or a number) to the given outer ids.

    Real root maps a child onto `nobody` from outside (mapping another uid needs CAP_SETUID in the parent
    namespace). Anyone else maps themselves, which requires denying setgroups first.
    """
    steps = [("uid_map", f"0 {outer_uid} 1"), ("gid_map", f"0 {outer_gid} 1")]
    for name, text in ([("setgroups", "deny")] if pid == "self" else []) + steps:
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)


def become(uid: int, gid: int) -> None:
    """Switch to (uid, gid); inside a user namespace 0 is the mapped outer id, so the kernel now accounts
    processes and file access to that unprivileged id (root, INIT_USER, is exempt from RLIMIT_NPROC)."""
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def bind_workdir(workdir: str) -> None:
    # Private propagation first, so nothing we mount leaks back into the host's mount namespace.
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "make mounts private")
    _mount(workdir, workdir, None, MS_BIND | MS_REC, f"bind {workdir}")
    os.chdir(workdir)  # the old cwd still points into the mount that is about to become read-only


def _first_closed_dir(path: str) -> str | None:
    """The first directory on the way to `path` that other users may not enter, if any."""
    current = "/"
    for part in path.strip("/").split("/"):
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
        current = os.path.join(current, part)
    return None


def expose(paths: list[str]) -> None:
    """Make `paths` reachable for an unprivileged uid without opening anything else.

    Python may live under a private directory (pyenv in /root, mode 0700) that `nobody` cannot enter. Each
    such directory is covered with an empty tmpfs holding bind mounts of just the entries leading to `paths`,
    which also hides the rest of it (keys, histories) from the program. Run as real root, before entering the
    user namespace: there the skeleton's files could not be created for an unmapped owner (EOVERFLOW).
    """
    paths = [os.path.realpath(p) for p in paths if os.path.exists(p)]
    for _ in range(8):  # one round per level of nested private directories
        plan: dict[str, set[str]] = {}
        for path in paths:
            closed = _first_closed_dir(path)
            if closed is not None:
                plan.setdefault(closed, set()).add(os.path.relpath(path, closed).split("/")[0])
        if not plan:
            return
        for closed, entries in plan.items():
            fds = {name: os.open(os.path.join(closed, name), os.O_PATH) for name in entries}
            _mount("tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, f"cover {closed}", b"mode=755,size=64k")
            for name, fd in fds.items():
                target = os.path.join(closed, name)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.mkdir(target)
                else:
                    os.close(os.open(target, os.O_CREAT | os.O_WRONLY))
                _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, f"expose {target}")
                os.close(fd)
    raise SetupError(0, f"could not expose {paths} to an unprivileged uid")


def _mountinfo() -> list[tuple[str, int]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            # Mount points escape whitespace as octal (\040); decode so the path can be passed back.
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            locked = sum(LOCKED.get(opt, 0) for opt in fields[5].split(","))
            out.append((point, locked))
    return out


def readonly_rest(workdir: str) -> list[str]:
    """Remount all mounts except `workdir` read-only; returns the mount points that refused. Done as real
    root before entering a user namespace, the kernel then locks them read-only for everything inside."""
    failed = []
    for point, locked in _mountinfo():
        if point == workdir:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | locked
        if _libc.mount(None, os.fsencode(point), None, flags, None) != 0:
            failed.append(f"{point} ({os.strerror(ctypes.get_errno())})")
    return failed


def mount_proc() -> None:
    """Must run in a process inside the new pid namespace: /proc shows the mounter's namespace. Read-only
    because the kernel refuses a new proc less restricted than a locked read-only one already visible."""
    _mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount /proc")


def enter(workdir: str, layers: tuple | None, sync: tuple[int, int]) -> dict:
    """Apply the confinement layers in the order the kernel needs; `layers=None` probes (never raises for a
    refused layer, reports it instead). Returns {"layers", "notes"}; init still has to add "proc"."""
    probing, root = layers is None, os.geteuid() == 0
    want = lambda name: probing or name in layers  # noqa: E731
    applied, notes = [], []

    def readonly():
        refused = readonly_rest(workdir)
        if not refused:
            applied.append("ro")
        elif probing:
            notes.append(f"read-only remount refused for {', '.join(refused)}")
        else:
            raise OSError(f"read-only remount refused for {', '.join(refused)}")

    if root:
        # As real root, build the filesystem view before entering a user namespace: the kernel then locks
        # these mounts, so nothing inside can undo them. The program itself will run as nobody.
        os.setgroups([])
        os.chown(workdir, NOBODY, NOBODY)
        if want("mnt"):
            got, more = unshare([("mnt",)], strict=not probing)
            notes += more
            if got:
                applied.append("mnt")
                bind_workdir(workdir)
                expose(sys.path + [os.path.dirname(os.path.realpath(sys.executable)), workdir])
                if want("ro"):
                    readonly()
        full = ("user", "mnt", "net", "pid") if "mnt" in applied else ("user", "net", "pid")
        combos = [full, ("net", "pid"), ("net",), ()]
    else:
        combos = [("user", "mnt", "net", "pid"), ()]  # without privileges it is all or nothing
    if not probing:
        combos = [tuple(n for n in combos[0] if n in layers and (n != "mnt" or "user" in layers))]
    got, more = unshare(combos, strict=not probing)
    notes += more
    applied += [n for n in got if n not in applied]
    if "user" in got:
        os.write(sync[0], b"u" if root else b"-")  # root: ask the server, still outside, to map us to nobody
        if os.read(sync[1], 1) != b"g":
            raise OSError("the fork server could not write the user namespace's uid/gid maps")
        if not root:
            map_ids("self", os.getuid(), os.getgid())
            bind_workdir(workdir)
            if want("ro"):
                readonly()
        become(0, 0)  # uid 0 inside is nobody (or the calling user) outside
    return {"layers": applied, "notes": notes}
