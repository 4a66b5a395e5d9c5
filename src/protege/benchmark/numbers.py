"""How the bench's analysis and report write numbers, shared by analysis.py, teachers.py and report.py.

    pts(0.714) -> "71.4"; pts(0.056, sign=True) -> "+5.6"; pts(None) -> "n/a"   # a fraction as points
    percent(0.6) -> "60%"; percent(-0.0) -> "0%"; percent(None) -> "n/a"          # a share, whole percent
    interval((1.5, 1.0, 2.0)) -> "1.50 [1.00, 2.00]"; bounds(...) -> "[1.00, 2.00]"  # a mean rank and its CI
    mean_present([0.5, None, 0.7]) -> 0.6                                          # None where nothing is left

ALPHA is the significance level every verdict in the report uses.
"""
from __future__ import annotations

import math

ALPHA = 0.05


def pts(x: float | None, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def percent(x: float | None) -> str:
    """A share in whole percent; round() rather than '%.0f', which writes -0.0 (and -0.4) as "-0"."""
    return "n/a" if x is None else f"{round(100 * x)}%"


def interval(ci: tuple[float, float, float]) -> str:
    mean, low, high = ci
    if math.isnan(low):
        return f"{mean:.2f} [no interval from one task]"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def bounds(ci: tuple[float, float, float]) -> str:
    return "n/a" if math.isnan(ci[1]) else f"[{ci[1]:.2f}, {ci[2]:.2f}]"


def mean_present(values) -> float | None:
    """The mean of the values that are not None; None when none are."""
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None
