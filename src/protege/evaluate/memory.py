"""Peak resident memory of this process over a block of work (Linux), for the cost columns of a report.

    with PeakMemory() as peak:
        evaluate(...)
    peak.mb        # highest resident set size during the block, in MiB (None where it cannot be measured)
    weights_mb(lm) # what the model's weights take as loaded, in MiB

Linux keeps a per-process high-water mark (VmHWM in /proc/self/status); writing "5" to /proc/self/clear_refs
resets it to the current size, so each block measures its own peak (model weights already loaded count too:
that is what answering costs in memory). Elsewhere the block still runs and `mb` stays None.
"""
from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _high_water_mb() -> float | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    def __init__(self) -> None:
        self.mb: float | None = None
        self._reset = False

    def __enter__(self) -> "PeakMemory":
        try:
            CLEAR_REFS.write_text("5")
            self._reset = True
        except OSError:
            self._reset = False
        return self

    def __exit__(self, *exc) -> None:
        self.mb = _high_water_mb() if self._reset else None


def weights_mb(lm) -> float:
    """Memory the model's weights take as loaded (what a deployment holds at the least)."""
    return sum(p.numel() * p.element_size() for p in lm.model.parameters()) / 2**20
