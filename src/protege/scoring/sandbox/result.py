"""Types shared by the sandbox's host side: limits in, result out, and the two errors callers may see."""
from __future__ import annotations

import math
import re
import signal
from dataclasses import asdict, dataclass

STATUSES = ("passed", "failed", "timeout", "memory", "killed", "output_limit")
# Why a run did not pass, one word each: the status where it says it, else read from the traceback's last line.
REASONS = ("passed", "syntax_error", "import_error", "assertion", "exception", "exit_status", "timeout",
           "memory", "killed", "output_limit")
_LAST_ERROR = re.compile(r"^(\w+(?:\.\w+)*)(?::|$)", re.M)
_NO_MODULE = re.compile(r"No module named '([^'.]+)")
MEMORY_EXIT = 86  # same values as forkserver.py, which cannot import this package (it runs under python -I)
SETUP_EXIT = 87
SETUP_MARK = "protege-sandbox: setup failed: "


class CodeExecutionNotAllowed(PermissionError):
    def __init__(self) -> None:
        super().__init__(
            "Refusing to run model-generated code: code execution is off by default. Pass "
            "--allow-code-execution on the command line, or allow_code_execution=True when calling "
            "run_program/run_many, once you accept running untrusted code on this machine."
        )


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): e.g. a confinement layer it relies on stopped working."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 1024  # address space (RLIMIT_AS), so it also counts mapped-but-untouched memory
    cpu_s: float | None = None  # CPU seconds (RLIMIT_CPU); None means timeout_s + 1
    max_procs: int = 32  # processes the program may have at once, itself included (RLIMIT_NPROC)
    file_size_mb: int = 16  # largest file it may write (RLIMIT_FSIZE)
    scratch_mb: int = 64  # size of its private tmpfs working dir (where mount namespaces are allowed)
    output_bytes: int = 1 << 20  # stdout + stderr kept; beyond this the run is killed
    open_files: int = 256

    def __post_init__(self) -> None:
        bad = [f"{k}={v!r}" for k, v in asdict(self).items() if v is not None and v <= 0]
        if bad:
            raise ValueError(f"Limits must be positive; got {', '.join(bad)}")

    def for_child(self, timeout_s: float) -> dict:
        return {
            "memory_mb": self.memory_mb,
            # RLIMIT_CPU counts whole seconds; rounding up here keeps "limit reached" checks exact.
            "cpu_s": math.ceil(self.cpu_s if self.cpu_s is not None else timeout_s + 1),
            "max_procs": self.max_procs,
            "file_size_mb": self.file_size_mb,
            "scratch_mb": self.scratch_mb,
            "open_files": self.open_files,
        }


@dataclass(frozen=True)
class ExecResult:
    status: str  # one of STATUSES
    returncode: int | None  # negative: killed by that signal; None: never learned (sandbox broke)
    stdout: str
    stderr: str
    wall_s: float
    network_isolated: bool
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def reason(self) -> str:
        """One of REASONS: why it failed (syntax error, import error, assertion, other exception, ...)."""
        if self.status != "failed":
            return self.status
        errors = _LAST_ERROR.findall(self.stderr)
        last = errors[-1].rsplit(".", 1)[-1] if errors else ""
        if last in ("SyntaxError", "IndentationError", "TabError"):
            return "syntax_error"
        if last in ("ModuleNotFoundError", "ImportError"):
            return "import_error"
        if last == "AssertionError":
            return "assertion"
        return "exception" if last.endswith(("Error", "Exception", "Exit", "Interrupt")) else "exit_status"

    @property
    def missing_module(self) -> str | None:
        """The top-level module an import error could not find, e.g. 'numpy'."""
        if self.reason != "import_error":
            return None
        found = _NO_MODULE.findall(self.stderr)
        return found[-1] if found else None


def classify(returncode: int | None, stderr: str, timed_out: bool, overflowed: bool,
             cpu_exhausted: bool) -> str:
    if overflowed:
        return "output_limit"
    if timed_out or returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu_exhausted):
        return "timeout"
    if returncode == MEMORY_EXIT or (returncode and "MemoryError" in stderr[-2000:]):
        return "memory"
    if returncode is None or returncode < 0:
        return "killed"
    return "passed" if returncode == 0 else "failed"
