"""Tour basics. A tour is a permutation of range(n), read as a closed cycle; solvers return it rotated to
start at node 0. Distances are an (n, n) symmetric matrix with zero diagonal (any units)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from opro.errors import OproError


def check_dist(dist: np.ndarray) -> np.ndarray:
    """Return dist as a square 2-D array, raising OproError otherwise."""
    d = np.asarray(dist)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] == 0:
        raise OproError(f"distance matrix must be square and non-empty, got shape {d.shape}")
    return d


def is_permutation(tour: Sequence[int], n: int) -> bool:
    """True when tour holds each of 0..n-1 exactly once."""
    return len(tour) == n and sorted(int(v) for v in tour) == list(range(n))


def tour_length(dist: np.ndarray, tour: Sequence[int]) -> float:
    """Length of the closed tour (returning to its first node), in the units of dist."""
    d = check_dist(dist)
    if not is_permutation(tour, d.shape[0]):
        raise OproError(f"tour is not a permutation of 0..{d.shape[0] - 1}")
    t = np.asarray(tour, dtype=np.intp)
    return float(d[t, np.roll(t, -1)].sum())


def rotate_to_zero(tour: Sequence[int]) -> list[int]:
    """The same cycle, rotated so that it starts at node 0."""
    t = [int(v) for v in tour]
    k = t.index(0)
    return t[k:] + t[:k]
