"""Time limits that return on time: the wall-clock bounds the tests deliberately leave out (a loaded
machine would make them flaky there). Each row is one measured call against its bound:

- the TSP heuristics on 600 random nodes with `time_limit=0.2` (bound 10 s each);
- `opro baselines` on a 2000-node TSPLIB file with `--time-limit 2` (bound 60 s in all, model-free);
- `openai:` retries against a proxy that answers HTTP 500 to everything, 3 attempts with a 0.01 s backoff
  (bound 5 s; the proxy needs no upstream).

Run from the repository root:  .venv/bin/python -m benchmarks.time_limits
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from opro.errors import OproError
from opro.llm import Request
from opro.llm.openai_backend import OpenAILLM
from opro.solvers import farthest_insertion, local_search, two_opt
from opro.tsplib import distance_matrix
from tests.fault_proxy import FaultProxy
from tests.test_solver_limits import tsplib_text


def heuristics() -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(0)
    d = distance_matrix(rng.integers(0, 10_000, size=(600, 2)).astype(float), "EUC")
    rows = []
    for solve in (farthest_insertion, two_opt, local_search):
        started = time.perf_counter()
        solve(d, time_limit=0.2)
        rows.append((f"{solve.__name__}, 600 nodes, time_limit 0.2 s", time.perf_counter() - started, 10.0))
    return rows


def baselines_2000() -> tuple[str, float, float]:
    coords = np.random.default_rng(1).integers(0, 100_000, size=(2000, 2)).astype(float)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "r2000.tsp").write_text(tsplib_text(coords))
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "opro.cli", "baselines", "--instance", "r2000.tsp",
                               "--time-limit", "2", "--json"], cwd=tmp, capture_output=True, text=True,
                              env={**os.environ, "OPRO_CACHE_DIR": tmp})
        seconds = time.perf_counter() - started
    assert done.returncode == 0 and json.loads(done.stdout)["n"] == 2000, done.stderr
    return "opro baselines, 2000 nodes, --time-limit 2", seconds, 60.0


def failing_server() -> tuple[str, float, float]:
    with FaultProxy("http://127.0.0.1:9", fault_rate=1.0, faults=("500",)) as proxy:
        llm = OpenAILLM("m", base_url=proxy.url + "/v1", api_key="unused", max_attempts=3, backoff_base=0.01,
                        backoff_cap=0.05)
        started = time.perf_counter()
        try:
            llm.generate([Request(messages=({"role": "user", "content": "hi"},), max_tokens=4, seed=0)])
        except OproError:
            pass
        seconds = time.perf_counter() - started
        llm.close()
    return "openai: 3 attempts at HTTP 500, backoff 0.01 s", seconds, 5.0


def main() -> int:
    rows = [*heuristics(), baselines_2000(), failing_server()]
    print(f"{'call':<50} {'seconds':>8} {'bound':>6}  within")
    for name, seconds, bound in rows:
        print(f"{name:<50} {seconds:>8.2f} {bound:>6.0f}  {'yes' if seconds < bound else 'NO'}")
    return 0 if all(seconds < bound for _, seconds, bound in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
