"""TSP solvers: classic heuristics, a strong local search, and a certified exact optimum."""

from opro.solvers.cache import cached_optimal, default_cache_dir, instance_key
from opro.solvers.exact import OptimalTour, held_karp, solve_optimal
from opro.solvers.heuristics import (
    farthest_insertion,
    local_search,
    nearest_neighbor,
    or_opt,
    two_opt,
    two_opt_or_opt,
)
from opro.solvers.tours import is_permutation, tour_length

__all__ = [
    "OptimalTour",
    "cached_optimal",
    "default_cache_dir",
    "farthest_insertion",
    "held_karp",
    "instance_key",
    "is_permutation",
    "local_search",
    "nearest_neighbor",
    "or_opt",
    "solve_optimal",
    "tour_length",
    "two_opt",
    "two_opt_or_opt",
]
