"""A process-wide setting with a scoped override (the precision and device settings use it).

    with scoped(_current, "bf16"):   # inside: _current.get() == "bf16"; None leaves the value in force
        ...
"""
from __future__ import annotations

import contextlib
import contextvars


@contextlib.contextmanager
def scoped(var: contextvars.ContextVar, value):
    if value is None:
        yield
        return
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
