"""Scores and their comparison: the invalid-candidate record, which score is better, the optimality gap.

A leaf: the loop, the problems, the readers and the baselines all compare scores through these, so that a
gap or a tie means the same thing everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Invalid:
    """A proposal that could not be turned into a solution. It is data, kept with its reason."""

    reason: str


def better(a: float, b: float, minimize: bool) -> bool:
    """Whether score `a` is strictly better than `b`."""
    return a < b if minimize else a > b


#: Values this close to the optimum (relative) count as the optimum: the same tour summed in another order.
SAME_AS_OPTIMUM = 1e-9


def gap_percent(value: float | None, optimum: float | None, minimize: bool) -> float | None:
    """The optimality gap in percent, as the paper reports it: 100 * (value - optimum) / |optimum| when
    minimizing, 100 * (optimum - value) / |optimum| when maximizing, so that a worse value has a positive gap.

    Edge rules: None when the value or the optimum is unknown (None or nan), when the value is not finite, or
    when the optimum is 0 (no percentage exists: see `difference`); 0.0 when the value is within
    `SAME_AS_OPTIMUM` (relative) of the optimum.
    """
    if value is None or optimum is None or optimum == 0 or not math.isfinite(value) or not math.isfinite(optimum):
        return None
    if abs(value - optimum) <= SAME_AS_OPTIMUM * abs(optimum):
        return 0.0
    return (value - optimum) / abs(optimum) * 100 if minimize else (optimum - value) / abs(optimum) * 100


def difference(value: float, optimum: float | None, minimize: bool) -> float | None:
    """How far `value` is from the optimum, in the score's units (>= 0 for a value no better than it; defined
    where a percentage is not, at an optimum of 0); None when the optimum is unknown."""
    if optimum is None:
        return None
    return value - optimum if minimize else optimum - value
