"""How local models compute: `precision: auto | fp32 | bf16`, decided here once for every stage and command.

    from protege.models.precision import use_precision, resolve_precision
    with use_precision("bf16"):              # a run config's `precision`, a command's --precision
        lm.generate(prompts, config)         # LocalLM computes under bf16 autocast
    resolve_precision("auto")                # "bf16" on a CPU with native bf16 matmuls or a GPU, else "fp32"

Weights stay fp32 in every setting (master copies for training and scoring); `bf16` runs the matmuls under
torch's bf16 autocast. `auto` picks bf16 where it is fast: a GPU with bf16, or a CPU with AMX or AVX-512 BF16
(3.8x fp32 on an AVX-512 BF16 EPYC, about 10x on AMX); on an AVX2-only CPU bf16 matmuls are slower than fp32, so
auto is fp32 there. The setting comes from, in order: the innermost `use_precision`, the environment variable
PROTEGE_PRECISION, then `auto`. Results differ between fp32 and bf16 (greedy tokens drift after a few steps),
so every stage whose output depends on it keys on the resolved value (pipeline.py).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from pathlib import Path
from typing import get_args

import torch

from protege.choices import Precision
from protege.models.scoped import scoped

SETTINGS: tuple[str, ...] = get_args(Precision)
ENV = "PROTEGE_PRECISION"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("protege_precision", default=None)


@functools.lru_cache(maxsize=None)
def cpu_features() -> dict[str, bool]:
    """The CPU's matmul features that decide `auto`: AVX2, AVX-512 BF16, AMX (read from /proc/cpuinfo)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    return {"avx2": "avx2" in flags, "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}


def cpu_summary() -> str:
    """One line naming the CPU's features, e.g. 'AVX2, AVX-512 BF16 (no AMX)'."""
    f = cpu_features()
    names = [n for n, key in (("AVX2", "avx2"), ("AVX-512 BF16", "avx512_bf16"), ("AMX", "amx_bf16")) if f[key]]
    missing = [n for n, key in (("AVX-512 BF16", "avx512_bf16"), ("AMX", "amx_bf16")) if not f[key]]
    return ", ".join(names or ["no AVX2"]) + (f" (no {', no '.join(missing)})" if missing else "")


def bf16_fast(device: str = "cpu") -> bool:
    """True where bf16 matmuls beat fp32: a GPU with bf16, or a CPU with AMX or AVX-512 BF16."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    f = cpu_features()
    return f["amx_bf16"] or f["avx512_bf16"]


def slow_bf16_notice(setting: str | None, device: str | None = None) -> str | None:
    """A line for the log where `setting` resolves to bf16 on a device without fast bf16 (an AVX2-only CPU, where
    torch emulates it: many times slower than fp32), saying what to change; None elsewhere."""
    from protege.models.device import resolve_device

    device = device or resolve_device()
    if resolve_precision(setting, device) != "bf16" or bf16_fast(device):
        return None
    where = f"this CPU ({cpu_summary()})" if device == "cpu" else f"{device} (no bf16 support)"
    return (f"bf16 is emulated on {where}, many times slower than fp32: set precision "
            "fp32 (PROTEGE_PRECISION=fp32, or generate.precision: fp32 for the teacher's stages) unless these "
            "stage keys must match bf16 runs made elsewhere")


def check_setting(value: str, where: str) -> str:
    if value not in SETTINGS:
        raise ValueError(f"{where}: precision must be one of {', '.join(SETTINGS)}; got {value!r}")
    return value


def requested() -> str:
    """The setting in force here (not yet resolved): use_precision's, else $PROTEGE_PRECISION, else auto."""
    value = _current.get()
    if value is not None:
        return value
    env = os.environ.get(ENV, "").strip()
    return check_setting(env, f"environment variable {ENV}") if env else "auto"


def resolve_precision(setting: str | None = None, device: str | None = None) -> str:
    """`fp32` or `bf16`: what `setting` (None: the one in force) means on `device` (None: the device setting in
    force, models/device.py)."""
    setting = requested() if setting is None else check_setting(setting, "precision")
    if setting == "auto":
        if device is None:
            from protege.models.device import resolve_device

            device = resolve_device()
        return "bf16" if bf16_fast(device) else "fp32"
    return setting


def key_part(model: str | None = None, setting: str | None = None, device: str | None = None) -> dict:
    """What a stage or cache key adds for precision: {"precision": "bf16"} where a local model computes in bf16,
    and {"device": "cuda"} off the CPU (models/device.py).
    Nothing for fp32, the value every run made before the setting had, so those runs keep their keys; nothing for
    an endpoint (`openai:...`), whose precision is the server's."""
    from protege.models.device import device_key_part, resolve_device

    if model is not None and model.startswith("openai:"):
        return {}
    device = device or resolve_device()  # None: the device setting in force
    precision = resolve_precision(setting, device)
    return ({} if precision == "fp32" else {"precision": precision}) | device_key_part(device)


def use_precision(setting: str | None):
    """Every local model computes in `setting` inside this block (None: leave the one in force)."""
    return scoped(_current, None if setting is None else check_setting(setting, "precision"))


def autocast(precision: str, device: str = "cpu"):
    """The autocast block for a resolved precision: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(setting: str | None = None, device: str | None = None) -> dict:
    """What a manifest or report records: the setting, what it resolved to, and the CPU it ran on."""
    from protege.models.device import resolve_device

    setting = requested() if setting is None else setting
    device = device or resolve_device()
    info = {"setting": setting, "resolved": resolve_precision(setting, device), "device": device,
            "cpu": cpu_summary()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def machine_summary() -> str:
    """What an experiment's kept rows record of the machine they ran on: CPU, cores, what auto resolves to."""
    return f"{cpu_summary()}, {os.cpu_count()} cores, {resolve_precision('auto')}"


def machine_line() -> str:
    """The line `make test` prints first, so a failure report says which machine it came from."""
    line = f"protege: CPU {cpu_summary()}; precision auto resolves to {resolve_precision('auto')} here"
    if requested() != "auto":
        return line + f"; {requested()} in force ({ENV})"
    return line + f" (set {ENV}=fp32|bf16 to force one)"


if __name__ == "__main__":  # python -m protege.models.precision
    print(machine_line())
