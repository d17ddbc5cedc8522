"""`opro sweep`: planning, the results tree, kill and resume on both backends, failures and --retry-failed."""

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

from opro import analysis
from opro.errors import OproError
from opro.sweep import SweepDriver, cell_name, read_sweep

TINY = """
"loop.steps" = {steps}
"loop.candidates_per_step" = 2
"loop.num_initial" = 3
"loop.max_tokens" = 40
"loop.resample_rounds" = 0
"loop.stop_at_optimum" = false
"llm.n_ctx" = 1024
"llm.cache" = false
"""


def write_sweep(folder: Path, body: str, steps: int = 2, name: str = "grid") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'results = "{folder / "results"}"\n[set]\n{TINY.format(steps=steps)}\n{body}')
    return path


def opro(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opro.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, **kwargs)


def test_plan_crosses_axes_then_adds_explicit_cells(tmp_path):
    path = write_sweep(tmp_path, """
[axes]
task = ["tsp", "linreg"]
seed = "0-1"
"loop.order" = ["ascending", "random"]
[[cells]]
task = "tsp"
seed = 9
"problem.instance" = "data/att48.tsp"
""")
    sweep = read_sweep(path)
    assert sweep.parent == tmp_path / "results" / "sweeps" / "grid"
    assert len(sweep.cells) == 2 * 2 * 2 + 1
    first, last = sweep.cells[0], sweep.cells[-1]
    assert first.id == "loop.order=ascending,seed=0,task=tsp"
    assert first.overrides == {**first.overrides, "seed": 0, "loop.order": "ascending", "loop.steps": 2}
    assert "task" not in first.overrides and first.task == "tsp" and first.steps == 2
    assert last.id == "problem.instance=att48.tsp,seed=9,task=tsp"  # a path is named by its file
    assert len({c.id for c in sweep.cells}) == len(sweep.cells)


@pytest.mark.parametrize("body, message", [
    ("[axes]\nseed = []", "axis 'seed' must be a non-empty list"),
    ("[axes]\nseed = [1, 1]", "axis 'seed' repeats a value"),
    ('[axes]\n"loop.temperature" = [1.0, "hot"]', "cell loop.temperature=hot: loop.temperature must be float"),
    ("[axes]\ntask = [\"tsp\", \"linreg\"]\n\"problem.n\" = [5]", "cell problem.n=5,task=linreg: unknown setting"),
    ("[axis]\nseed = [1]", "unknown key 'axis'"),
    ("[[cells]]\nseed = 1\n[[cells]]\nseed = 1", "two cells have the same settings: seed=1"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, body, message):
    path = write_sweep(tmp_path, 'task = "tsp"\n' + body)
    with pytest.raises(OproError) as error:
        read_sweep(path)
    assert message in str(error.value)
    result = opro("sweep", str(path), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_cell_names_are_safe_folder_names():
    assert cell_name({}) == "base"
    assert cell_name({"optimizer.spec": "openai:gpt-4o mini", "seed": 3}) == "optimizer.spec=openai_gpt-4o_mini,seed=3"
    long = cell_name({"problem.data": "x" * 300})
    assert len(long) == 113 and "/" not in long


def test_a_second_driver_is_refused_and_a_changed_cell_is_refused(tmp_path):
    path = write_sweep(tmp_path, 'task = "tsp"\n[axes]\nseed = [0, 1]')
    first = SweepDriver(read_sweep(path))
    first.open()
    try:
        with pytest.raises(OproError, match="being run by another process"):
            SweepDriver(read_sweep(path)).open()
    finally:
        first.close()
    changed = write_sweep(tmp_path, 'task = "tsp"\n[axes]\nseed = [0, 1]', steps=5)
    with pytest.raises(OproError, match="cell seed=0 of sweep grid had other settings"):
        SweepDriver(read_sweep(changed)).open()
    grown = write_sweep(tmp_path, 'task = "tsp"\n[axes]\nseed = [0, 1, 2]')  # more seeds: new cells only
    driver = SweepDriver(read_sweep(grown))
    driver.open()
    driver.close()
    assert [c["state"] for c in driver.record["cells"]] == ["pending"] * 3


def test_sweep_values_that_differ_within_a_group_name_the_method(tmp_path):
    from tests.analysis_runs import write_run

    parent = tmp_path / "sweeps" / "t"
    parent.mkdir(parents=True)
    (parent / "sweep.json").write_text("{}")
    for temperature in (0.5, 1.0):
        for seed in (0, 1):
            values = {"loop.temperature": temperature, "seed": seed, "problem.n": 6}
            run = write_run(parent, cell_name(values), "tsp", seed, steps=2, **{"loop.temperature": temperature})
            record = json.loads((run / "config.json").read_text())
            record["sweep"] = {"name": "t", "cell": run.name, "values": values}
            (run / "config.json").write_text(json.dumps(record))
    runs = analysis.load(parent).runs
    assert set(runs["run_group"]) == {"t"} and set(runs["sweep"]) == {"t"}
    methods = ["opro scripted:replay temperature=0.5", "opro scripted:replay temperature=1.0"]
    assert sorted(set(runs["method"])) == methods  # problem.n does not vary in the group, seeds are repeats
    assert sorted(runs["loop.temperature"]) == [0.5, 0.5, 1.0, 1.0]


def _kill_midway(command: list[str], cwd: Path, parent: Path) -> None:
    """Start the sweep, SIGKILL its whole process group once one cell is done and another has written a step
    (so the kill leaves a finished, a half-finished and an unstarted cell)."""
    log = cwd / "killed.log"
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=output, start_new_session=True)
    deadline, cut = time.time() + 400, False
    while time.time() < deadline and process.poll() is None:
        done = list(parent.glob("*/summary.json"))
        partial = [p for p in parent.glob("*/state.json")
                   if not (p.parent / "summary.json").exists() and json.loads(p.read_text())["last_step"] >= 0]
        if done and partial:
            cut = True
            break
        time.sleep(0.2)
    _kill_session(process.pid)  # the driver and every worker (Ray's run in process groups of their own)
    process.wait()
    assert cut, "the sweep never reached a finished and a half-finished cell:\n" + log.read_text()[-3000:]


def _session_processes(sid: int) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` until none is left."""
    for _ in range(100):
        alive = _session_processes(sid)
        if not alive:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_sweep_killed_midway_resumes_into_a_complete_tree(tmp_path, default_model, backend):
    path = write_sweep(tmp_path, '[axes]\ntask = ["tsp", "linreg"]\nseed = "0-1"', steps=2, name=backend)
    parent = tmp_path / "results" / "sweeps" / backend
    command = [sys.executable, "-m", "opro.cli", "sweep", str(path), "--backend", backend, "--workers", "2"]
    _kill_midway(command, tmp_path, parent)
    finished = {p.parent.name: p.parent.joinpath("candidates.csv").read_bytes() for p in parent.glob("*/summary.json")}
    status = opro("sweep", str(path), "--status", cwd=tmp_path)
    states = [line.split()[0] for line in status.stdout.splitlines()[:-1]]
    assert status.returncode == 0 and "running" not in states and "partial" in states  # a dead driver's cells

    resumed = opro(*command[3:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    cells = sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert cells == ["seed=0,task=linreg", "seed=0,task=tsp", "seed=1,task=linreg", "seed=1,task=tsp"]
    for name, data in finished.items():  # finished cells were skipped, not run again
        assert (parent / name / "candidates.csv").read_bytes() == data
    for cell in cells:
        steps = pd.read_csv(parent / cell / "steps.csv")
        candidates = pd.read_csv(parent / cell / "candidates.csv")
        assert list(steps["step"]) == [0, 1, 2]  # no step lost or repeated by the kill
        assert not candidates.duplicated(["step", "index", "attempt"]).any()
        record = json.loads((parent / cell / "config.json").read_text())
        assert record["sweep"]["cell"] == cell and record["sweep"]["values"]["seed"] == int(cell[5])
        assert record["config"]["optimizer"]["threads"] == (1 if backend == "ray" else max(1, os.cpu_count() // 2))
    record = json.loads((parent / "sweep.json").read_text())
    assert [c["state"] for c in record["cells"]] == ["done"] * 4

    results = analysis.load(parent)  # the parent is an ordinary tree of runs
    assert sorted(results.runs["cell"]) == cells and set(results.runs["run_group"]) == {backend}
    compared = opro("compare", str(parent), "--out", str(tmp_path / "cmp"), "--no-plot", cwd=tmp_path)
    assert compared.returncode == 0 and "tsp n=8" in (tmp_path / "cmp" / "table.md").read_text()


TSPLIB = """NAME : five
TYPE : TSP
DIMENSION : 5
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
1 0 0
2 10 0
3 10 10
4 0 10
5 5 14
EOF
"""


@pytest.mark.slow
def test_a_failed_cell_is_recorded_and_retried_with_retry_failed(tmp_path, default_model):
    path = write_sweep(tmp_path, 'task = "tsp"\n[[cells]]\n"problem.instance" = "five.tsp"', steps=1, name="flaky")
    failed = opro("sweep", str(path), cwd=tmp_path)
    assert failed.returncode == 1 and "FAILED problem.instance=five.tsp" in failed.stderr
    record = json.loads((tmp_path / "results" / "sweeps" / "flaky" / "sweep.json").read_text())
    assert record["cells"][0]["state"] == "failed" and "five.tsp" in record["cells"][0]["error"]
    (tmp_path / "five.tsp").write_text(TSPLIB)  # the data arrives
    again = opro("sweep", str(path), cwd=tmp_path)  # without --retry-failed it stays failed
    assert again.returncode == 1 and "0 cells to run" in again.stderr
    retried = opro("sweep", str(path), "--retry-failed", cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    status = opro("sweep", str(path), "--status", cwd=tmp_path).stdout
    assert status.startswith("done") and "1/1" in status
    summary = json.loads((tmp_path / "results" / "sweeps" / "flaky" / "problem.instance=five.tsp" /
                          "summary.json").read_text())
    assert summary["instance"]["n"] == 5


@pytest.mark.slow
def test_a_sweep_stopped_with_sigterm_takes_its_workers_with_it(tmp_path, default_model):
    """`kill DRIVER` (a job scheduler's stop) ends the cells it was running too, so that no worker goes on
    writing into a cell that the next `opro sweep` resumes; the cell resumes from its completed steps."""
    path = write_sweep(tmp_path, '[axes]\ntask = ["linreg"]\nseed = "0-1"', steps=4, name="stopped")
    parent = tmp_path / "results" / "sweeps" / "stopped"
    command = [sys.executable, "-m", "opro.cli", "sweep", str(path), "--workers", "1"]
    with open(tmp_path / "driver.log", "w") as output:
        driver = subprocess.Popen(command, cwd=tmp_path, stdout=output, stderr=output, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not any(json.loads(p.read_text())["last_step"] >= 0
                                             for p in parent.glob("*/state.json")):
        time.sleep(0.2)
    driver.send_signal(signal.SIGTERM)  # the driver alone, not its process group
    assert driver.wait(60) == 130, (tmp_path / "driver.log").read_text()[-2000:]
    assert "interrupted; completed steps are saved" in (tmp_path / "driver.log").read_text()

    for _ in range(100):  # the worker follows its driver
        if not _session_processes(driver.pid):
            break
        time.sleep(0.1)
    assert _session_processes(driver.pid) == []
    resumed = opro(*command[3:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for cell in ("seed=0,task=linreg", "seed=1,task=linreg"):
        assert list(pd.read_csv(parent / cell / "steps.csv")["step"]) == [0, 1, 2, 3, 4]
