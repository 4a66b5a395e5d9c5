"""Namespace and mount mechanisms for the sandbox, run only inside the fork server and its children.

Loaded by path from `forkserver.py`, which runs under `python -I -S`, so this file imports only the standard
library. `forkserver.py` decides when each step runs:

    unshare()             new namespaces, trying the combinations it is given until the kernel accepts one
    map_self()            (unprivileged callers) uid/gid 0 inside a fresh user namespace = ourselves outside
    become_pid1()         once per server: pid 1 of its own pid namespace, so killing it kills every run
    prepare_filesystem()  once per server: everything read-only except the directory holding run dirs
    PidNamespaces         per run: fork straight into a fresh pid namespace (no intermediate process)
    mount_scratch()       per run: a fresh size-limited tmpfs as the working directory, gone with the run
    mount_proc()          per run, from pid 1 of the run's pid namespace: a /proc showing only the run
"""
import ctypes
import os
import re
import stat

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
FLAGS = {"user": CLONE_NEWUSER, "mnt": CLONE_NEWNS, "net": CLONE_NEWNET, "pid": CLONE_NEWPID}

PR_SET_PDEATHSIG = 1
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
# Inside a user namespace the kernel refuses a remount that drops an inherited nosuid/nodev/noexec ("locked").
LOCKED = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


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
    """Enter the first combination of namespaces the kernel accepts; `strict`: the first or SetupError."""
    notes = []
    for combo in combos:
        if not combo or _libc.unshare(sum(FLAGS[n] for n in combo)) == 0:
            return combo, notes
        err = ctypes.get_errno()
        notes.append(f"unshare({'+'.join(combo)}) refused: {os.strerror(err)}")
        if strict:
            raise SetupError(err, notes[-1])
    return (), notes


class PidNamespaces:
    """Forks children that are each pid 1 of a new pid namespace.

    unshare(CLONE_NEWPID) only retargets where the caller's *next* child goes, and refuses a second time
    while that target differs from the caller's own namespace, so after each fork we setns() back home.
    """

    def __init__(self) -> None:
        self.home = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)

    def fork(self) -> int:
        _check(_libc.unshare(CLONE_NEWPID), "unshare(pid)")
        pid = os.fork()
        if pid != 0 and _libc.setns(self.home, CLONE_NEWPID) != 0:
            err = ctypes.get_errno()
            os.kill(pid, 9)  # a child we cannot vouch for must not run
            os.waitpid(pid, 0)
            raise SetupError(err, f"setns(pid) back home: {os.strerror(err)}")
        return pid


def become_pid1() -> None:
    """Move this process into a fresh pid namespace as its pid 1; the original process stays behind as
    the parent only, exits with our status, and takes us along if it dies (PDEATHSIG). Needed without
    root: setns() back to a pid namespace needs CAP_SYS_ADMIN over its owner, so PidNamespaces must start
    from a namespace that our own user namespace owns."""
    _check(_libc.unshare(CLONE_NEWPID), "unshare(pid)")
    pid = os.fork()
    if pid != 0:
        _, status = os.waitpid(pid, 0)
        os._exit(max(os.waitstatus_to_exitcode(status), 0))
    _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def map_self(uid: int, gid: int) -> None:
    """After unshare(user): be uid/gid 0 inside, our own ids outside (setgroups must be denied first)."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def first_closed_dir(path: str) -> str | None:
    """The first directory on the way to `path` (itself included) that other users may not enter."""
    current = "/"
    for part in path.strip("/").split("/") + [""]:
        mode = os.stat(current).st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return current
        current = os.path.join(current, part) if part else current
    return None


def expose(paths: list[str]) -> None:
    """Make `paths` reachable for an unprivileged uid without opening anything else.

    Python may live under a private directory (pyenv in /root, mode 0700) that the run's uid cannot enter.
    Each such directory is covered with an empty tmpfs holding bind mounts of just the entries leading to
    `paths`, which also hides the rest of it (keys, shell histories) from programs.
    """
    for _ in range(8):  # one round per level of nested private directories
        plan: dict[str, set[str]] = {}
        for path in paths:
            closed = first_closed_dir(path)
            if closed is not None and closed != path:
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


def readonly_rest(keep: str) -> list[str]:
    """Remount all mounts except `keep` read-only; returns the mount points that refused."""
    failed = []
    for point, locked in _mountinfo():
        if point == keep:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | locked
        if _libc.mount(None, os.fsencode(point), None, flags, None) != 0:
            failed.append(f"{point} ({os.strerror(ctypes.get_errno())})")
    return failed


def prepare_filesystem(base: str, expose_paths: list[str]) -> list[str]:
    """In a fresh mount namespace: `base` (where run dirs live) stays writable, `expose_paths` become
    reachable, every other mount goes read-only. Returns mount points that refused to go read-only."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "make mounts private")  # nothing leaks back to the host
    _mount(base, base, None, MS_BIND | MS_REC, f"bind {base}")
    if expose_paths:
        expose(expose_paths)
    return readonly_rest(base)


def mount_scratch(path: str, size_mb: int, uid: int, gid: int) -> None:
    """Only this run's mount namespace sees it, so the directory needs no cleanup and no disk I/O (on a
    disk mounted with `discard`, creating and deleting one run dir cost ~3 ms of waiting)."""
    options = f"size={size_mb}m,nr_inodes=16384,mode=0700,uid={uid},gid={gid}".encode()
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"scratch tmpfs on {path}", options)


def mount_proc() -> None:
    """Must run in a process inside the new pid namespace: /proc shows the mounter's namespace. Read-only
    because the kernel refuses a new proc less restricted than a locked read-only one already visible."""
    _mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount /proc")
