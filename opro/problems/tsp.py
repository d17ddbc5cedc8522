"""The traveling salesman problem, the paper's second toy task (§3.2, Table 3).

Random instances follow the paper: n nodes with integer coordinates uniform in [-coord_range, coord_range],
Euclidean distances (float). TSPLIB files use TSPLIB's integer distance rules. A tour is a closed cycle
over all nodes; its length is the score (lower is better).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from opro.errors import OproError
from opro.parsing import blocks_between, last_index, noted, tail
from opro.problems.base import Invalid, ProblemBase
from opro.settings import Range
from opro.solvers import (
    cached_optimal,
    farthest_insertion,
    local_search,
    nearest_neighbor,
    tour_length,
    two_opt,
)
from opro.tsplib import distance_matrix, load_tsplib, resolve_instance

#: Most nodes of an instance: the certified optimum (MILP over n(n-1)/2 edges) and a meta-prompt of n points
#: (about 8 tokens each) still fit on a workstation.
MAX_NODES = 2000
#: Largest coord_range of a random instance (coordinates are integers in [-coord_range, coord_range]).
MAX_COORD_RANGE = 1_000_000

_OPEN_TRACE = re.compile(r"[\d,\s]*")  # what follows the last <trace> of a truncated answer
_SEPARATORS = re.compile(r"(?:\s|,|;|->|→)+")  # "0,1,2", "0 1 2", "0 -> 1 -> 2"


def parse_trace(text: str, n: int) -> tuple[int, ...] | Invalid:
    """The last `<trace> ... </trace>` in `text` as a permutation of range(n). Never raises.

    A trace whose closing tag is missing (a truncated answer) is still read when it is all numbers. Linear in
    the text: only its last MAX_PARSED_CHARS characters are read (opro.parsing).
    """
    text, dropped = tail(text)
    return noted(_parse_trace(text, n), dropped)


def _parse_trace(text: str, n: int) -> tuple[int, ...] | Invalid:
    blocks = blocks_between(text, "<trace>", "</trace>", ignore_case=True)
    if not blocks:
        start = last_index(text, "<trace>", ignore_case=True)
        if start < 0:
            return Invalid("no <trace> tag")
        blocks = [_OPEN_TRACE.match(text, start + len("<trace>")).group()]  # type: ignore[union-attr]
    tokens = [t for t in _SEPARATORS.split(blocks[-1].strip()) if t]
    if not tokens:
        return Invalid("empty trace")
    if not all(t.isdecimal() and len(t) <= 9 for t in tokens):
        return Invalid("trace is not a list of node indices")
    nodes = [int(t) for t in tokens]
    if len(nodes) == n + 1 and nodes[0] == nodes[-1]:
        nodes = nodes[:-1]  # a closed trace that returns to its start
    outside = sorted({v for v in nodes if v >= n})
    if outside:
        return Invalid(f"nodes out of range: {outside[:5]}")
    if len(set(nodes)) != len(nodes):
        return Invalid("repeated nodes")
    if len(nodes) != n:
        missing = sorted(set(range(n)) - set(nodes))
        return Invalid(f"missing nodes: {missing[:5]}")
    return tuple(nodes)


@dataclass
class TravelingSalesman(ProblemBase):
    """A random paper-style instance (`n`, `coord_range`, `seed`) or a TSPLIB file (`instance`).

    `optimum` computes the certified optimum (cached on disk) so the loop can stop there and gaps
    can be reported; turn it off for instances too large to solve exactly.
    """

    n: int = 10
    coord_range: int = 100  # paper §3.2: coordinates in [-100, 100]
    seed: int = 0
    instance: str | None = None
    optimum: bool = True

    name = "tsp"
    minimize = True
    TEMPLATE_FIELDS: ClassVar[tuple[str, ...]] = ("points",)
    LIMITS: ClassVar[dict[str, Range]] = {"n": Range(3, MAX_NODES), "coord_range": Range(1, MAX_COORD_RANGE)}
    SCORE_LABEL: ClassVar[str] = "tour length (coordinate units)"
    QUICK_SETTINGS: ClassVar[dict[str, Any]] = {"optimum": False}

    def __post_init__(self) -> None:
        if self.instance:
            loaded = load_tsplib(resolve_instance(self.instance))
            self.instance_name = loaded.name
            self.coords = loaded.coords
            self.edge_weight_type = loaded.edge_weight_type
            self.n = len(loaded.coords)
            if self.n > MAX_NODES:
                raise OproError(f"{self.instance}: tsp takes at most {MAX_NODES} nodes, the file has {self.n}")
        else:
            rng = np.random.default_rng(self.seed)
            low, high = -self.coord_range, self.coord_range
            self.coords = rng.integers(low, high, size=(self.n, 2), endpoint=True).astype(np.float64)
            self.instance_name = f"random-n{self.n}-s{self.seed}"
            self.edge_weight_type = "EUC"
        self.dist = distance_matrix(self.coords, self.edge_weight_type)
        self.optimal = cached_optimal(self.dist, self.edge_weight_type) if self.optimum else None

    def initial_solutions(self, rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
        return [tuple(int(v) for v in rng.permutation(self.n)) for _ in range(count)]

    def parse(self, text: str) -> tuple[int, ...] | Invalid:
        return parse_trace(text, self.n)

    def decode(self, rendered: str) -> tuple[int, ...]:
        return tuple(int(v) for v in rendered.split(","))

    def score(self, solutions: list[tuple[int, ...]]) -> list[float]:
        return [float(tour_length(self.dist, list(tour))) for tour in solutions]

    def render(self, solution: tuple[int, ...]) -> str:
        return ",".join(str(v) for v in solution)

    def render_score(self, score: float) -> str:
        """The length truncated to an integer, as the reference shows it (optimize_tsp.py: int(dis))."""
        return str(int(score))

    def prompt_fields(self) -> dict[str, str]:
        points = ", ".join(f"({i}): ({_number(x)}, {_number(y)})" for i, (x, y) in enumerate(self.coords))
        return {"points": points}

    def is_optimal(self, score: float) -> bool:
        return self.optimal is not None and score <= self.optimal.length + 1e-6

    def baselines(self) -> dict[str, float]:
        found = {
            "nearest_neighbor": tour_length(self.dist, nearest_neighbor(self.dist)),
            "farthest_insertion": tour_length(self.dist, farthest_insertion(self.dist)),
            "two_opt": tour_length(self.dist, two_opt(self.dist)),
            "local_search": tour_length(self.dist, local_search(self.dist)),
        }
        if self.optimal is not None:
            found["optimal"] = self.optimal.length
        return {name: float(length) for name, length in found.items()}

    @classmethod
    def group_label(cls, task: str, instance: dict[str, Any]) -> str:
        """Random instances of one size form one setting ("tsp n=14"); a TSPLIB instance is its own
        ("tsp burma14")."""
        name = instance.get("instance")
        if isinstance(name, str) and name and not name.startswith("random-"):
            return f"{task} {name}"
        return f"{task} n={instance.get('n')}"

    def known_optimum(self) -> float | None:
        return None if self.optimal is None else float(self.optimal.length)

    def strong_solution(self) -> tuple[int, ...] | None:
        """The certified optimum's tour (None without one)."""
        return None if self.optimal is None else tuple(int(v) for v in self.optimal.tour)

    def neighbors(self, solution: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Every 2-opt move: one reversed segment of the tour."""
        n = len(solution)
        return [solution[:i] + solution[i:j + 1][::-1] + solution[j + 1:] for i in range(n - 1)
                for j in range(i + 1, n) if (i, j) != (0, n - 1)]

    def perturb(self, solution: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        """One to three random 2-opt moves, then a random rotation."""
        tour = list(solution)
        for _ in range(int(rng.integers(1, 4))):
            i, j = sorted(rng.choice(len(tour), size=2, replace=False))
            tour[i:j + 1] = tour[i:j + 1][::-1]
        start = int(rng.integers(len(tour)))
        return tuple(tour[start:] + tour[:start])

    def answer_text(self, solution: tuple[int, ...]) -> str:
        return f"<trace>{self.render(solution)}</trace>"

    def describe(self) -> dict[str, Any]:
        return {
            "instance": self.instance_name,
            "n": self.n,
            "edge_weight_type": self.edge_weight_type,
            "optimum": None if self.optimal is None else float(self.optimal.length),
            "optimum_certified": None if self.optimal is None else bool(self.optimal.certified),
            "optimal_solution": None if self.optimal is None else self.render(tuple(self.optimal.tour)),
        }


def _number(value: float) -> str:
    """A coordinate as the reference prints it: an integer as one, else the shortest repr (NumPy's str)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
