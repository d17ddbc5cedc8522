"""A run folder has one writer at a time: run, resume and the group forms hold an exclusive lock on it.

Two real `opro` processes: the first waits inside a step on a scripted OpenAI-compatible server (its gate
closed), the second is refused with one line naming the first's pid, exit 2, and changes nothing. Once the
first is done, the run resumes as usual.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opro.config import build_config
from opro.runner import resume_run, start_run
from tests.fake_openai import FakeOpenAI
from tests.rundir_tools import snapshot

COMMON = ["--quiet", "--no-cache", "--candidates", "2", "--set", "loop.stop_at_optimum=false"]


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_process_left():
    """A test that fails midway leaves no `opro` process behind."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.communicate()


def opro(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    STARTED.append(subprocess.Popen([sys.executable, "-m", "opro.cli", "run", *args], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return STARTED[-1]


def finished(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def steps(run: Path) -> list[int]:
    with open(run / "steps.csv") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def wait_inside_a_step(server: FakeOpenAI, holder: subprocess.Popen) -> None:
    """Until `holder` waits on the server's closed gate (it holds its locks then)."""
    while not server.waiting.wait(0.2):
        assert holder.poll() is None, holder.communicate()


def test_a_second_resume_of_a_run_being_resumed_is_refused_and_changes_nothing(tmp_path):
    with FakeOpenAI() as server:
        settings = {"optimizer.spec": "openai:m", "optimizer.base_url": server.url, "loop.steps": 0,
                    "results_root": str(tmp_path), "llm.cache": False, "loop.candidates_per_step": 2}
        run = start_run(build_config("linreg", settings), "r")[0].path
        server.gate.clear()
        first = opro("--resume", str(run), "--steps", "2")
        wait_inside_a_step(server, first)
        before = snapshot(run)
        code, output = finished(opro("--resume", str(run), "--steps", "4"), timeout=60)  # not waiting: refused
        assert code == 2 and output.strip() == (f"opro: error: run {run} is being run by another process (pid "
                                                f"{first.pid}); wait for it to finish or stop it")
        assert snapshot(run) == before
        server.gate.set()
        assert finished(first)[0] == 0
        resume_run(run, {"steps": 3})  # the lock went with its holder
        assert steps(run) == [0, 1, 2, 3]


def test_a_group_and_each_of_its_runs_have_one_writer(tmp_path):
    with FakeOpenAI() as server:
        server.gate.clear()
        first = opro("--task", "linreg", "--optimizer", "openai:m", "--base-url", server.url, "--steps", "1",
                     "--seeds", "0-1", "--results", str(tmp_path), "--run-id", "g", *COMMON)
        wait_inside_a_step(server, first)
        group = tmp_path / "linreg" / "g"
        before = snapshot(group)
        for folder, label in ((group, "run group"), (group / "seed0", "run")):
            code, output = finished(opro("--resume", str(folder), "--steps", "2"), timeout=60)
            assert code == 2 and output.strip().startswith(f"opro: error: {label} {folder} is being run by "
                                                           f"another process (pid {first.pid})"), output
        assert snapshot(group) == before
        server.gate.set()
        assert finished(first)[0] == 0
        assert steps(group / "seed0") == steps(group / "seed1") == [0, 1]
