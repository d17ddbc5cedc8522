"""The same seed gives the same run, whatever the machine's load: the embedded model's default thread count is
fixed by the machine's cores (a count timed at start-up changed llama.cpp's samples with the load).

Two real runs of one seed on the default model, the second beside a busy process (one per core but one, as
benchmarks/threads_under_load.py loads the machine): byte-identical candidates.csv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.rundir_tools import opro

BUSY = "while True: sum(i * i for i in range(10_000))"
ARGS = ["--task", "linreg", "--seed", "0", "--steps", "1", "--candidates", "1", "--max-tokens", "16", "--no-cache",
        "--quiet", "--set", "loop.resample_rounds=0", "--set", "loop.stop_at_optimum=false",
        "--set", "loop.num_initial=2"]


def run(root: Path, run_id: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "opro.cli", "run", *ARGS, "--results", str(root), "--run-id",
                           run_id], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return root / "linreg" / run_id


def test_one_seed_gives_byte_identical_candidates_on_an_idle_and_a_busy_machine(tmp_path, default_model):
    idle = run(tmp_path, "idle")
    neighbours = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(max(1, (os.cpu_count() or 1) - 1))]
    try:
        busy = run(tmp_path, "busy")
    finally:
        for neighbour in neighbours:
            neighbour.kill()
            neighbour.wait()
    assert (idle / "candidates.csv").read_bytes() == (busy / "candidates.csv").read_bytes()
    for folder in (idle, busy):
        optimizer = json.loads((folder / "config.json").read_text())["optimizer"]
        assert optimizer["threads"] == os.cpu_count() and "thread_probe" not in optimizer


def test_threads_take_a_count_or_auto(tmp_path):
    assert opro("run", "--task", "linreg", "--threads", "auto", "--dry-run").code == 0
    for refused in (["--threads", "x"], ["--threads", "0"], ["--set", "optimizer.threads=fast"]):
        done = opro("run", "--task", "linreg", *refused, "--dry-run")
        assert done.code == 2 and len(done.lines) == 1 and "threads must be" in done.lines[0], done
