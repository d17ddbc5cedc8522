"""A problem of the user's own (examples/knapsack/), outside opro/, through the command line and the Python
API with the embedded model (SmolLM2-135M): run, resume, compare, report, RL export, sweep plan, read-back."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import opro
from tests.cli_inprocess import invoke

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TINY = ["--candidates", "2", "--max-tokens", "30", "--threads", "1", "--quiet", "--optimizer", "llamacpp:smollm2",
        "--set", "problem.n_items=6", "--set", "loop.resample_rounds=0"]


@pytest.fixture
def project(user_folder) -> Path:
    """A user's folder holding a copy of the example, as the working directory."""
    return user_folder("knapsack")


def test_nothing_under_opro_names_the_examples():
    for path in (REPO / "opro").rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".txt"):
            assert not re.search(r"knapsack|custom_prompt", path.read_text(), re.IGNORECASE), path


def test_knapsack_through_the_command_line(project, default_model, tmp_path):
    first = invoke(["run", "--task", "knapsack.toml", "--steps", "1", "--run-id", "k0", "--seed", "0", *TINY],
                   project)
    assert first.code == 0, first
    run_dir = project / "results" / "knapsack" / "k0"
    resumed = invoke(["run", "--resume", str(run_dir), "--steps", "2", "--quiet"], project)
    assert resumed.code == 0, resumed
    run = opro.load(run_dir)
    assert run.steps["step"].tolist() == [0, 1, 2]
    assert run.config["problem"] == "knapsack:Knapsack" and run.summary["optimum"] == run.record["instance"]["optimum"]
    assert run.summary["baselines"]["greedy_by_ratio"] <= run.summary["optimum"]
    best = run.best_solution  # decoded by the user's class: a tuple of item numbers within capacity
    assert isinstance(best, tuple) and all(isinstance(i, int) for i in best)

    compared = invoke(["compare", str(project / "results"), "--out", str(tmp_path / "cmp"), "--no-plot"], project)
    assert compared.code == 0, compared
    assert "knapsack" in (tmp_path / "cmp" / "runs.csv").read_text()
    reported = invoke(["report", str(run_dir), "--out", str(tmp_path / "report.html")], project)
    assert reported.code == 0, reported
    assert "knapsack" in (tmp_path / "report.html").read_text()
    from opro.plots import score_axis

    runs = pd.DataFrame({"problem": ["knapsack:Knapsack"], "minimize": [False]})
    assert score_axis(runs) == ("total value", 1.0)  # the problem's SCORE_LABEL labels the report's axes
    exported = invoke(["rl", "export", str(run_dir), "--format", "sft", "--out", str(tmp_path / "sft.jsonl")], project)
    assert exported.code == 0, exported
    assert "<items>" in (tmp_path / "sft.jsonl").read_text()  # the best answer written as the problem asks
    seeds = invoke(["run", "--task", "knapsack.toml", "--seeds", "0-2", "--dry-run"], project)
    assert seeds.code == 0 and "ok: 3 run(s) of knapsack.toml (knapsack:Knapsack" in seeds.stdout, seeds
    planned = invoke(["sweep", "sweep.toml", "--dry-run"], project)
    assert planned.code == 0 and planned.stdout.count("capacity_ratio") >= 4, planned


def test_knapsack_through_the_python_api(project, default_model):
    from knapsack import Knapsack

    run = opro.optimize(Knapsack(n_items=6), optimizer="llamacpp:smollm2", template="knapsack.meta.txt", steps=1,
                        candidates=2, max_tokens=30, threads=1, loop__resample_rounds=0, run_id="api0")
    assert run.path == project / "results" / "knapsack" / "api0"
    candidates = run.candidates
    assert candidates["valid"].dtype == bool and candidates["score"].dtype == float
    assert candidates["step"].dtype == "Int64" and pd.api.types.is_string_dtype(candidates["solution"])
    assert run.best_score == candidates.loc[candidates["valid"], "score"].max()
    assert opro.load(project / "results").runs[0].path == run.path  # a folder of runs reads as a RunGroup
    more = opro.resume(run.path, steps=2)
    assert more.steps["step"].tolist() == [0, 1, 2]
    assert more.config["problem"] == "knapsack:Knapsack"  # recorded as module:Class, so it can be resumed


def test_api_notebook_runs_end_to_end(default_model, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "notebooks" / "api.ipynb", as_version=4)
    params = notebook.cells[1]
    assert "parameters" in params.metadata["tags"]
    params.source = (f"from pathlib import Path\nRESULTS = Path({str(tmp_path / 'results')!r})\n"
                     f"OUT = Path({str(tmp_path)!r})")
    NotebookClient(notebook, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "api-curve.png").stat().st_size > 0
    run = opro.load(tmp_path / "results" / "tsp" / "api-notebook")
    assert run.steps["step"].tolist() == [0, 1]
