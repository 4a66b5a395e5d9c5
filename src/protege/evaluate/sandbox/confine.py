"""OS-level confinement steps, run inside a freshly forked sandbox child (never in the host process).

Loaded by path from `forkserver.py`, which runs under `python -I -S`, so this file imports only the standard
library. Each step is one Linux mechanism; `forkserver.py` decides the order:

    unshare()          own user, mount, network and pid namespaces (falls back to fewer where refused)
    map_ids()          map our uid/gid into the user namespace so files keep their owners
    bind_workdir()     private mount propagation and the temp dir bound onto itself (it stays writable)
    mount_proc()       a /proc that shows only this run's processes (hides host environments)
    readonly_rest()    remount every other mount read-only
    set_limits()       rlimits for the untrusted worker
"""
import ctypes
import os
import re
import resource

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
FLAGS = {"user": CLONE_NEWUSER, "mnt": CLONE_NEWNS, "net": CLONE_NEWNET, "pid": CLONE_NEWPID}
# Tried in order. Without a user namespace the rest still works for real root (CAP_SYS_ADMIN).
COMBOS = (("user", "mnt", "net", "pid"), ("mnt", "net", "pid"), ("net",), ())

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


def _mount(src, target, fstype, flags: int, what: str) -> None:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(enc(src), enc(target), enc(fstype), flags, None), what)


def unshare(wanted: tuple[str, ...] | None) -> tuple[tuple[str, ...], list[str]]:
    """Enter new namespaces. `wanted=None` probes COMBOS; otherwise exactly `wanted` or SetupError."""
    notes = []
    for combo in COMBOS if wanted is None else (tuple(wanted),):
        flags = sum(FLAGS[n] for n in combo)
        if flags == 0 or _libc.unshare(flags) == 0:
            return combo, notes
        err = ctypes.get_errno()
        notes.append(f"unshare({'+'.join(combo)}) refused: {os.strerror(err)}")
        if wanted is not None:
            raise SetupError(err, notes[-1])
    return (), notes


def map_ids(uid: int, gid: int) -> None:
    """Map the caller's outer uid/gid to 0 inside; setgroups must be denied before gid_map may be written."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def bind_workdir(workdir: str) -> None:
    # Private propagation first, so nothing we mount leaks back into the host's mount namespace.
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "make mounts private")
    _mount(workdir, workdir, None, MS_BIND | MS_REC, f"bind {workdir}")


def mount_proc() -> None:
    """Must run in a process inside the new pid namespace: /proc shows the mounter's namespace."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount /proc")


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
    """Remount all mounts except `workdir` read-only; returns the mount points that refused."""
    failed = []
    for point, locked in _mountinfo():
        if point == workdir:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | locked
        if _libc.mount(None, os.fsencode(point), None, flags, None) != 0:
            failed.append(f"{point} ({os.strerror(ctypes.get_errno())})")
    return failed


def set_limits(limits: dict) -> None:
    """rlimits only ever go down, so untrusted code cannot raise them again."""
    mem = int(limits["memory_mb"]) << 20
    cpu = int(limits["cpu_s"] + 0.999)
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # soft -> SIGXCPU, hard -> SIGKILL
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] << 20,) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
