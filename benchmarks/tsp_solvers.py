"""Benchmark the TSP solvers on paper-style random instances.

Instance (n, seed) is the project's `random-n{n}-s{seed}`: integer coordinates uniform in [-100, 100]
drawn with numpy.random.default_rng(seed), float Euclidean distances. For each size the table shows,
per method, the mean wall-clock seconds and the mean gap to the optimum in percent (100 * (L / L* - 1)).

Run from the repository root:  python -m benchmarks.tsp_solvers [--sizes 10 20 50] [--instances 3]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from opro.baselines import TSP_HEURISTICS
from opro.solvers import solve_optimal, tour_length
from opro.tsplib import distance_matrix

HEURISTICS = TSP_HEURISTICS
METHODS = (*HEURISTICS, "optimal")


def instance(n: int, seed: int) -> np.ndarray:
    coords = np.random.default_rng(seed).integers(-100, 100, size=(n, 2), endpoint=True)
    return distance_matrix(coords.astype(np.float64), "EUC")


def run_size(n: int, instances: int, time_limit: float) -> tuple[dict[str, tuple[float, float]], int]:
    """Mean (seconds, gap %) per method over seeds 0..instances-1, and how many optima were certified."""
    seconds: dict[str, list[float]] = {m: [] for m in METHODS}
    gaps: dict[str, list[float]] = {m: [] for m in METHODS}
    certified = 0
    for seed in range(instances):
        d = instance(n, seed)
        t0 = time.perf_counter()
        opt = solve_optimal(d, time_limit=time_limit)
        seconds["optimal"].append(time.perf_counter() - t0)
        gaps["optimal"].append(0.0)
        certified += opt.certified
        for name, solve in HEURISTICS.items():
            t0 = time.perf_counter()
            tour = solve(d)
            seconds[name].append(time.perf_counter() - t0)
            gaps[name].append(100.0 * (tour_length(d, tour) / opt.length - 1.0))
        print(
            f"  n={n} seed={seed}: optimum {opt.length:.2f} in {seconds['optimal'][-1]:.2f} s "
            f"(certified={opt.certified})",
            file=sys.stderr,
            flush=True,
        )
    return {m: (float(np.mean(seconds[m])), float(np.mean(gaps[m]))) for m in METHODS}, certified


def format_table(rows: dict[int, dict[str, tuple[float, float]]], certified: dict[int, int], k: int) -> str:
    width = 18
    head1 = f"{'':>5} | " + " | ".join(f"{m:^{width}}" for m in METHODS) + " | certified"
    head2 = f"{'n':>5} | " + " | ".join(f"{'sec':>8} {'gap %':>9}" for _ in METHODS) + " |"
    lines = [head1, head2, "-" * len(head1)]
    for n, row in rows.items():
        cells = " | ".join(f"{row[m][0]:>8.3f} {row[m][1]:>9.2f}" for m in METHODS)
        lines.append(f"{n:>5} | {cells} | {certified[n]}/{k}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 100, 200], help="instance sizes n")
    parser.add_argument("--instances", type=int, default=3, help="random instances (seeds 0..k-1) per size")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per exact solve")
    args = parser.parse_args(argv)
    if args.instances < 1 or any(n < 4 for n in args.sizes):
        parser.error("need --instances >= 1 and every size >= 4")
    rows, certified = {}, {}
    for n in args.sizes:
        rows[n], certified[n] = run_size(n, args.instances, args.time_limit)
    print(f"TSP solvers, mean over {args.instances} random instance(s) per size; gap vs certified optimum")
    print(format_table(rows, certified, args.instances))


if __name__ == "__main__":
    main()
