"""Real runs with the embedded default model (SmolLM2-135M-Instruct on llama.cpp)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.artifacts import assert_plot

# Tiny settings: a few short proposals per step keep each run to seconds on 2 cores. No call cache: these
# tests are about what the model generates.
# One llama.cpp thread: the thread count timed at start-up could differ between two runs, and with it the samples.
TINY = ["--steps", "2", "--candidates", "4", "--max-tokens", "48", "--set", "loop.resample_rounds=1", "--quiet",
        "--threads", "1", "--no-cache"]


def opro_run(results: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "opro.cli", "run", "--results", str(results), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def only_run(results: Path, task: str) -> Path:
    (path,) = (results / task).iterdir()
    return path


@pytest.mark.parametrize("task", ["tsp", pytest.param("linreg", marks=pytest.mark.slow)])
def test_short_real_run_writes_the_run_directory(tmp_path, default_model, task):
    done = opro_run(tmp_path, "--task", task, "--seed", "1", *TINY, "--set", "optimizer.cache_prompt=true")
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path, task)
    assert {p.name for p in run.iterdir()} >= {"config.json", "candidates.csv", "steps.csv", "llm_calls.jsonl",
                                               "summary.json", "state.json"}
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["seed"] == 1 and config["versions"]["xllamacpp"]
    assert config["optimizer"]["model_sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert "{history}" in config["templates"]["meta"]
    candidates = pd.read_csv(run / "candidates.csv")
    steps = pd.read_csv(run / "steps.csv")
    summary = json.loads((run / "summary.json").read_text())
    assert steps["step"].iloc[0] == 0 and steps["step"].is_monotonic_increasing
    assert summary["steps_run"] == steps["step"].iloc[-1]
    assert (steps.loc[steps["step"] > 0, "completion_tokens"] > 0).all()
    proposals = candidates[candidates["step"] > 0]
    assert len(proposals) >= 4 * summary["steps_run"]
    assert (proposals["invalid_reason"].fillna("") != "").sum() == (~proposals["valid"]).sum()
    calls = [json.loads(line) for line in (run / "llm_calls.jsonl").read_text().splitlines()]
    assert calls[0]["messages"][0]["content"].startswith(("You are given a list of points", "Now you will help"))
    assert summary["optimum"] is not None and summary["best_score"] >= summary["optimum"] - 1e-6
    assert "results:" in done.stdout


@pytest.mark.slow
def test_same_seed_same_candidates(tmp_path, default_model):
    short = [*TINY, "--candidates", "3", "--max-tokens", "32"]  # the property holds at any length
    for name in ("a", "b"):
        assert opro_run(tmp_path / name, "--task", "tsp", "--seed", "5", *short).returncode == 0
    first, second = (only_run(tmp_path / name, "tsp") for name in ("a", "b"))
    assert (first / "candidates.csv").read_bytes() == (second / "candidates.csv").read_bytes()
    texts = [[o["text"] for c in map(json.loads, (run / "llm_calls.jsonl").read_text().splitlines())
              for o in c["outputs"]] for run in (first, second)]
    assert texts[0] == texts[1] and len(texts[0]) >= 3
    assert opro_run(tmp_path / "c", "--task", "tsp", "--seed", "6", *short, "--steps", "1").returncode == 0
    other = only_run(tmp_path / "c", "tsp")
    assert (other / "candidates.csv").read_bytes() != (first / "candidates.csv").read_bytes()


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, default_model):
    # One thread: both runs alike. Three steps of three short proposals: the property holds at any length.
    args = ["--task", "linreg", "--seed", "2", "--steps", "3", "--candidates", "3", "--max-tokens", "32", "--quiet",
            "--threads", "1", "--set", "loop.stop_at_optimum=false", "--no-cache"]
    assert opro_run(tmp_path / "whole", *args).returncode == 0
    whole = only_run(tmp_path / "whole", "linreg")

    command = [sys.executable, "-m", "opro.cli", "run", "--results", str(tmp_path / "cut"), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 300
    steps_file = None
    while time.time() < deadline:
        found = list((tmp_path / "cut").glob("linreg/*/steps.csv"))
        if found and len(found[0].read_text().splitlines()) >= 3:  # header, step 0, step 1
            steps_file = found[0]
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert steps_file is not None, "the run never reached step 1"
    cut = steps_file.parent
    assert not (cut / "summary.json").exists()

    done = subprocess.run([sys.executable, "-m", "opro.cli", "run", "--resume", str(cut), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    steps = pd.read_csv(cut / "steps.csv")
    assert steps["step"].tolist() == list(range(4))
    assert (cut / "candidates.csv").read_bytes() == (whole / "candidates.csv").read_bytes()
    assert json.loads((cut / "summary.json").read_text())["steps_run"] == 3


@pytest.mark.slow
def test_a_group_of_repeats_resumes_and_compares(tmp_path, default_model):
    """--seeds x --instances: one run directory per repeat under one parent; a group cut short by its
    step limit resumes with a larger one; `opro compare` reads the parent."""
    small = ["--task", "tsp", "--n", "5", "--candidates", "2", "--max-tokens", "40", "--set",
             "loop.resample_rounds=0", "--set", "loop.stop_at_optimum=false", "--quiet", "--no-cache", "--threads", "1",
             "--set", "optimizer.cache_prompt=true"]  # no bytes compared: the KV cache may be reused
    first = opro_run(tmp_path, *small, "--steps", "1", "--seeds", "0-1", "--instances", "2", "--run-id", "grid")
    assert first.returncode == 0, first.stderr
    parent = tmp_path / "tsp" / "grid"
    group = json.loads((parent / "group.json").read_text())
    assert group["runs"] == ["inst0-seed0", "inst0-seed1", "inst1-seed0", "inst1-seed1"]
    configs = {r: json.loads((parent / r / "config.json").read_text())["config"] for r in group["runs"]}
    assert {(c["seed"], c["problem_settings"]["seed"]) for c in configs.values()} == {(0, 0), (1, 0), (0, 1), (1, 1)}

    done = subprocess.run([sys.executable, "-m", "opro.cli", "run", "--resume", str(parent), "--steps", "2",
                           "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for run in group["runs"]:
        steps = pd.read_csv(parent / run / "steps.csv")
        assert list(steps["step"]) == [0, 1, 2]

    compared = subprocess.run([sys.executable, "-m", "opro.cli", "compare", str(parent), "--out",
                               str(tmp_path / "cmp")], capture_output=True, text=True, timeout=600)
    assert compared.returncode == 0, compared.stderr
    runs = pd.read_csv(tmp_path / "cmp" / "runs.csv")
    assert len(runs) == 4
    table = pd.read_csv(tmp_path / "cmp" / "table.csv")
    assert {"nearest_neighbor", "farthest_insertion"} <= set(table["method"])
    plots = list((tmp_path / "cmp").glob("best_so_far-*.png"))
    assert plots
    for plot in plots:
        assert_plot(plot)
