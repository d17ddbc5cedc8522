"""`opro run --optimizer openai:... --base-url ...` end to end against a real OpenAI-compatible server
(xllamacpp's llama.cpp server on 127.0.0.1 with the default model), through the official client.

Covers: a run through the fault-injecting proxy equals a fault-free run; budgets stop a run at a step
boundary and `--resume` with a larger budget finishes it exactly like an uninterrupted run; the call cache
replays a rerun without generating; the API key never reaches the run directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fault_proxy import FaultProxy
from tests.llama_server import start_server

ARGS = ["--task", "linreg", "--seed", "3", "--candidates", "4", "--max-tokens", "40", "--quiet",
        "--set", "loop.stop_at_optimum=false", "--set", "loop.resample_rounds=1"]


@pytest.fixture(scope="module")
def base_url(default_model):
    server = start_server(default_model, parallel=1)  # held by the generator: the server lives while it does
    yield server.listening_address + "/v1"


def opro(tmp: Path, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPRO_LLM_CACHE": str(cache or tmp / "cache.sqlite")}
    env.pop("OPENAI_API_KEY", None)
    where = [] if "--resume" in args else ["--results", str(tmp / "results")]  # a run directory knows its place
    command = [sys.executable, "-m", "opro.cli", "run", *where, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def run_dir(tmp: Path, run_id: str) -> Path:
    return tmp / "results" / "linreg" / run_id


@pytest.mark.slow
def test_a_run_with_30_percent_faults_equals_a_fault_free_run(tmp_path, base_url):
    # A retried request must not reuse the KV cache its first attempt left: a different prompt batching
    # changes the logits in the last bits, and a temperature-1 sample can then flip. Uncached, a request
    # takes about 2.3 s on one thread here. One request at a time: the server has one slot, and a queued
    # request's wait would count against its timeout. A stall costs the client's timeout (15 s, several times
    # a request here); a request slower than that on a loaded machine is retried with the same answer.
    common = [*ARGS, "--steps", "2", "--optimizer", "openai:smollm2", "--no-cache", "--concurrency", "1",
              "--set", "optimizer.sampling={cache_prompt=false}", "--set", "loop.resample_rounds=0"]
    clean = opro(tmp_path, *common, "--base-url", base_url, "--run-id", "clean")
    assert clean.returncode == 0, clean.stderr
    with FaultProxy(base_url.removesuffix("/v1"), fault_rate=0.3, seed=1, stall_seconds=16.0) as proxy:
        faulty = opro(tmp_path, *common, "--base-url", proxy.url + "/v1", "--run-id", "faulty",
                      "--set", "optimizer.timeout=15", "--set", "optimizer.max_attempts=10")
    assert faulty.returncode == 0, faulty.stderr
    assert sum(proxy.injected.values()) >= 2, proxy.injected
    clean_csv = (run_dir(tmp_path, "clean") / "candidates.csv").read_bytes()
    assert (run_dir(tmp_path, "faulty") / "candidates.csv").read_bytes() == clean_csv
    candidates = pd.read_csv(run_dir(tmp_path, "clean") / "candidates.csv")
    assert (candidates.loc[candidates["step"] > 0, "prompt_tokens"] > 0).all()


@pytest.mark.slow
def test_budget_stops_at_a_step_boundary_and_resume_finishes_like_one_run(tmp_path, base_url):
    common = [*ARGS, "--steps", "3", "--optimizer", "openai:smollm2", "--base-url", base_url]
    whole = opro(tmp_path, *common, "--run-id", "whole")
    assert whole.returncode == 0, whole.stderr
    steps = pd.read_csv(run_dir(tmp_path, "whole") / "steps.csv")
    assert steps["n_cached"].sum() == 0
    assert (steps["cost_usd"] == 0).all()  # a loopback server costs nothing
    first_step = int(steps.loc[1, "prompt_tokens"] + steps.loc[1, "completion_tokens"])

    # The same run under a budget that the first step uses up: it stops after step 1, resumable.
    cut = opro(tmp_path, *common, "--run-id", "cut", "--max-tokens-total", str(first_step))
    assert cut.returncode == 0, cut.stderr
    summary = json.loads((run_dir(tmp_path, "cut") / "summary.json").read_text())
    assert summary["stop_reason"] == "budget" and summary["steps_run"] == 1
    assert summary["n_cached"] == summary["n_candidates"]  # replayed from the cache, no generation

    done = opro(tmp_path, "--resume", str(run_dir(tmp_path, "cut")), "--max-tokens-total", "100000000", "--quiet")
    assert done.returncode == 0, done.stderr
    resumed = run_dir(tmp_path, "cut")
    assert json.loads((resumed / "summary.json").read_text())["steps_run"] == 3
    assert (resumed / "candidates.csv").read_bytes() == (run_dir(tmp_path, "whole") / "candidates.csv").read_bytes()
    whole_summary = json.loads((run_dir(tmp_path, "whole") / "summary.json").read_text())
    for key in ("prompt_tokens", "completion_tokens", "cost_usd"):
        assert whole_summary[key] == json.loads((resumed / "summary.json").read_text())[key]


def test_the_api_key_never_reaches_the_run_directory(tmp_path, base_url):
    secret = "sk-test-secret-7f3a9b"
    done = opro(tmp_path, *ARGS, "--steps", "1", "--optimizer", "openai:smollm2", "--base-url", base_url,
                "--api-key", secret, "--run-id", "keyed", "--no-cache")
    assert done.returncode == 0, done.stderr
    for path in run_dir(tmp_path, "keyed").iterdir():
        assert secret not in path.read_text(), path.name
    assert secret not in done.stdout + done.stderr
    config = json.loads((run_dir(tmp_path, "keyed") / "config.json").read_text())
    assert config["optimizer"]["base_url"] == base_url and config["config"]["optimizer"]["spec"] == "openai:smollm2"


def test_an_unreachable_server_is_one_clear_line(tmp_path):
    done = opro(tmp_path, *ARGS, "--steps", "1", "--optimizer", "openai:m", "--base-url", "http://127.0.0.1:9/v1",
                "--set", "optimizer.max_attempts=2", "--set", "optimizer.timeout=1", "--no-cache")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "openai:m: failed after 2 attempts" in lines[0], done.stderr
