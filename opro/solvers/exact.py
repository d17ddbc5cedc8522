"""Exact TSP: Held-Karp dynamic programming for small n, DFJ integer programming (HiGHS) above that.

The DFJ path (symmetric, x_e in {0, 1} for edges i < j, degree 2 at every node; see opro.solvers.dfj):
1. UB: the strong heuristic's tour (local_search).
2. LP phase: the LP relaxation with subtour cuts (components, Stoer-Wagner min cuts) and blossoms gives a
   lower bound LB and a Lagrangian reduced cost rc_e per edge, valid for any dual vector: every tour T
   has len(T) >= LB + rc_e for each of its edges e.
3. MILP phase, in stages on the edge sets {e : rc_e <= g}: scipy.optimize.milp (zero gap) adding the cut
   x(E(S)) <= |S| - 1 for every component S of the integer solution until it is one tour T. Any tour
   using an edge outside the set is longer than LB + g, so T is optimal once len(T) <= LB + g; otherwise
   g grows (STAGE_FRACTIONS of UB - LB, UB the best tour so far) up to UB - LB, which keeps every tour
   of length <= UB. Cuts found in the cheap early stages carry over.
`certified` is True only when that MILP solved to optimality with a single cycle (up to HiGHS's
tolerances), or for Held-Karp. Lengths are in the units of the distance matrix.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from opro.errors import OproError
from opro.solvers.dfj import Cut, Problem, lp_phase, milp_phase
from opro.solvers.heuristics import local_search
from opro.solvers.tours import check_dist, rotate_to_zero, tour_length

HELD_KARP_MAX_N = 16
AUTO_HELD_KARP_N = 13
STAGE_FRACTIONS = (0.1, 0.3, 1.0)
METHODS = ("auto", "held_karp", "milp")


@dataclass(frozen=True)
class OptimalTour:
    """Result of solve_optimal; lower_bound <= optimum <= length, equal when certified.

    method: "trivial" (n <= 3), "held_karp" or "milp_dfj"; seconds: wall time of the call;
    heuristic_length: the local_search upper bound (nan when none was computed); stats: DFJ details
    (seconds per phase, LP bound, edges and rounds per stage, number of cuts).
    """

    length: float
    tour: list[int]
    certified: bool
    method: str
    seconds: float
    lower_bound: float
    heuristic_length: float = float("nan")
    stats: dict[str, float] = field(default_factory=dict)


class OutOfTime(Exception):
    """Held-Karp's deadline passed before the table was complete."""


def held_karp(dist: np.ndarray, deadline: float | None = None) -> tuple[float, list[int]]:
    """Optimal (length, tour) by Held-Karp bitmask DP, vectorized per subset size; n <= 16. Raises OutOfTime
    when `deadline` (a time.monotonic() value) passes between subset sizes."""
    d = np.asarray(check_dist(dist), dtype=np.float64)
    n = d.shape[0]
    if n > HELD_KARP_MAX_N:
        raise OproError(f"held_karp supports n <= {HELD_KARP_MAX_N}, got n = {n}")
    if n <= 3:
        return tour_length(d, list(range(n))), list(range(n))
    m = n - 1  # nodes 1..n-1 are bits 0..m-1; node 0 is the fixed start
    full = 1 << m
    dm = d[1:, 1:]
    dp = np.full((full, m), np.inf)
    parent = np.full((full, m), -1, dtype=np.int8)
    bits = np.arange(m)
    dp[1 << bits, bits] = d[0, 1:]
    masks = np.arange(full)
    popcount = np.bitwise_count(masks)
    for size in range(1, m):
        if deadline is not None and time.monotonic() > deadline:
            raise OutOfTime
        layer = masks[popcount == size]
        cand = dp[layer][:, :, None] + dm[None, :, :]  # [mask, last k, next j]
        best_k = cand.argmin(axis=1)
        best = np.take_along_axis(cand, best_k[:, None, :], axis=1)[:, 0, :]
        rows, js = np.nonzero(((layer[:, None] >> bits) & 1) == 0)
        new = layer[rows] | (1 << js)
        dp[new, js] = best[rows, js]
        parent[new, js] = best_k[rows, js]
    closing = dp[full - 1] + d[1:, 0]
    j, mask, path = int(np.argmin(closing)), full - 1, []
    length = float(closing[j])
    while j >= 0:
        path.append(j + 1)
        j, mask = int(parent[mask, j]), mask ^ (1 << j)
    return length, [0, *path[::-1]]


def _next_g(stage: int, g: float, gap: float) -> float:
    """Threshold for stage + 1 (1-based): a growing fraction of the gap UB - LB, always above g."""
    nxt = STAGE_FRACTIONS[min(stage, len(STAGE_FRACTIONS) - 1)] * gap
    return nxt if nxt > g else gap


def _solve_dfj(d: np.ndarray, time_limit: float, seed: int, start: float) -> OptimalTour:
    deadline = start + time_limit
    heur = local_search(d, seed=seed, restarts=1, time_limit=max(0.1, 0.2 * time_limit))
    best_tour, best_len = heur, tour_length(d, heur)
    heuristic_length = best_len
    stats = {"heuristic_seconds": time.monotonic() - start}
    prob = Problem.from_dist(d)
    cuts: dict[Cut, None] = {}
    lp = lp_phase(prob, cuts, deadline)
    stats["lp_seconds"] = time.monotonic() - start - stats["heuristic_seconds"]
    stats["lp_bound"] = -np.inf if lp is None else lp[0]
    tol = 1e-6 * max(1.0, abs(best_len))
    lower, rc = (-np.inf, np.zeros(len(prob.c))) if lp is None else (min(lp[0], best_len), lp[1])
    # Stages on growing edge sets {rc_e <= g}. A stage's MILP optimum T is the best tour inside the set;
    # tours using an edge outside it are longer than lower + g, so T is optimal once len(T) <= lower + g.
    stage = 0
    g = np.inf if lp is None else STAGE_FRACTIONS[0] * (best_len - lower)
    while True:
        stage += 1
        cols = np.flatnonzero(rc <= g + tol)
        t0 = time.monotonic()
        tour, status, rounds = milp_phase(prob, cols, cuts, deadline)
        stats[f"stage{stage}_edges"], stats[f"stage{stage}_rounds"] = float(len(cols)), float(rounds)
        stats[f"stage{stage}_seconds"] = time.monotonic() - t0
        final = g >= best_len - lower
        if tour is None:
            if status == "infeasible" and not final:  # no tour inside this edge set: widen it
                g = _next_g(stage, g, best_len - lower)
                continue
            break  # time limit or solver failure
        length = tour_length(d, tour)
        if length < best_len:
            best_tour, best_len = rotate_to_zero(tour), length
        if length <= lower + g + tol:
            stats["cuts"] = float(len(cuts))
            return OptimalTour(
                length,
                rotate_to_zero(tour),
                True,
                "milp_dfj",
                time.monotonic() - start,
                length,
                heuristic_length,
                stats,
            )
        if final:  # cannot happen barring numerical trouble: the best tour lies inside the final set
            break
        g = _next_g(stage, g, best_len - lower)
    stats["cuts"] = float(len(cuts))
    return OptimalTour(best_len, best_tour, False, "milp_dfj", time.monotonic() - start, lower, heuristic_length, stats)


def solve_optimal(dist: np.ndarray, time_limit: float = 600.0, method: str = "auto", seed: int = 0) -> OptimalTour:
    """Optimal tour: Held-Karp for n <= 13 ("auto"), else DFJ on HiGHS (see module docstring).

    time_limit is in seconds for the whole call; when it runs out the best tour found is returned with
    certified=False. `seed` seeds the upper-bound heuristic (local_search). dist must be symmetric.
    """
    start = time.monotonic()
    d = np.asarray(check_dist(dist), dtype=np.float64)
    n = d.shape[0]
    if method not in METHODS:
        raise OproError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    if not np.all(np.isfinite(d)) or not np.allclose(d, d.T) or (d < 0).any():
        raise OproError("solve_optimal needs a finite, symmetric, non-negative distance matrix")
    if n <= 3:
        length = tour_length(d, list(range(n)))
        return OptimalTour(length, list(range(n)), True, "trivial", time.monotonic() - start, length)
    if method == "held_karp" or (method == "auto" and n <= AUTO_HELD_KARP_N):
        try:
            length, tour = held_karp(d, start + time_limit)
        except OutOfTime:
            tour = local_search(d, seed=seed, restarts=1, kicks=0)
            length = tour_length(d, tour)
            return OptimalTour(length, tour, False, "held_karp", time.monotonic() - start, -np.inf, length)
        return OptimalTour(length, tour, True, "held_karp", time.monotonic() - start, length)
    result = _solve_dfj(d, time_limit, seed, start)
    if result.certified and not (np.isfinite(result.length) and result.length >= 0):
        return dataclasses.replace(result, certified=False)
    return result
