"""Linear regression over integer (w, b), the paper's first toy task (§3.1, Table 2).

Data: x = 1..n_points, y = w_true * x + b_true + N(0, 1) noise, seeded. The objective is the sum of
squared errors (lower is better). Proposals are rounded to integers, as in the paper.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from opro.errors import OproError
from opro.parsing import noted, tail
from opro.problems.base import Invalid, ProblemBase
from opro.settings import Range

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(r"\[\s*(?:w\s*=\s*)?(" + _NUMBER + r")\s*,\s*(?:b\s*=\s*)?(" + _NUMBER + r")\s*\]")
_RENDERED = re.compile(r"w=(-?\d+), b=(-?\d+)")
#: Larger |w| or |b| are rejected: their squared errors leave float64's exact range.
MAX_ABS = 1e12
#: Largest |w_true|, |b_true| and |init_low|, |init_high| of an instance.
MAX_TRUE = 1e6


def parse_pair(text: str) -> tuple[int, int] | Invalid:
    """The last `[w, b]` in `text`, rounded to integers (half to even). Never raises. Only the last
    MAX_PARSED_CHARS characters are read (opro.parsing)."""
    text, dropped = tail(text)
    matches = _PAIR.findall(text)
    if not matches:
        return noted(Invalid("no [w, b] pair"), dropped)
    w_text, b_text = matches[-1]
    values = [float(w_text), float(b_text)]
    if not all(math.isfinite(v) for v in values):
        return Invalid("not finite")
    if any(abs(v) > MAX_ABS for v in values):
        return Invalid(f"out of range (|w|, |b| <= {MAX_ABS:g})")
    return round(values[0]), round(values[1])


@dataclass
class LinearRegression(ProblemBase):
    """The task instance. `seed` fixes the noise; `init_low`/`init_high` bound the starting pairs."""

    w_true: float = 15.0
    b_true: float = 14.0
    n_points: int = 50
    init_low: int = 10  # paper §3.1: starting pairs drawn from [10, 20]^2
    init_high: int = 20
    seed: int = 0

    name = "linreg"
    minimize = True
    TEMPLATE_FIELDS: ClassVar[tuple[str, ...]] = ()
    LIMITS: ClassVar[dict[str, Range]] = {
        "w_true": Range(-MAX_TRUE, MAX_TRUE), "b_true": Range(-MAX_TRUE, MAX_TRUE), "n_points": Range(2, 100_000),
        "init_low": Range(-MAX_TRUE, MAX_TRUE), "init_high": Range(-MAX_TRUE, MAX_TRUE),
    }
    SCORE_LABEL: ClassVar[str] = "sum of squared errors (SSE)"

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        if settings["init_low"] > settings["init_high"]:
            raise OproError(f"problem.init_low must be <= problem.init_high, got {settings['init_low']} > "
                            f"{settings['init_high']}")

    def __post_init__(self) -> None:
        noise = np.random.default_rng(self.seed).standard_normal(self.n_points)
        self.x = np.arange(1, self.n_points + 1, dtype=np.float64)
        self.y = self.w_true * self.x + self.b_true + noise
        self.optimum_pair, self.optimum = integer_least_squares(self.x, self.y)

    def initial_solutions(self, rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
        pairs = rng.integers(self.init_low, self.init_high, size=(count, 2), endpoint=True)
        return [(int(w), int(b)) for w, b in pairs]

    def parse(self, text: str) -> tuple[int, int] | Invalid:
        return parse_pair(text)

    def decode(self, rendered: str) -> tuple[int, int]:
        match = _RENDERED.fullmatch(rendered.strip())
        if match is None:
            raise ValueError(f"not a rendered (w, b) pair: {rendered!r}")
        return int(match.group(1)), int(match.group(2))

    def score(self, solutions: list[tuple[int, int]]) -> list[float]:
        return [sse(self.x, self.y, w, b) for w, b in solutions]

    def render(self, solution: tuple[int, int]) -> str:
        return f"w={solution[0]}, b={solution[1]}"

    def render_score(self, score: float) -> str:
        """The value truncated to an integer, as the reference shows it (optimize_linear_regression.py:
        num_output_decimals = 0, int(z))."""
        return str(int(score))

    def prompt_fields(self) -> dict[str, str]:
        return {}

    def is_optimal(self, score: float) -> bool:
        return score <= self.optimum * (1 + 1e-12) + 1e-9

    def baselines(self) -> dict[str, float]:
        w, b = np.polyfit(self.x, self.y, 1)
        return {"optimal": self.optimum, "least_squares_real": sse(self.x, self.y, w, b)}

    @classmethod
    def group_label(cls, task: str, instance: dict[str, Any]) -> str:
        return f"{task} w={instance.get('w_true', 15):g} b={instance.get('b_true', 14):g}"

    def known_optimum(self) -> float:
        return float(self.optimum)

    def strong_solution(self) -> tuple[int, int]:
        """The exact integer least-squares pair."""
        return tuple(self.optimum_pair)

    def neighbors(self, solution: tuple[int, int]) -> list[tuple[int, int]]:
        """(w + dw, b + db) for |dw| <= 3, |db| <= 6."""
        return [(solution[0] + dw, solution[1] + db) for dw in range(-3, 4) for db in range(-6, 7) if dw or db]

    def perturb(self, solution: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
        """Gaussian noise of a random scale (2, 5 or 10), rounded."""
        scale = float(rng.choice([2, 5, 10]))
        return tuple(int(v + round(rng.normal(0, scale))) for v in solution)

    def answer_text(self, solution: tuple[int, int]) -> str:
        return f"[{solution[0]}, {solution[1]}]"

    def describe(self) -> dict[str, Any]:
        return {
            "w_true": self.w_true,
            "b_true": self.b_true,
            "n_points": self.n_points,
            "optimum": self.optimum,
            "optimal_solution": self.render(self.optimum_pair),
        }


def sse(x: np.ndarray, y: np.ndarray, w: float, b: float) -> float:
    """Sum of squared errors of the line y = w x + b."""
    residual = y - (w * x + b)
    return float(residual @ residual)


def integer_least_squares(x: np.ndarray, y: np.ndarray, window: int = 20) -> tuple[tuple[int, int], float]:
    """The exact minimizer of the SSE over integer (w, b).

    For fixed w the SSE is a 1-D convex quadratic in b, minimized over integers at floor or ceil of
    mean(y - w x). The profile over w is convex too, so scanning w in a window around the real
    least-squares slope finds the integer optimum.
    """
    w_real, _ = np.polyfit(x, y, 1)
    best: tuple[float, int, int] | None = None
    for w in range(math.floor(w_real) - window, math.ceil(w_real) + window + 1):
        b_real = float(np.mean(y - w * x))
        for b in (math.floor(b_real), math.ceil(b_real)):
            value = sse(x, y, w, b)
            if best is None or value < best[0]:
                best = (value, w, b)
    assert best is not None
    return (best[1], best[2]), best[0]
