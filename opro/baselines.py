"""Baselines for every task, computed the same way `opro baselines` and `opro compare` show them.

TSP (paper Table 3): nearest neighbour, farthest insertion, 2-opt (from the nearest-neighbour tour), an
iterated 2-opt + Or-opt local search (the strong heuristic), and the certified optimum. Gaps are
100 * (length - optimum) / optimum, on the distances the optimizer is scored by.

Linear regression (paper Table 2): the closed-form integer optimum, plus random search and Nelder-Mead given
the budget of an OPRO run (the same 5 initial pairs, then 8 evaluations per step). Both report the paper's
metrics: steps to reach the optimum and unique (w, b) pairs evaluated until then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from opro import scores
from opro.config import RunConfig
from opro.problems.linreg import LinearRegression
from opro.problems.tsp import TravelingSalesman
from opro.solvers import cached_optimal, farthest_insertion, local_search, nearest_neighbor, tour_length, two_opt
from opro.stats import format_mean_se, mean_se

#: The heuristics, each called as solve(dist, time_limit) (seconds; None: no limit). Nearest neighbour is
#: O(n^2) in all and needs no limit; the others stop at the limit with the best tour so far.
TSP_HEURISTICS: dict[str, Callable[..., list[int]]] = {
    "nearest_neighbor": lambda dist, time_limit=None: nearest_neighbor(dist),
    "farthest_insertion": lambda dist, time_limit=None: farthest_insertion(dist, time_limit=time_limit),
    "two_opt": lambda dist, time_limit=None: two_opt(dist, time_limit=time_limit),
    "local_search": lambda dist, time_limit=None: local_search(dist, time_limit=time_limit),
}
TSP_METHODS = (*TSP_HEURISTICS, "optimal")

#: Random search draws integer pairs uniformly from this square (it holds every w_true, b_true of Table 2).
RANDOM_SEARCH_BOX = (-50, 50)
LINREG_METHODS = ("random_search", "nelder_mead")


def gap_percent(length: float, optimum: float | None) -> float | None:
    """A tour's optimality gap in percent (`opro.scores.gap_percent`, minimizing)."""
    return scores.gap_percent(length, optimum, True)


def tsp_baselines(problem: TravelingSalesman, optimal: bool = True, time_limit: float = 600.0) -> dict[str, Any]:
    """`{"instance", "n", "methods": {name: {"length", "seconds", "stopped"}, "optimal": {..., "certified"}}}`.

    Each method gets `time_limit` seconds; `stopped` says a heuristic reached it and returned the best tour
    it had. `seconds` is the wall time of this call; for the optimum, `solve_seconds` is the time the proof
    took when it was first computed (it is cached per instance), and `certified` says whether it is proven
    (a proof cut short by the limit is not).
    """
    methods: dict[str, dict[str, Any]] = {}
    for name, solve in TSP_HEURISTICS.items():
        started = time.perf_counter()
        tour = solve(problem.dist, time_limit)
        seconds = time.perf_counter() - started
        methods[name] = {"length": float(tour_length(problem.dist, tour)), "seconds": round(seconds, 6),
                         "stopped": name != "nearest_neighbor" and seconds >= time_limit}
    if optimal:
        started = time.perf_counter()
        best = cached_optimal(problem.dist, problem.edge_weight_type, time_limit=time_limit)
        methods["optimal"] = {
            "length": float(best.length),
            "certified": bool(best.certified),
            "seconds": round(time.perf_counter() - started, 6),
            "solve_seconds": round(best.seconds, 6),
            "method": best.method,
            "lower_bound": float(best.lower_bound),
        }
        for entry in methods.values():
            entry["gap_percent"] = gap_percent(entry["length"], float(best.length))
    return {"instance": problem.instance_name, "n": problem.n, "edge_weight_type": problem.edge_weight_type,
            "methods": methods}


def tsp_table_rows(sizes: list[int], instances: int, seed: int, coord_range: int = 100,
                   time_limit: float = 600.0) -> list[dict[str, Any]]:
    """One tidy row per (n, instance, method) over random instances seeded seed .. seed+instances-1."""
    from opro.problems import build_problem

    rows = []
    for n in sizes:
        for k in range(instances):
            problem = build_problem("tsp", {"n": n, "coord_range": coord_range, "optimum": False}, seed + k)
            report = tsp_baselines(problem, time_limit=time_limit)
            optimum = report["methods"]["optimal"]
            for method, entry in report["methods"].items():
                rows.append({
                    "n": n, "instance": problem.instance_name, "instance_seed": seed + k, "method": method,
                    "length": entry["length"], "optimum": optimum["length"],
                    "certified": optimum["certified"], "gap_percent": entry["gap_percent"],
                    "seconds": entry["seconds"] if method != "optimal" else entry["solve_seconds"],
                })
    return rows


def tsp_table(sizes: list[int], instances: int, seed: int, coord_range: int = 100, time_limit: float = 600.0,
              out: Path | None = None) -> dict[str, Any]:
    """The paper's Table 3 layout: gap in % (mean ± SE over instances) per method and n, written as CSV.

    `out` (default `results/baselines/tsp-n<sizes>-k<instances>-s<seed>`) gets `instances.csv` (one row per
    instance and method), `table.csv` (mean, SE, seconds per n and method) and `table.md`.
    """
    rows = tsp_table_rows(sizes, instances, seed, coord_range, time_limit)
    table = []
    for n in sizes:
        for method in TSP_METHODS:
            picked = [r for r in rows if r["n"] == n and r["method"] == method]
            gap, se, count = mean_se(r["gap_percent"] for r in picked)
            table.append({"n": n, "method": method, "instances": count, "gap_mean": gap, "gap_se": se,
                          "solved": sum(r["gap_percent"] is not None and r["gap_percent"] <= 1e-9 for r in picked),
                          "certified": sum(bool(r["certified"]) for r in picked),
                          "seconds_mean": mean_se(r["seconds"] for r in picked)[0],
                          "cell": format_mean_se((r["gap_percent"] for r in picked), 1)})
    out = out or Path("results") / "baselines" / f"tsp-n{'-'.join(map(str, sizes))}-k{instances}-s{seed}"
    lines = ["| n | " + " | ".join(TSP_METHODS) + " |", "| ---: |" + " ---: |" * len(TSP_METHODS)]
    for n in sizes:
        cells = [next(r["cell"] for r in table if r["n"] == n and r["method"] == m) for m in TSP_METHODS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    _write_tables(out, {"instances.csv": rows, "table.csv": [{k: v for k, v in r.items() if k != "cell"}
                                                             for r in table]}, markdown)
    text = (f"Optimality gap (%), mean ± SE over {instances} random instance(s) per n (seeds {seed}.."
            f"{seed + instances - 1}); coordinates in [-{coord_range}, {coord_range}]\n\n{markdown}\n"
            f"tables: {out}")
    return {"sizes": sizes, "instances": instances, "seed": seed, "table": table, "out": str(out), "_text": text}


def write_tsp_baselines(report: dict[str, Any], out: Path) -> None:
    """One instance's `tsp_baselines` report as `out/table.csv` (one row per method) and `out/table.md`."""
    rows = [{"instance": report["instance"], "n": report["n"], "edge_weight_type": report["edge_weight_type"],
             "method": name, "length": entry["length"], "gap_percent": entry.get("gap_percent"),
             "seconds": entry.get("solve_seconds", entry["seconds"]), "stopped": entry.get("stopped", False),
             "certified": entry.get("certified")} for name, entry in report["methods"].items()]
    lines = ["| method | length | gap % |", "| --- | ---: | ---: |"]
    lines += [f"| {r['method']} | {r['length']:.6g} | "
              f"{'-' if r['gap_percent'] is None else format(r['gap_percent'], '.2f')} |" for r in rows]
    _write_tables(out, {"table.csv": rows}, "\n".join(lines) + "\n")


def tsp_text(report: dict[str, Any]) -> str:
    """One instance's baselines as a readable table."""
    lines = [f"{report['instance']} (n={report['n']}, {report['edge_weight_type']})", "",
             f"{'method':<20} {'length':>14} {'gap %':>8} {'seconds':>10}"]
    for name, entry in report["methods"].items():
        gap = entry.get("gap_percent")
        seconds = entry.get("solve_seconds", entry["seconds"])
        note = "  stopped at the time limit" if entry.get("stopped") else ""
        if name == "optimal":
            note = "  certified" if entry["certified"] else f"  NOT certified (bound {entry['lower_bound']:.6g})"
        lines.append(f"{name:<20} {entry['length']:>14.6g} {'-' if gap is None else f'{gap:.2f}':>8} "
                     f"{seconds:>10.3f}{note}")
    return "\n".join(lines)


def _write_tables(out: Path, tables: dict[str, list[dict[str, Any]]], markdown: str) -> None:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(out / name, index=False)
    (out / "table.md").write_text(markdown)


def linreg_table(config: RunConfig, seeds: list[int], out: Path | None = None) -> dict[str, Any]:
    """Table 2 metrics of the regression baselines over `seeds` (each seed: its own noise and start pairs),
    at the evaluation budget of the config's OPRO run."""
    from opro.problems import build_problem

    loop = config.loop
    rows = []
    optimum = None
    for seed in seeds:
        problem = build_problem("linreg", dict(config.problem_settings), seed)
        optimum = problem.render(problem.optimum_pair)
        rows.append({"method": "closed_form", "seed": seed, "solved": True, "steps_to_optimum": 0,
                     "unique_pairs": 1, "evaluations": 0, "best_score": problem.optimum, "best_solution": optimum})
        rows += linreg_baselines(problem, seed, loop.steps, loop.num_initial, loop.candidates_per_step)
    table = []
    for method in ("closed_form", *LINREG_METHODS):
        picked = [r for r in rows if r["method"] == method]
        solved = [r for r in picked if r["solved"]]
        steps_mean, steps_se, _ = mean_se(r["steps_to_optimum"] for r in solved)
        unique_mean, unique_se, _ = mean_se(r["unique_pairs"] for r in picked)
        table.append({"method": method, "runs": len(picked), "solved": len(solved), "steps_mean": steps_mean,
                      "steps_se": steps_se, "unique_mean": unique_mean, "unique_se": unique_se,
                      "steps": format_mean_se((r["steps_to_optimum"] for r in solved), 1),
                      "unique": format_mean_se((r["unique_pairs"] for r in picked), 1)})
    settings = config.problem_settings
    w, b = settings.get("w_true", 15), settings.get("b_true", 14)
    budget = linreg_budget(loop.steps, loop.num_initial, loop.candidates_per_step)
    out = out or Path(config.results_root) / "baselines" / f"linreg-w{w:g}-b{b:g}-steps{loop.steps}"
    lines = ["| method | solved | steps to optimum | unique (w, b) pairs |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['method']} | {r['solved']}/{r['runs']} | {r['steps']} | {r['unique']} |" for r in table]
    markdown = "\n".join(lines) + "\n"
    _write_tables(out, {"runs.csv": rows, "table.csv": [{k: v for k, v in r.items() if k not in ("steps", "unique")}
                                                        for r in table]}, markdown)
    text = (f"Linear regression w_true={w:g}, b_true={b:g}; budget {budget} evaluations ({loop.num_initial} initial"
            f" + {loop.candidates_per_step} x {loop.steps} steps); seeds {seeds}\n\n{markdown}\ntables: {out}")
    return {"w_true": w, "b_true": b, "budget": budget, "seeds": seeds, "table": table, "runs": rows,
            "out": str(out), "_text": text}


def linreg_budget(steps: int, num_initial: int = 5, per_step: int = 8) -> int:
    """Evaluations an OPRO run of `steps` steps may score: the initial pairs plus `per_step` a step."""
    return num_initial + steps * per_step


class _Evaluations:
    """The stream of (w, b) pairs a baseline evaluates, with the metrics of the paper's Table 2."""

    def __init__(self, problem: LinearRegression, budget: int, num_initial: int, per_step: int) -> None:
        self.problem, self.budget, self.num_initial, self.per_step = problem, budget, num_initial, per_step
        self.count = 0
        self.seen: dict[tuple[int, int], float] = {}
        self.best: tuple[float, tuple[int, int]] | None = None
        self.solved_at: int | None = None  # evaluation index (0-based) that first hit the optimum
        self.unique_at_solve: int | None = None

    @property
    def exhausted(self) -> bool:
        return self.count >= self.budget or self.solved_at is not None

    def __call__(self, w: float, b: float) -> float:
        pair = (round(w), round(b))
        if pair not in self.seen:
            self.seen[pair] = self.problem.score([pair])[0]
        value = self.seen[pair]
        if self.best is None or value < self.best[0]:
            self.best = (value, pair)
        if self.solved_at is None and self.problem.is_optimal(value):
            self.solved_at, self.unique_at_solve = self.count, len(self.seen)
        self.count += 1
        return value

    def result(self, method: str, seed: int) -> dict[str, Any]:
        steps = None
        if self.solved_at is not None:
            after = self.solved_at - self.num_initial
            steps = 0 if after < 0 else after // self.per_step + 1
        assert self.best is not None
        return {
            "method": method,
            "seed": seed,
            "solved": self.solved_at is not None,
            "steps_to_optimum": steps,
            "unique_pairs": self.unique_at_solve if self.unique_at_solve is not None else len(self.seen),
            "evaluations": self.count,
            "best_score": self.best[0],
            "best_solution": self.problem.render(self.best[1]),
        }


def linreg_baselines(problem: LinearRegression, seed: int, steps: int, num_initial: int = 5,
                     per_step: int = 8) -> list[dict[str, Any]]:
    """Random search and Nelder-Mead from the run's initial pairs, each with the run's evaluation budget."""
    budget = linreg_budget(steps, num_initial, per_step)
    initial = problem.initial_solutions(np.random.default_rng(seed), num_initial)
    results = []
    for method, search in (("random_search", _random_search), ("nelder_mead", _nelder_mead)):
        evaluate = _Evaluations(problem, budget, num_initial, per_step)
        for w, b in initial:
            evaluate(w, b)
        if not evaluate.exhausted:
            search(evaluate, np.random.default_rng([seed, len(results)]))
        results.append(evaluate.result(method, seed))
    return results


def _random_search(evaluate: _Evaluations, rng: np.random.Generator) -> None:
    low, high = RANDOM_SEARCH_BOX
    while not evaluate.exhausted:
        w, b = rng.integers(low, high, size=2, endpoint=True)
        evaluate(int(w), int(b))


class _Stop(Exception):
    pass


def _nelder_mead(evaluate: _Evaluations, rng: np.random.Generator) -> None:
    """scipy's Nelder-Mead on the SSE of the rounded pair, restarted from the best pair (a smaller simplex
    after an improving run, larger after a stalled one; random orientation) until the budget is spent or the
    optimum is found. The rounded SSE is flat between integers, so a plain run stalls early."""
    from scipy.optimize import minimize

    def objective(x: np.ndarray) -> float:
        if evaluate.exhausted:
            raise _Stop
        return evaluate(float(x[0]), float(x[1]))

    scale = 5.0
    while not evaluate.exhausted:
        assert evaluate.best is not None
        before = evaluate.best[0]
        start = np.asarray(evaluate.best[1], dtype=float)
        angle = rng.uniform(0, 2 * math.pi)
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        simplex = np.vstack([start, start + scale * rotation[0], start + scale * rotation[1]])
        try:
            minimize(objective, start, method="Nelder-Mead",
                     options={"initial_simplex": simplex, "maxfev": evaluate.budget, "xatol": 0.5, "fatol": 1e-9})
        except _Stop:
            return
        scale = max(1.0, scale / 2) if evaluate.best[0] < before else min(64.0, scale * 2)
