"""Loading a large results tree into pandas: `opro.analysis.load` against per-file reading.

Synthesizes RUNS run directories of STEPS steps each (TSP n=20 tours, 8 proposals a step plus re-samples
of the invalid ones: about 1,000 candidates.csv rows and 120 KB a run, as `opro run` writes them), then
times, in one process and on the same files:
- naive:     per run, json.load the configs and pd.read_csv both logs, add the metadata columns; one
             pd.concat at the end (what a notebook does first);
- threads:   the same per-run reads in a thread pool (4 threads);
- opro, c:        opro.analysis.load(engine="c"): one joined buffer per log, parsed once by pandas' C
                  parser, metadata as categoricals;
- opro, pyarrow:  the same parsed by pyarrow's multithreaded CSV reader (the default when installed);
- opro, steps:    opro.analysis.load(candidates=False), for studies that need the curves only.
Each is timed REPEATS times after one warm-up read of the files (the page cache is warm for all of them);
the best time is reported, with its ratio to naive.

    python -m benchmarks.analysis_load                 # 1,000 runs x 100 steps in a temporary folder
    python -m benchmarks.analysis_load --runs 200 --keep /tmp/tree
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from opro.analysis import load
from opro.config import build_config
from opro.results import CANDIDATE_COLUMNS, STEP_COLUMNS, write_json_atomic

N_NODES, PER_STEP, INITIAL = 20, 8, 5


def synthesize(root: Path, runs: int, steps: int) -> None:
    """`runs` run directories under root/tsp/<group>/seed<k>, groups of 10 seeds (as --seeds 0-9 writes)."""
    config = build_config("tsp", {"problem.n": N_NODES, "loop.steps": steps}).to_dict()
    for k in range(runs):
        rng = np.random.default_rng(k)
        path = root / "tsp" / f"group{k // 10:03d}" / f"seed{k % 10}"
        path.mkdir(parents=True)
        if k % 10 == 0:
            write_json_atomic(path.parent / "group.json", {"task": "tsp", "seeds": list(range(10)), "instances": None,
                                                           "overrides": {}, "runs": [f"seed{s}" for s in range(10)]})
        optimum = 380.0 + rng.uniform(0, 40)
        instance = {"instance": f"random-n{N_NODES}-s{k}", "n": N_NODES, "edge_weight_type": "EUC",
                    "optimum": optimum, "optimum_certified": True,
                    "optimal_solution": ",".join(map(str, range(N_NODES)))}
        record = {"config": {**config, "seed": k % 10}, "templates": {"meta": "...", "entry": "..."},
                  "instance": instance, "optimizer": {"backend": "llamacpp", "model": "smollm2"}}
        best, rows, step_rows = np.inf, [], []
        for step in range(steps + 1):
            count = INITIAL if step == 0 else PER_STEP + int(rng.integers(0, 4))
            n_valid = 0
            for index in range(count):
                valid = step == 0 or rng.random() > 0.25
                tour = ",".join(map(str, rng.permutation(N_NODES))) if valid else ""
                score = optimum * (1 + rng.exponential(0.6) / (1 + step / 20)) if valid else None
                new_best = valid and score < best
                best = min(best, score) if valid else best
                n_valid += valid
                seed = None if step == 0 else k + step * PER_STEP + index
                rows.append([step, index % PER_STEP, int(index >= PER_STEP), seed,
                             f"{rng.integers(2**62):016x}", tour, valid, "" if valid else "missing nodes: [4]", False,
                             None if score is None else repr(score), new_best, 0 if step == 0 else 620,
                             0 if step == 0 else int(rng.integers(40, 90)), "initial" if step == 0 else "stop"])
            step_rows.append([step, repr(best), count, n_valid, n_valid, max(0, count - PER_STEP),
                              0 if step == 0 else 620 * count, 60 * count, 0, 0.0, repr(rng.uniform(1, 9)),
                              bool(best <= optimum)])
        for name, columns, table in (("candidates.csv", CANDIDATE_COLUMNS, rows),
                                     ("steps.csv", STEP_COLUMNS, step_rows)):
            with open(path / name, "w", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows(["" if v is None else v for v in row] for row in table)
        (path / "llm_calls.jsonl").write_text("")
        write_json_atomic(path / "config.json", record)
        write_json_atomic(path / "state.json", {"last_step": steps, "lengths": {
            name: (path / name).stat().st_size for name in ("candidates.csv", "steps.csv", "llm_calls.jsonl")}})
        write_json_atomic(path / "summary.json", {"problem": "tsp", "minimize": True, "best_score": best,
                                                  "optimum": optimum, "gap_percent": (best - optimum) / optimum * 100,
                                                  "steps_run": steps, "instance": instance})


def read_one(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-file way: both logs of one run, with the run's metadata as columns."""
    record = json.loads((path / "config.json").read_text())
    summary = json.loads((path / "summary.json").read_text())
    meta = {"run": str(path), "task": "tsp", "model": record["config"]["optimizer"]["spec"],
            "seed": record["config"]["seed"], "n": summary["instance"]["n"],
            "instance": summary["instance"]["instance"]}
    return (pd.read_csv(path / "candidates.csv").assign(**meta), pd.read_csv(path / "steps.csv").assign(**meta))


def naive(root: Path, threads: int = 0) -> tuple[int, int]:
    dirs = sorted(p.parent for p in root.rglob("summary.json"))
    if threads:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(read_one, dirs))
    else:
        parts = [read_one(p) for p in dirs]
    candidates = pd.concat([c for c, _ in parts], ignore_index=True)
    steps = pd.concat([s for _, s in parts], ignore_index=True)
    return len(candidates), len(steps)


def ours(root: Path, candidates: bool = True, engine: str = "auto") -> tuple[int, int]:
    results = load(root, candidates=candidates, engine=engine)
    return len(results.candidates), len(results.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Write (or reuse) the tree here instead of a temporary folder.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="opro-analysis-bench-"))
    try:
        if not (root / "tsp").is_dir():
            started = time.perf_counter()
            synthesize(root, args.runs, args.steps)
            print(f"synthesized {args.runs} runs x {args.steps} steps in {time.perf_counter() - started:.1f} s")
        files = list(root.rglob("candidates.csv"))
        size = sum(p.stat().st_size for p in root.rglob("*.csv"))
        print(f"tree: {len(files)} runs, {size / 1e6:.0f} MB of CSV")
        strategies = {"naive (per-file read_csv + concat)": naive, "threads (same, 4 threads)": lambda r: naive(r, 4),
                      "opro.analysis.load(engine='c')": lambda r: ours(r, engine="c"),
                      "opro.analysis.load (pyarrow)": lambda r: ours(r, engine="pyarrow"),
                      "opro.analysis.load(candidates=False)": lambda r: ours(r, False)}
        naive(root)  # warm the page cache
        times, counts = {}, {}
        for name, strategy in strategies.items():
            best = np.inf
            for _ in range(args.repeats):
                started = time.perf_counter()
                counts[name] = strategy(root)
                best = min(best, time.perf_counter() - started)
            times[name] = best
        base = times["naive (per-file read_csv + concat)"]
        print(f"\n{'strategy':<42} {'seconds':>8} {'vs naive':>9}  rows (candidates, steps)")
        for name, seconds in times.items():
            print(f"{name:<42} {seconds:>8.2f} {base / seconds:>8.1f}x  {counts[name]}")
        full = [c for n, c in counts.items() if "candidates=False" not in n]
        assert len(set(full)) == 1, f"strategies disagree on row counts: {counts}"
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
