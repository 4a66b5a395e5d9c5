"""Privilege drop and rlimits for the sandbox worker, the process that runs the untrusted program.

Loaded by path from `forkserver.py` (standard library only). After `drop_privileges()` the worker holds no
capabilities in any namespace and, when the server runs as root, no longer is root: it runs under a uid of
its own, so file permissions apply to it and RLIMIT_NPROC binds (the kernel exempts root from it).
"""
import ctypes
import os
import resource

PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 28, 38
SECUREBITS_LOCKED_NOROOT = 0x3  # SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: being uid 0 grants no caps on exec
CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def drop_privileges(run_uid: int | None) -> None:
    """Lock securebits, switch to `run_uid` (if given), clear every capability, set no_new_privs.

    With noroot locked and no_new_privs, no exec can hand capabilities back: not uid 0 inside a user
    namespace, not setuid binaries, not file capabilities, so the bounding set may stay as it is (emptying
    it cost ~40 prctl calls per run). Setting securebits needs CAP_SETPCAP, which a caller without
    privileges lacks and does not need.
    """
    _libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_NOROOT, 0, 0, 0)
    if run_uid is not None:
        os.setgroups([])
        os.setresgid(run_uid, run_uid, run_uid)
        os.setresuid(run_uid, run_uid, run_uid)
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable for both 32-bit halves: all zero
    _check(_libc.capset(header, data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def set_limits(limits: dict, also_counted: int) -> None:
    """rlimits only ever go down here, and without CAP_SYS_RESOURCE they cannot go back up.
    `also_counted`: processes outside the program that share its uid and user namespace (the server)."""
    mem = int(limits["memory_mb"]) << 20
    cpu = limits["cpu_s"]
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    # Hard = soft: as pid 1 of its namespace the worker ignores the soft limit's SIGXCPU, so the kernel's
    # SIGKILL at the hard limit is what ends it; the host tells it from other kills by the CPU time used.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] << 20,) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_procs"] + also_counted,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
