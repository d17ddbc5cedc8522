"""DFJ (Dantzig-Fulkerson-Johnson) pieces for the exact solver: symmetric edge formulation, cut
separation, the LP phase (Lagrangian bound and reduced costs) and the MILP phase (scipy/HiGHS).

Variables are x_e in [0, 1] for edges e = (iu[e], ju[e]) with iu < ju; every node has degree 2. Cuts are
valid for every tour: subtour elimination x(E(S)) <= |S| - 1, and 2-matching blossoms
x(E(H)) + sum_teeth x_t <= |H| + (k - 1) / 2 for a handle H with an odd number k >= 3 of disjoint teeth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components

_TOL = 1e-6


@dataclass(frozen=True)
class Cut:
    """x(E(nodes)) + sum of x over `teeth` edges <= rhs; a subtour cut when there are no teeth."""

    nodes: tuple[int, ...]
    teeth: tuple[tuple[int, int], ...] = ()

    @property
    def rhs(self) -> float:
        return len(self.nodes) - 1.0 if not self.teeth else len(self.nodes) + (len(self.teeth) - 1) / 2


@dataclass(frozen=True)
class Problem:
    """The complete graph on n nodes: edge e joins iu[e] < ju[e] and costs c[e]."""

    n: int
    iu: np.ndarray
    ju: np.ndarray
    c: np.ndarray

    @classmethod
    def from_dist(cls, d: np.ndarray) -> Problem:
        iu, ju = np.triu_indices(d.shape[0], 1)
        return cls(n=d.shape[0], iu=iu, ju=ju, c=np.asarray(d[iu, ju], dtype=np.float64))

    def edge_id(self, u: int, v: int) -> int:
        u, v = min(u, v), max(u, v)
        return u * self.n - u * (u + 1) // 2 + (v - u - 1)

    def degree_matrix(self, cols: np.ndarray) -> sparse.csr_array:
        k = len(cols)
        rows = np.concatenate([self.iu[cols], self.ju[cols]])
        return sparse.csr_array((np.ones(2 * k), (rows, np.tile(np.arange(k), 2))), shape=(self.n, k))

    def cut_matrix(self, cuts: list[Cut], cols: np.ndarray) -> tuple[sparse.csr_array, np.ndarray]:
        """One row per cut, restricted to the edges `cols`; returns (A, b) for A x <= b."""
        pos = np.full(len(self.c), -1)
        pos[cols] = np.arange(len(cols))
        a, b = self.iu[cols], self.ju[cols]
        indices = []
        for cut in cuts:
            member = np.zeros(self.n, dtype=bool)
            member[list(cut.nodes)] = True
            teeth = pos[[self.edge_id(u, v) for u, v in cut.teeth]] if cut.teeth else np.zeros(0, int)
            indices.append(np.union1d(np.flatnonzero(member[a] & member[b]), teeth[teeth >= 0]))
        indptr = np.concatenate([[0], np.cumsum([len(ix) for ix in indices])])
        flat = np.concatenate(indices) if indices else np.zeros(0, int)
        matrix = sparse.csr_array((np.ones(len(flat)), flat, indptr), shape=(len(cuts), len(cols)))
        return matrix, np.array([cut.rhs for cut in cuts])


def components(n: int, iu: np.ndarray, ju: np.ndarray) -> list[np.ndarray]:
    """Connected components (sorted node arrays) of the graph with edges (iu[k], ju[k])."""
    graph = sparse.coo_array((np.ones(len(iu)), (iu, ju)), shape=(n, n))
    k, labels = connected_components(graph, directed=False)
    return [np.flatnonzero(labels == c) for c in range(k)]


def subtour_cut(nodes: np.ndarray, n: int) -> Cut:
    """Subtour cut on the smaller side (S and its complement give the same cut under degree 2)."""
    s = np.unique(nodes)
    if 2 * len(s) > n or (2 * len(s) == n and 0 not in s):
        s = np.setdiff1d(np.arange(n), s)
    return Cut(tuple(int(v) for v in s))


def _stoer_wagner_sets(w: np.ndarray, threshold: float, deadline: float | None = None) -> list[np.ndarray]:
    """Node sets of every Stoer-Wagner cut-of-the-phase lighter than threshold (includes the min cut); the
    ones found so far when the deadline passes (each is a valid cut)."""
    w = w.copy()
    n = len(w)
    groups = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    found = []
    for _ in range(n - 1):
        if deadline is not None and time.monotonic() > deadline:
            break
        idx = np.flatnonzero(alive)
        added = ~alive
        added[idx[0]] = True
        key = w[idx[0]].copy()
        prev = last = int(idx[0])
        cut_val = 0.0
        for _ in range(len(idx) - 1):
            nxt = int(np.argmax(np.where(added, -np.inf, key)))
            cut_val = float(key[nxt])
            added[nxt] = True
            prev, last = last, nxt
            key += w[nxt]
        if cut_val < threshold:
            found.append(np.array(groups[last]))
        w[prev] += w[last]
        w[:, prev] += w[:, last]
        w[prev, prev] = 0.0
        alive[last] = False
        groups[prev].extend(groups[last])
    return found


def _blossoms(prob: Problem, x: np.ndarray) -> list[Cut]:
    """Odd-component heuristic: handles are components of the fractional edges, teeth the x_e = 1
    edges leaving them; keeps the violated blossoms with an odd number >= 3 of disjoint teeth."""
    frac = (x > _TOL) & (x < 1 - _TOL)
    one = x >= 1 - _TOL
    found = []
    for handle in components(prob.n, prob.iu[frac], prob.ju[frac]):
        if len(handle) < 2:
            continue
        member = np.zeros(prob.n, dtype=bool)
        member[handle] = True
        teeth = one & (member[prob.iu] ^ member[prob.ju])
        k = int(teeth.sum())
        outside = np.where(member[prob.iu[teeth]], prob.ju[teeth], prob.iu[teeth])
        if k < 3 or k % 2 == 0 or len(np.unique(outside)) < k:
            continue
        lhs = x[member[prob.iu] & member[prob.ju]].sum() + x[teeth].sum()
        if lhs > len(handle) + (k - 1) / 2 + _TOL:
            pairs = tuple((int(u), int(v)) for u, v in zip(prob.iu[teeth], prob.ju[teeth], strict=True))
            found.append(Cut(tuple(int(v) for v in handle), pairs))
    return found


def separate(prob: Problem, x: np.ndarray, deadline: float | None = None) -> list[Cut]:
    """Violated cuts for an LP solution x over all edges: subtours first, then blossoms."""
    support = x > _TOL
    comps = components(prob.n, prob.iu[support], prob.ju[support])
    if len(comps) > 1:
        return [subtour_cut(s, prob.n) for s in comps]
    w = np.zeros((prob.n, prob.n))
    w[prob.iu, prob.ju] = x
    w += w.T
    sets = _stoer_wagner_sets(w, 2.0 - 1e-4, deadline)
    return [subtour_cut(s, prob.n) for s in sets] if sets else _blossoms(prob, x)


def lp_phase(prob: Problem, cuts: dict[Cut, None], deadline: float) -> tuple[float, np.ndarray] | None:
    """Cutting-plane LP over all edges; (Lagrangian lower bound, reduced costs), or None on failure.

    For any duals y_eq and y_ub <= 0, every tour T satisfies len(T) >= y.b + sum_{rc<0} rc_e + rc_f for
    each edge f of T with rc_f >= 0, where rc = c - A^T y. Duals only need to be good, not exact.
    """
    a_eq, b_eq = prob.degree_matrix(np.arange(len(prob.c))), np.full(prob.n, 2.0)
    while True:
        cut_list = list(cuts)
        a_ub, b_ub = prob.cut_matrix(cut_list, np.arange(len(prob.c))) if cut_list else (None, None)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        res = linprog(
            prob.c,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a_eq,
            b_eq=b_eq,
            bounds=(0, 1),
            method="highs",
            options={"time_limit": left},
        )
        if res.status != 0:
            return None
        new = [cut for cut in separate(prob, res.x, deadline) if cut not in cuts and len(cut.nodes) > 1]
        if time.monotonic() > deadline:
            return None  # the separation ran out of time: no proven bound
        if not new:
            break
        cuts.update(dict.fromkeys(new))
    y_eq = res.eqlin.marginals
    rc = prob.c - a_eq.T @ y_eq
    bound = float(y_eq @ b_eq)
    if cut_list:
        y_ub = np.minimum(res.ineqlin.marginals, 0.0)
        rc = rc - a_ub.T @ y_ub
        bound += float(y_ub @ b_ub)
    return bound + float(np.minimum(rc, 0.0).sum()), rc


def tour_from_edges(n: int, a: np.ndarray, b: np.ndarray) -> list[int]:
    """The cycle through node 0 formed by edges (a[k], b[k]), every node having degree 2."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        adj[u].append(v)
        adj[v].append(u)
    tour, prev = [0], -1
    while len(tour) < n:
        here = adj[tour[-1]]
        nxt = here[0] if here[0] != prev else here[1]
        prev = tour[-1]
        tour.append(nxt)
    return tour


def milp_phase(
    prob: Problem, cols: np.ndarray, cuts: dict[Cut, None], deadline: float
) -> tuple[list[int] | None, str, int]:
    """Integer DFJ on the edges `cols`, adding a subtour cut per component of each integer solution.

    Returns (tour, status, rounds): status "optimal" (tour is optimal among tours using only `cols`),
    "infeasible" (no tour uses only `cols`) or "failed" (time limit or solver trouble; tour None).
    """
    a_eq = prob.degree_matrix(cols)
    rounds = 0
    while True:
        rounds += 1
        cons = [LinearConstraint(a_eq, 2.0, 2.0)]
        if cuts:
            a_ub, b_ub = prob.cut_matrix(list(cuts), cols)
            cons.append(LinearConstraint(a_ub, -np.inf, b_ub))
        left = deadline - time.monotonic()
        if left <= 0:
            return None, "failed", rounds
        res = milp(
            prob.c[cols],
            integrality=np.ones(len(cols)),
            bounds=Bounds(0, 1),
            constraints=cons,
            options={"time_limit": left, "mip_rel_gap": 0.0},
        )
        if res.status == 2:
            return None, "infeasible", rounds
        if res.status != 0 or res.x is None:
            return None, "failed", rounds
        chosen = cols[res.x > 0.5]
        if not (np.bincount(np.concatenate([prob.iu[chosen], prob.ju[chosen]]), minlength=prob.n) == 2).all():
            return None, "failed", rounds  # not a 2-factor after rounding: numerical trouble
        comps = components(prob.n, prob.iu[chosen], prob.ju[chosen])
        if len(comps) == 1:
            return tour_from_edges(prob.n, prob.iu[chosen], prob.ju[chosen]), "optimal", rounds
        new = [cut for cut in (subtour_cut(s, prob.n) for s in comps) if cut not in cuts]
        if not new:  # the solver returned a point violating a known cut: numerical trouble
            return None, "failed", rounds
        cuts.update(dict.fromkeys(new))
