"""Baselines (`opro baselines`), the statistics they are reported with, and `opro compare`."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from opro.baselines import linreg_baselines, linreg_budget, tsp_baselines, tsp_table
from opro.compare import compare
from opro.config import LoopConfig, build_config
from opro.errors import OproError
from opro.loop import optimize
from opro.problems.linreg import LinearRegression
from opro.problems.tsp import TravelingSalesman
from opro.results import RunDir
from opro.solvers import tour_length
from opro.stats import format_mean_se, mean_se, parse_seeds
from tests.doubles import ScriptedLLM

TEMPLATES = ("Pairs:\n{history}Propose.", "input:\n{solution}\nvalue:\n{score}\n\n")


def opro(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def brute_force(dist: np.ndarray) -> float:
    n = len(dist)
    return min(tour_length(dist, [0, *p]) for p in itertools.permutations(range(1, n)))


def test_mean_and_standard_error():
    values = [13.0, 9.4, 16.0, 19.7]
    mean, se, count = mean_se(values)
    assert mean == pytest.approx(np.mean(values)) and count == 4
    assert se == pytest.approx(np.std(values, ddof=1) / 2)
    assert mean_se([None, float("nan"), 2.0]) == (2.0, pytest.approx(float("nan"), nan_ok=True), 1)
    assert format_mean_se([1.0, 3.0]) == "2.0 ± 1.0" and format_mean_se([]) == "-"


def test_seed_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("1,3, 7-8") == [1, 3, 7, 8]
    for bad in ("4-0", "a", "1,1", ""):
        with pytest.raises(OproError):
            parse_seeds(bad)


@pytest.mark.parametrize("seed", range(4))
def test_tsp_baselines_report_lengths_and_gaps_against_brute_force(seed):
    problem = TravelingSalesman(n=8, seed=seed, optimum=False)
    report = tsp_baselines(problem)
    optimum = brute_force(problem.dist)
    methods = report["methods"]
    assert set(methods) == {"nearest_neighbor", "farthest_insertion", "two_opt", "local_search", "optimal"}
    assert methods["optimal"]["length"] == pytest.approx(optimum) and methods["optimal"]["certified"]
    for entry in methods.values():
        assert entry["length"] >= optimum - 1e-9
        assert entry["gap_percent"] == pytest.approx((entry["length"] - optimum) / optimum * 100, abs=1e-9)
    assert methods["local_search"]["gap_percent"] == 0.0


def test_tsp_table_is_the_mean_over_instances(tmp_path):
    report = tsp_table([6, 7], instances=3, seed=10, out=tmp_path)
    rows = pd.read_csv(tmp_path / "instances.csv")
    table = pd.read_csv(tmp_path / "table.csv")
    assert len(rows) == 2 * 3 * 5 and set(rows["instance_seed"]) == {10, 11, 12}
    for n in (6, 7):
        gaps = []
        for k in range(3):
            dist = TravelingSalesman(n=n, seed=10 + k, optimum=False).dist
            nn = rows.query("n == @n and instance_seed == @k + 10 and method == 'nearest_neighbor'")["length"].item()
            gaps.append((nn - brute_force(dist)) / brute_force(dist) * 100)
        line = table.query("n == @n and method == 'nearest_neighbor'").iloc[0]
        assert line["gap_mean"] == pytest.approx(np.mean(gaps))
        assert line["gap_se"] == pytest.approx(np.std(gaps, ddof=1) / math.sqrt(3))
    assert "| n | nearest_neighbor |" in (tmp_path / "table.md").read_text()
    assert report["table"][0]["cell"].count("±") == 1


def test_baselines_cli_json_on_a_tsplib_instance(shared_data, tmp_path):
    done = opro("baselines", "--task", "tsp", "--instance", str(shared_data / "tsplib" / "burma14.tsp"), "--json",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["instance"] == "burma14" and report["n"] == 14
    assert report["methods"]["optimal"] == {**report["methods"]["optimal"], "length": 3323.0, "certified": True}
    assert all({"length", "seconds"} <= set(m) for m in report["methods"].values())


def test_a_shipped_instance_is_found_by_name_and_out_gets_its_table(tmp_path):
    done = opro("baselines", "--instance", "burma14", "--out", "tables", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("tables: tables")
    table = pd.read_csv(tmp_path / "tables" / "table.csv")
    assert list(table["method"]) == ["nearest_neighbor", "farthest_insertion", "two_opt", "local_search", "optimal"]
    assert table.set_index("method").loc["optimal", "length"] == 3323  # TSPLIB95's published optimum
    assert "| optimal | 3323 | 0.00 |" in (tmp_path / "tables" / "table.md").read_text()


def test_an_unknown_instance_name_lists_the_shipped_ones(tmp_path):
    done = opro("run", "--task", "tsp", "--instance", "burma15", cwd=tmp_path)
    assert done.returncode == 2 and not (tmp_path / "results").exists()
    assert done.stderr.strip() == ("opro: error: instance file not found: burma15 "
                                   "(shipped instances: att48, berlin52, burma14, eil51)")


def test_baselines_cli_table3_layout_writes_csv(tmp_path):
    done = opro("baselines", "--task", "tsp", "--n", "6", "7", "--instances", "2", "--seed", "0", "--out", "t",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| 6 |" in done.stdout and "| 7 |" in done.stdout and "±" in done.stdout
    table = pd.read_csv(tmp_path / "t" / "table.csv")
    assert set(table["n"]) == {6, 7} and (table.query("method == 'optimal'")["gap_mean"] == 0).all()


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "tsp", "--n", "2"], "problem.n must be in [3, 2000], got 2"),
    (["--task", "tsp", "--instance", "/no/file.tsp"], "instance file not found"),
    (["--task", "linreg", "--seeds", "3-1"], "bad seed list"),
    (["--task", "tsp", "--time-limit", "0"], "--time-limit must be in (0, "),
])
def test_baselines_cli_bad_input(tmp_path, args, message):
    done = opro("baselines", *args, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr.strip().splitlines()[0]


def test_linreg_baselines_spend_the_budget_of_an_opro_run():
    problem = LinearRegression(w_true=36, b_true=-1, seed=1)
    budget = linreg_budget(50)
    assert budget == 5 + 50 * 8
    results = {r["method"]: r for r in linreg_baselines(problem, seed=1, steps=50)}
    for result in results.values():
        assert result["evaluations"] <= budget and result["unique_pairs"] <= result["evaluations"]
        if result["solved"]:
            assert result["best_score"] == pytest.approx(problem.optimum)
            assert result["best_solution"] == problem.render(problem.optimum_pair)
            # the optimum was found within the step it reports
            step = result["steps_to_optimum"]
            assert 5 + (step - 1) * 8 < result["evaluations"] <= 5 + step * 8
        else:
            assert result["evaluations"] == budget and result["steps_to_optimum"] is None
    assert results["nelder_mead"]["solved"]
    again = {r["method"]: r for r in linreg_baselines(problem, seed=1, steps=50)}
    assert again == results  # seeded


def test_linreg_baselines_table_over_seeds(tmp_path):
    done = opro("baselines", "--task", "linreg", "--seeds", "0-2", "--steps", "20", "--json", "--out", "o",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["budget"] == 5 + 20 * 8 and report["seeds"] == [0, 1, 2]
    assert [r["method"] for r in report["table"]] == ["closed_form", "random_search", "nelder_mead"]
    runs = pd.read_csv(tmp_path / "o" / "runs.csv")
    assert len(runs) == 9


def _scripted_run(root, task: str, seed: int, texts: list[str], steps: int = 3):
    config = build_config(task, {"seed": seed, "loop.steps": steps, "loop.candidates_per_step": 4,
                                 "problem.n": 6, "optimizer.spec": "scripted:test"} if task == "tsp" else
                          {"seed": seed, "loop.steps": steps, "loop.candidates_per_step": 4,
                           "optimizer.spec": "scripted:test"})
    from opro.problems import build_problem

    problem = build_problem(config.problem, dict(config.problem_settings), seed)
    run = RunDir.create(root, task, f"seed{seed}", {"config": config.to_dict()})
    summary = optimize(problem, ScriptedLLM(texts), LoopConfig(**{**config.to_dict()["loop"]}), seed, TEMPLATES, run)
    return run, summary


def test_compare_gathers_runs_and_baselines(tmp_path):
    summaries = [_scripted_run(tmp_path / "runs", "linreg", seed, ["[15, 14]", "[14, 20]", "x"])[1]
                 for seed in range(3)]
    summaries += [_scripted_run(tmp_path / "runs", "tsp", seed, ["<trace>0,1,2,3,4,5</trace>", "no"])[1]
                  for seed in range(2)]
    report = compare([tmp_path / "runs"], tmp_path / "out")
    assert report["runs"] == 5
    table = pd.read_csv(tmp_path / "out" / "table.csv")
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 5 and set(runs["group"]) == {"linreg w=15 b=14", "tsp n=6"}
    opro_tsp = table.query("group == 'tsp n=6' and kind == 'opro'").iloc[0]
    tsp_gaps = [s["gap_percent"] for s in summaries[3:]]
    assert opro_tsp["gap_mean"] == pytest.approx(np.mean(tsp_gaps)) and opro_tsp["runs"] == 2
    assert opro_tsp["solved"] == sum(s["solved"] for s in summaries[3:])
    tsp_baselines_ = set(table.query("group == 'tsp n=6' and kind == 'baseline'")["method"])
    assert tsp_baselines_ == {"nearest_neighbor", "farthest_insertion", "two_opt", "local_search"}
    linreg = table.query("group == 'linreg w=15 b=14'").set_index("method")
    assert set(linreg.index) == {"opro scripted:test", "random_search", "nelder_mead"}
    unique = np.mean([s["n_unique"] for s in summaries[:3]])
    assert linreg.loc["opro scripted:test", "unique_mean"] == pytest.approx(unique)
    assert "### tsp n=6" in (tmp_path / "out" / "table.md").read_text()
    assert {p.name for p in report["plots"]} == {"best_so_far-linreg_w_15_b_14.png", "best_so_far-tsp_n_6.png"}
    assert all(p.stat().st_size > 1000 for p in report["plots"])


def test_compare_without_runs_is_a_clear_error(tmp_path):
    done = opro("compare", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "no finished runs" in done.stderr
