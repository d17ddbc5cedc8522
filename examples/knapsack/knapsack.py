"""A 0/1 knapsack as an OPRO problem of the user's own: pick items to maximize their total value within a
weight capacity. Nothing here is part of opro; it only satisfies the `opro.Problem` protocol.

Instance: `n_items` items with integer weights and values uniform in [1, 30], seeded by `seed`; the
capacity is `capacity_ratio` of the total weight. A solution is the sorted tuple of the chosen item numbers;
its score is their total value (higher is better). An overweight selection is invalid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import opro
from opro.settings import Range

_ITEMS = re.compile(r"<items>(.*?)</items>", re.DOTALL | re.IGNORECASE)


@dataclass
class Knapsack(opro.ProblemBase):
    """The preset's [problem] table sets these fields."""

    n_items: int = 10
    capacity_ratio: float = 0.5
    seed: int = 0

    name = "knapsack"
    minimize = False
    TEMPLATE_FIELDS: ClassVar[tuple[str, ...]] = ("items", "capacity")
    LIMITS: ClassVar[dict[str, Range]] = {"n_items": Range(2, 200), "capacity_ratio": Range(0, 1, above=True)}
    SCORE_LABEL: ClassVar[str] = "total value"

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.weights = [int(w) for w in rng.integers(1, 30, size=self.n_items, endpoint=True)]
        self.values = [int(v) for v in rng.integers(1, 30, size=self.n_items, endpoint=True)]
        self.capacity = int(self.capacity_ratio * sum(self.weights))
        self.best_value, self.best_items = _dynamic_programming(self.weights, self.values, self.capacity)

    # -- required hooks --
    def initial_solutions(self, rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
        return [self._repair(tuple(i for i in range(self.n_items) if rng.random() < 0.3), rng) for _ in range(count)]

    def parse(self, text: str) -> tuple[int, ...] | opro.Invalid:
        blocks = _ITEMS.findall(text)
        if not blocks:
            return opro.Invalid("no <items> tag")
        tokens = [t for t in re.split(r"[\s,]+", blocks[-1].strip()) if t]
        if not all(t.isdecimal() for t in tokens):
            return opro.Invalid("not a list of item numbers")
        chosen = tuple(sorted({int(t) for t in tokens}))
        if any(i >= self.n_items for i in chosen):
            return opro.Invalid(f"item numbers go from 0 to {self.n_items - 1}")
        if self._weight(chosen) > self.capacity:
            return opro.Invalid(f"over capacity ({self._weight(chosen)} > {self.capacity})")
        return chosen

    def decode(self, rendered: str) -> tuple[int, ...]:
        return () if rendered == "none" else tuple(int(t) for t in rendered.split(", "))

    def score(self, solutions: list[tuple[int, ...]]) -> list[float]:
        return [float(sum(self.values[i] for i in chosen)) for chosen in solutions]

    def render(self, solution: tuple[int, ...]) -> str:
        return ", ".join(str(i) for i in solution) or "none"

    def render_score(self, score: float) -> str:
        return str(int(score))

    def prompt_fields(self) -> dict[str, str]:
        pairs = enumerate(zip(self.weights, self.values, strict=True))
        items = "\n".join(f"item {i}: weight {w}, value {v}" for i, (w, v) in pairs)
        return {"items": items, "capacity": str(self.capacity)}

    def is_optimal(self, score: float) -> bool:
        return score >= self.best_value

    def baselines(self) -> dict[str, float]:
        return {"greedy_by_ratio": float(self._greedy()), "optimal": float(self.best_value)}

    def describe(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "capacity": self.capacity, "optimum": self.best_value,
                "optimal_solution": self.render(self.best_items)}

    # -- optional hooks (ProblemBase has defaults): the RL export's moves and answers --
    def strong_solution(self) -> tuple[int, ...]:
        return self.best_items

    def neighbors(self, solution: tuple[int, ...]) -> list[tuple[int, ...]]:
        flips = [tuple(sorted(set(solution) ^ {i})) for i in range(self.n_items)]
        return [s for s in flips if self._weight(s) <= self.capacity]

    def perturb(self, solution: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        flipped = set(solution) ^ {int(i) for i in rng.choice(self.n_items, size=2, replace=False)}
        return self._repair(tuple(sorted(flipped)), rng)

    def answer_text(self, solution: tuple[int, ...]) -> str:
        return f"<items>{', '.join(str(i) for i in solution)}</items>"

    # -- the instance's own helpers --
    def _weight(self, chosen: tuple[int, ...]) -> int:
        return sum(self.weights[i] for i in chosen)

    def _repair(self, chosen: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        """Drop random items until the selection fits."""
        items = list(chosen)
        while self._weight(tuple(items)) > self.capacity:
            items.pop(int(rng.integers(len(items))))
        return tuple(sorted(items))

    def _greedy(self) -> int:
        total, weight = 0, 0
        for i in sorted(range(self.n_items), key=lambda i: -self.values[i] / self.weights[i]):
            if weight + self.weights[i] <= self.capacity:
                total, weight = total + self.values[i], weight + self.weights[i]
        return total


def _dynamic_programming(weights: list[int], values: list[int], capacity: int) -> tuple[int, tuple[int, ...]]:
    """The exact optimum: the best value and its items."""
    best = [(0, ())] * (capacity + 1)
    for i, (w, v) in enumerate(zip(weights, values, strict=True)):
        for c in range(capacity, w - 1, -1):
            candidate = best[c - w][0] + v
            if candidate > best[c][0]:
                best[c] = (candidate, best[c - w][1] + (i,))
    return best[capacity]
