"""Sweep throughput (cells per minute) at 1 and 2 workers on this machine, and a paper-scale estimate.

One small grid (TSP and linreg x `--seeds` seeds, the default embedded model, no call cache) runs through
`opro sweep` as a user would start it, once per configuration, each into a fresh results tree:
  local x1   one worker; its embedded model gets every core (threads = cores)
  local x2   two workers; each model gets cores / 2 threads
  ray x2     a local Ray instance (num_cpus=2), one CPU per cell
The table shows wall time, cells per minute and the ratio to `local x1`, all measured in this one run.
Then the paper-scale estimate: the output tokens per proposal measured here, scaled to a paper-sized grid
on a 10-node cluster sharing a vLLM server (the assumptions are printed with the result).

Run from the repository root:  python -m benchmarks.sweep_scaling [--seeds 3] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

SWEEP = """
[set]
"loop.steps" = {steps}
"loop.candidates_per_step" = 4
"loop.max_tokens" = 96
"loop.resample_rounds" = 0
"loop.stop_at_optimum" = false
"llm.cache" = false
[axes]
task = ["tsp", "linreg"]
seed = "0-{last}"
"""

CONFIGS = [("local x1", ["--backend", "local", "--workers", "1"]),
           ("local x2", ["--backend", "local", "--workers", "2"]),
           ("ray x2", ["--backend", "ray", "--workers", "2"])]


def run_config(folder: Path, label: str, args: list[str], steps: int, seeds: int) -> dict:
    path = folder / "grid.toml"
    path.write_text(f'results = "{folder}"\n' + SWEEP.format(steps=steps, last=seeds - 1))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "opro.cli", "sweep", str(path), "--quiet", *args],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{label} failed: {done.stderr[-2000:]}")
    parent = folder / "sweeps" / "grid"
    steps_frame = pd.concat([pd.read_csv(p) for p in parent.glob("*/steps.csv")])
    steps_frame = steps_frame[steps_frame["step"] > 0]  # step 0: the random starts, no LLM call
    cells = len(list(parent.glob("*/summary.json")))
    proposals = int(steps_frame["n_candidates"].sum())
    return {"config": label, "cells": cells, "wall_s": wall, "cells_per_min": 60 * cells / wall,
            "completion_tokens": int(steps_frame["completion_tokens"].sum()),
            "prompt_tokens": int(steps_frame["prompt_tokens"].sum()), "proposals": proposals}


#: The paper-scale grid of the estimate: Table 3 (TSP n = 10/15/20/50 x 5 instances) and Table 2 (linreg,
#: 5 lines) with 5 seeds each, plus a temperature x meta-prompt-order ablation on TSP n = 10 (5 seeds).
PAPER_GRID = {"tsp": 4 * 5 * 5 + 3 * 3 * 5, "linreg": 5 * 5}
STEPS, PROPOSALS = 500, 8  # the paper's longest runs, 8 proposals per step (§3); early stops only help
#: Assumed per-proposal tokens at paper scale (prompt: 10-20 solutions shown; TSP n = 50 traces are long).
TOKENS = {"tsp": {"prompt": 1500, "completion": 200}, "linreg": {"prompt": 700, "completion": 30}}
#: Assumed shared server: Llama-3.1-8B-Instruct on vLLM. Third-party figures: ~12,500 output tok/s peak on
#: one H100 (batched), ~75 tok/s for a single sequence on an A100; we take 5,000 tok/s per H100 replica at
#: OPRO's concurrency and 60 tok/s per sequence under load.
SERVER_TOKENS_PER_S, SEQUENCE_TOKENS_PER_S = 5000.0, 60.0
NODES, SLOTS_PER_NODE = 10, 16  # cells at once per node (a cell is light: the LLM work is on the server)


def paper_estimate(replicas: int) -> dict:
    cells = sum(PAPER_GRID.values())
    output = sum(PAPER_GRID[t] * STEPS * PROPOSALS * TOKENS[t]["completion"] for t in PAPER_GRID)
    prompt = sum(PAPER_GRID[t] * STEPS * TOKENS[t]["prompt"] for t in PAPER_GRID)  # prefix-cached per step
    generation_s = output / (SERVER_TOKENS_PER_S * replicas)
    waves = math.ceil(cells / (NODES * SLOTS_PER_NODE))
    latency_s = waves * STEPS * TOKENS["tsp"]["completion"] / SEQUENCE_TOKENS_PER_S  # steps are sequential
    return {"replicas": replicas, "cells": cells, "output_tokens_M": output / 1e6, "prompt_tokens_M": prompt / 1e6,
            "generation_h": generation_s / 3600, "latency_floor_h": latency_s / 3600,
            "estimate_h": max(generation_s, latency_s) / 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per task (cells = 2 x seeds).")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", choices=[c[0] for c in CONFIGS], action="append")
    args = parser.parse_args()
    rows = []
    for label, extra in CONFIGS:
        if args.only and label not in args.only:
            continue
        with tempfile.TemporaryDirectory() as folder:
            rows.append(run_config(Path(folder), label, extra, args.steps, args.seeds))
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}),
                  flush=True)
    table = pd.DataFrame(rows)
    table["vs_local_x1"] = table["cells_per_min"] / table["cells_per_min"].iloc[0]
    print(table.round(2).to_string(index=False))
    per_proposal = table["completion_tokens"].sum() / table["proposals"].sum()
    print(f"\nmeasured here: {per_proposal:.0f} completion tokens per proposal (max_tokens 96, default model)")
    print("\npaper-scale estimate (10 nodes x 16 cells, shared vLLM; assumptions in this file):")
    print(pd.DataFrame([paper_estimate(r) for r in (1, 2, 4, 8)]).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
