"""The embedded model's thread count under load: the default run (`opro run --task tsp`) with the default
thread count (the machine's cores, fixed so that a seed gives the same samples whatever the load) and with
`--threads auto` (timed at start-up: all cores or one fewer), on idle cores and with one busy process per core
but one.

    .venv/bin/python -m benchmarks.threads_under_load            # --steps 1; a few minutes on 2 idle cores

Each configuration is one run of the preset (seed 0, no call cache) in a fresh process; the busy processes
are plain Python loops, one per core but one, started before and stopped after the run. Prints the wall
time of each configuration and the ratios: loaded / idle (goal <= 2) of each, and auto / default on idle
cores (goal <= 1.3: the probe's cost). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT, AUTO = "default (all cores)", "--threads auto (timed)"


def spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def one_run(results: Path, steps: int, threads: str | None) -> tuple[float, dict]:
    command = [sys.executable, "-m", "opro.cli", "run", "--task", "tsp", "--seed", "0", "--steps", str(steps),
               "--no-cache", "--quiet", "--results", str(results)]
    if threads:
        command += ["--threads", threads]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    run = max((results / "tsp").iterdir(), key=lambda p: p.stat().st_mtime)
    return seconds, json.loads((run / "config.json").read_text())["optimizer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for load in (0, cores - 1):
            stop = multiprocessing.Event()
            workers = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(load)]
            for worker in workers:
                worker.start()
            try:
                for label, threads in ((DEFAULT, None), (AUTO, "auto")):
                    seconds, described = one_run(Path(folder) / f"{load}-{threads}", args.steps, threads)
                    rows.append((load, label, seconds, described["threads"], described.get("thread_probe")))
            finally:
                stop.set()
                for worker in workers:
                    worker.join()
    print("| busy processes | threads setting | wall s | threads used | probe (s per count) |")
    print("| ---: | --- | ---: | ---: | --- |")
    for load, label, seconds, threads, probe in rows:
        print(f"| {load} | {label} | {seconds:.1f} | {threads} | {probe or ''} |")
    wall = {(load, label): seconds for load, label, seconds, _, _ in rows}
    print(f"default, loaded / idle: {wall[cores - 1, DEFAULT] / wall[0, DEFAULT]:.2f} (goal <= 2)")
    print(f"--threads auto, loaded / idle: {wall[cores - 1, AUTO] / wall[0, AUTO]:.2f} (goal <= 2)")
    print(f"idle, auto / default: {wall[0, AUTO] / wall[0, DEFAULT]:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
