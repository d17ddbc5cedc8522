"""Resumes that start the embedded model (SmolLM2 on llama.cpp, one thread): errors after it started shut it
down and exit; a group with a repeat that never started resumes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from opro.results import CANDIDATE_COLUMNS, STEP_COLUMNS
from tests.rundir_tools import make_run

pytestmark = pytest.mark.slow


def opro(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_an_error_right_after_the_model_started_exits_2_without_hanging(tmp_path, default_model):
    """The model is loaded (a step is left), then writing config.json fails before any request: the server,
    destroyed before its task loop ran, used to wait for that loop forever (about every second try)."""
    made = make_run(tmp_path / "made")
    for attempt in range(4):
        run = tmp_path / f"run{attempt}"
        shutil.copytree(made, run)
        (run / "config.json.tmp").mkdir()  # config.json cannot be rewritten for the new step limit
        done = opro("run", "--resume", str(run), "--steps", "3", "--quiet", timeout=240)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [f"opro: error: cannot write {run / 'config.json'}: Is a directory"]
        assert (run / "candidates.csv").read_bytes() == (made / "candidates.csv").read_bytes()


def test_a_group_resumes_when_a_repeat_never_started(tmp_path, default_model):
    """A group killed right after its first repeat finished: the second one has no folder, or only what
    RunDir.create writes first. Resuming starts it with the group's settings (not `"steps": null`)."""
    base = ["--task", "linreg", "--steps", "0", "--threads", "1", "--results", str(tmp_path), "--quiet"]
    done = opro("run", *base, "--seeds", "0-2", "--run-id", "g")
    assert done.returncode == 0, done.stderr
    group = tmp_path / "linreg" / "g"
    shutil.rmtree(group / "seed1")
    unstarted = group / "seed2"
    config = (unstarted / "config.json").read_bytes()
    shutil.rmtree(unstarted)
    unstarted.mkdir()  # killed before its first state.json
    (unstarted / "config.json").write_bytes(config)
    (unstarted / "candidates.csv").write_text(",".join(CANDIDATE_COLUMNS) + "\n")
    (unstarted / "steps.csv").write_text(",".join(STEP_COLUMNS) + "\n")
    (unstarted / "llm_calls.jsonl").write_text("")
    for _ in range(2):  # and every later resume works too
        done = opro("run", "--resume", str(group), "--quiet")
        assert done.returncode == 0, done.stderr
        for seed in ("seed0", "seed1", "seed2"):
            record = json.loads((group / seed / "config.json").read_text())
            assert record["config"]["loop"]["steps"] == 0
            assert pd.read_csv(group / seed / "steps.csv")["step"].tolist() == [0]
    assert json.loads((group / "seed2" / "config.json").read_text())["config"]["seed"] == 2


def test_resume_continues_with_a_real_step(tmp_path: Path, default_model):
    """The checks before the model do not stand in the way of a resume that samples."""
    made = make_run(tmp_path, steps=1, **{"loop.max_tokens": 24})
    done = opro("run", "--resume", str(made), "--steps", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(made / "steps.csv")["step"].tolist() == [0, 1, 2]
    assert json.loads((made / "config.json").read_text())["config"]["loop"]["steps"] == 2
    assert json.loads((made / "state.json").read_text())["last_step"] == 2
