"""Privilege drop and rlimits for the sandbox worker, the process that runs the untrusted program.

Loaded by path from `forkserver.py` (standard library only). After `drop_privileges()` the worker holds no
capabilities in any namespace, so even as uid 0 inside its user namespace it cannot remount, unshare its way
back to power, or raise the limits set by `set_limits()`.
"""
import ctypes
import os
import resource

PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 4, 24, 28, 38
SECUREBITS_LOCKED_NOROOT = 0x2F  # noroot and no_setuid_fixup on, keep_caps off, all locked: exec grants no caps
CAPABILITY_VERSION_3 = 0x20080522
EINVAL = 22

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def undumpable() -> None:
    """Keep same-uid processes (the untrusted worker) from ptracing us while we still hold capabilities."""
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def drop_privileges() -> None:
    """Empty the bounding and capability sets, lock securebits, set no_new_privs.

    The bounding-set and securebits steps need CAP_SETPCAP, which an unprivileged caller lacks and also does
    not need (it has no capabilities to lose); the capset and no_new_privs calls must succeed.
    """
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == EINVAL:  # past the last
            break
    _libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_NOROOT, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable for both 32-bit halves: all zero
    _check(_libc.capset(header, data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def set_limits(limits: dict) -> None:
    """rlimits only ever go down here, and without CAP_SYS_RESOURCE they cannot go back up."""
    mem = int(limits["memory_mb"]) << 20
    cpu = int(limits["cpu_s"] + 0.999)
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # soft -> SIGXCPU, hard -> SIGKILL
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] << 20,) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
