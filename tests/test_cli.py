"""Bad input gets one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from opro.config import build_config
from tests.cli_inprocess import invoke


def opro(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--task", "nope"], "unknown task 'nope'"),
        (["run", "--steps", "-1"], "loop.steps must be in [0, "),
        (["run", "--steps", "many"], "'many' is not a valid integer"),
        (["run", "--temperature", "9"], "loop.temperature must be in [0, 5]"),
        (["run", "--instance", "/no/such.tsp"], "instance file not found"),
        (["run", "--set", "loop.stepz=3"], "unknown setting 'loop.stepz'"),
        (["run", "--set", "loop.steps=\"x\""], "loop.steps must be int"),
        (["run", "--set", "problem.coord_range=1.5"], "problem.coord_range must be int"),
        (["run", "--task", "linreg", "--set", "problem.bogus=1"], "unknown setting 'problem.bogus'"),
        (["run", "--optimizer", "nosuch:model"], "unknown LLM backend 'nosuch'"),
        (["run", "--optimizer", "llamacpp:/no/model.gguf"], "GGUF model not found"),
        (["run", "--resume", "/no/run"], "no run directory"),
        (["run", "--resume", ".", "--seed", "3"], "only --steps, the budgets and the LLMs' connection"),
        (["run", "--bogus"], "No such option"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    done = invoke(args, tmp_path)  # in-process; the real process's exit code and stderr: the test below
    assert done.escaped is None, done.escaped
    assert done.refused_in_one_line, (done.code, done.stderr)
    assert message in done.stderr


def test_a_real_process_exits_2_with_one_line():
    done = opro("run", "--task", "nope")
    assert done.returncode == 2 and done.stderr.startswith("opro: error: unknown task 'nope'")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_malformed_tsplib_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.tsp"
    bad.write_text("NAME : bad\nTYPE : TSP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n"
                   "1 0 0\n2 oops 1\n3 1 1\nEOF\n")
    done = invoke(["run", "--instance", str(bad)], tmp_path)
    assert done.escaped is None and done.refused_in_one_line and "line 7" in done.stderr


def test_bad_task_file_is_one_line(tmp_path):
    (tmp_path / "t.toml").write_text("problem = [")
    done = invoke(["run", "--task", str(tmp_path / "t.toml")], tmp_path)
    assert done.refused_in_one_line and "invalid TOML" in done.stderr


def test_tasks_lists_presets(tmp_path):
    done = invoke(["tasks"], tmp_path)
    assert done.code == 0
    assert {"tsp", "linreg", "tsp-paper", "linreg-paper"} <= {line.split()[0] for line in done.stdout.splitlines()}


def test_presets_resolve_with_paper_defaults():
    tsp, linreg = build_config("tsp"), build_config("linreg")
    assert (tsp.loop.candidates_per_step, tsp.loop.temperature, tsp.loop.num_initial) == (8, 1.0, 5)
    assert (tsp.loop.top_k, linreg.loop.top_k) == (10, 20)
    assert linreg.problem_settings["w_true"] == 15.0 and linreg.problem_settings["b_true"] == 14.0
    overridden = build_config("tsp", {"problem.n": 12, "seed": 4, "loop.steps": 3})
    assert (overridden.problem_settings["n"], overridden.seed, overridden.loop.steps) == (12, 4, 3)
