"""Where local models compute: `device: auto | cpu | cuda | cuda:N`, decided here once for every stage and command.

    from protege.models.device import use_device, resolve_device
    with use_device("cuda:1"):          # a run config's `device`, a command's --device
        lm = load_lm("bundled:smollm2-135m-instruct")      # loaded on cuda:1
    resolve_device("auto")              # "cuda:0" where torch sees a GPU, else "cpu"

The setting comes from, in order: the innermost `use_device`, the environment variable PROTEGE_DEVICE (so Ray
workers and subprocesses inherit a command's --device), then `auto`. Every LocalLM is created on the resolved
device, and every tensor path follows the model's device (decoders, scoring, training, the KD cache, DPO/GRPO).
Stages key on it only off the CPU ({"device": "cuda"}), so every run made before the setting keeps its key.
"""
from __future__ import annotations

import contextvars
import os
import re

from protege.models.scoped import scoped

ENV = "PROTEGE_DEVICE"
SETTING = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("protege_device", default=None)


class DeviceUnavailable(ValueError):
    """The setting names a device this machine does not have."""


def check_device(value: str, where: str) -> str:
    if not isinstance(value, str) or not SETTING.match(value):
        raise ValueError(f"{where}: device must be auto, cpu, cuda or cuda:N; got {value!r}")
    return value


def requested_device() -> str:
    value = _current.get()
    if value is not None:
        return value
    env = os.environ.get(ENV, "").strip()
    return check_device(env, f"environment variable {ENV}") if env else "auto"


def resolve_device(setting: str | None = None) -> str:
    """"cpu" or "cuda:N": what `setting` (None: the one in force) means on this machine."""
    import torch

    setting = requested_device() if setting is None else check_device(setting, "device")
    if setting == "cpu":
        return "cpu"
    available = torch.cuda.is_available()
    # under a launcher (torchrun, accelerate launch) each process takes the GPU of its LOCAL_RANK
    local = int(os.environ.get("LOCAL_RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    if setting == "auto":
        return f"cuda:{local}" if available else "cpu"
    index = int(setting.split(":")[1]) if ":" in setting else local
    if not available or index >= torch.cuda.device_count():
        seen = f"{torch.cuda.device_count()} GPU(s)" if available else "no GPU (torch.cuda.is_available() is False)"
        raise DeviceUnavailable(f"device {setting}: torch sees {seen}; use device: auto or cpu, or install a CUDA "
                                "build of torch on a machine with the GPU")
    return f"cuda:{index}"


def device_key_part(device: str) -> dict:
    """What a stage key adds for a resolved device: nothing on the CPU (every earlier run's value), the device
    type elsewhere (which GPU of a kind does not change a result)."""
    return {} if device == "cpu" else {"device": device.split(":")[0]}


def use_device(setting: str | None):
    """Every local model created inside this block goes on `setting` (None: leave the one in force)."""
    return scoped(_current, None if setting is None else check_device(setting, "device"))
