"""`opro reproduce`: the published numbers against the paper, every experiment's grid (--dry-run), the
--scale labelling, the side-by-side table and verdicts, and resume after a kill (embedded model, slow)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from opro.errors import OproError
from opro.reproduce import paper
from opro.reproduce.driver import default_folder, finish, plan_from_dict, plan_to_dict, to_sweep
from opro.reproduce.experiments import EXPERIMENTS, Options, build
from opro.reproduce.tables import tabulate, verdict
from tests.cli_inprocess import invoke

# --- the paper's values, a few cells typed from arXiv:2309.03409v3 -------------------------------------------


def _cell(table: str, metric: str, model: str, setting: str) -> tuple[float, float, float]:
    row = paper.value(table, metric, model, setting)
    return row["mean"], row["spread"], row["successes"]


def test_table2_values_are_the_papers():
    frame = paper.published("table2")
    assert len(frame) == 7 * 2 * 3 and set(frame["paper_version"]) == {"arXiv:2309.03409v3 (ICLR 2024)"}
    assert _cell("table2", "steps", "text-bison", "w_true=15;b_true=14")[:2] == (5.8, 2.6)
    assert _cell("table2", "steps", "gpt-4", "w_true=3;b_true=5")[:2] == (12.2, 2.0)
    assert _cell("table2", "unique", "gpt-3.5-turbo", "w_true=2;b_true=30")[:2] == (125.6, 21.7)
    assert _cell("table2", "unique", "gpt-4", "w_true=36;b_true=-1")[:2] == (116.4, 32.7)
    assert set(frame["paper_table"]) == {"Table 2"} and frame["paper_row"].iloc[0] == "w_true=15, b_true=14"


def test_table3_values_are_the_papers():
    frame = paper.published("table3")
    assert len(frame) == 4 * 8
    assert _cell("table3", "gap", "NN", "n=10")[:2] == (13.0, 1.3)
    assert _cell("table3", "gap", "FI", "n=50")[:2] == (9.8, 1.5)
    assert _cell("table3", "gap", "text-bison", "n=50")[:2] == (219.8, 13.7)
    assert _cell("table3", "steps", "gpt-4", "n=20") == (195.5, 127.6, 2)
    assert _cell("table3", "steps", "gpt-3.5-turbo", "n=15") == (202.0, 41.1, 4)
    mean, spread, successes = _cell("table3", "steps", "text-bison", "n=15")  # "N/A (0)"
    assert math.isnan(mean) and math.isnan(spread) and successes == 0


def test_table4_and_bbh_values_are_the_papers():
    frame = paper.published("table4")
    base = frame[frame["metric"] == "baseline"].set_index(["model", "text"])["mean"]
    assert base[("PaLM 2-L", "Let's think step by step.")] == 71.8
    assert base[("PaLM 2-L", "Let's solve the problem.")] == 60.8
    assert base[("PaLM 2-L", "")] == 34.0
    assert (base[("text-bison", "Let's think step by step.")], base[("text-bison", "")]) == (64.4, 56.8)
    found = frame[frame["metric"] == "found"]
    deep = found[found["text"] == "Take a deep breath and work on this problem step-by-step."].iloc[0]
    assert (deep["mean"], deep["model"], deep["setting"]) == (80.2, "PaLM 2-L",
                                                              "scorer=PaLM 2-L;position=A_begin;optimizer=PaLM 2-L-IT")
    assert found[found["model"] == "text-bison"]["mean"].max() == 68.5
    bbh = paper.published("bbh").iloc[0]
    assert (bbh["successes"], bbh["runs"]) == (19, 23)


# --- grids ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("experiment, runs, steps", [
    ("table2", 35, 500), ("table3", 20, 500), ("table4", 1, 200), ("bbh", 4, 200), ("ablations", 3 * 17, 200),
    ("overfitting", 3, 200), ("evoprompt", 18, 800)])
def test_every_experiment_builds_its_full_grid_without_running(tmp_path, experiment, runs, steps):
    plan = build(experiment, Options())
    sweep = to_sweep(plan, tmp_path / "out")
    assert len(sweep.cells) == runs and max(c.steps for c in sweep.cells) >= steps
    assert "reduced" not in plan.title and not plan.reduced
    covered = [c for g in plan.groups for c in g.cells]
    assert {c.id for c in sweep.cells} == set(covered)  # every run belongs to a row of the table
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))) == plan


def test_dry_run_prints_the_grid_and_writes_nothing(tmp_path):
    done = invoke(["reproduce", "table2", "--dry-run"], tmp_path)
    assert done.code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Table 2: linear regression (§3.1)"
    assert "problem.b_true=-1,problem.w_true=36,seed=4  (linreg-paper, 500 steps)" in lines
    assert lines[-1] == "35 runs in 7 rows -> results/reproduce/table2"
    assert not (tmp_path / "results").exists()
    ablation = invoke(["reproduce", "ablations", "--ablation", "per_step", "--seeds", "0", "--dry-run"], tmp_path)
    assert "loop.candidates_per_step=1,loop.steps=1600,seed=0  (gsm8k, 1600 steps)" in ablation.stdout


def test_the_table3_grid_is_the_papers():
    sweep = to_sweep(build("table3", Options()), Path("/tmp/x"))
    assert sorted({c.values["problem.n"] for c in sweep.cells}) == [10, 15, 20, 50]
    assert sorted({c.values["seed"] for c in sweep.cells}) == [0, 1, 2, 3, 4]
    cell = sweep.cells[0]
    assert cell.overrides["optimizer.spec"] == "llamacpp:smollm2-opro"
    from opro.config import build_config

    config = build_config(cell.task, cell.overrides)
    assert (config.loop.candidates_per_step, config.loop.num_initial, config.loop.temperature) == (8, 5, 1.0)


def test_the_evoprompt_grid_holds_the_budget_equal_across_methods():
    plan = build("evoprompt", Options(seeds=[0, 1]))
    sweep = to_sweep(plan, Path("/tmp/x"))
    budgets = {(c.task, c.values["loop.method"]): c.values["loop.max_scorer_calls"] for c in sweep.cells}
    assert budgets == {(task, method): 8 * 200 * questions for task, questions in (("gsm8k", 261), ("bbh", 50))
                       for method in ("opro", "evoprompt-ga", "evoprompt-de")}
    from opro.config import build_config

    cell = next(c for c in sweep.cells if c.task == "bbh" and c.values["loop.method"] == "evoprompt-de")
    config = build_config(cell.task, cell.overrides)
    assert config.problem_settings["bbh_task"] == "sports_understanding"
    assert config.problem_settings["initial_instructions"] == ["Let's solve the problem.", "Here is the answer."]


def test_scale_labels_the_run_and_its_folder():
    plan = build("table3", Options(scale=0.02))
    assert plan.title == "Table 3: traveling salesman (§3.2) (reduced run, --scale 0.02: 1 of 5 seeds, 10 of 500 steps)"
    assert plan.reduced == {"seeds": [1, 5], "steps": [10, 500]}
    assert default_folder(plan) == Path("results/reproduce/table3-scale0.02")
    assert default_folder(build("table3", Options())) == Path("results/reproduce/table3")
    assert plan.spec["set"]["optimizer.cache_prompt"] is True and "KV cache" in plan.note  # a quick look
    assert "optimizer.cache_prompt" not in build("table3", Options()).spec["set"]  # a full run: bit-reproducible
    remote = build("table3", Options(scale=0.02, optimizer="openai:gpt-4o-mini"))
    assert "optimizer.cache_prompt" not in remote.spec["set"] and not remote.note
    prompt = build("table4", Options(scale=0.1))
    assert prompt.reduced == {"steps": [20, 200], "training questions": [27, 261]}
    limited = build("table4", Options(limit=20, seeds=[0, 1]))
    assert limited.reduced == {"training questions": [20, 261]} and limited.evaluate["limit"] == 20
    assert "reduced run" in limited.title


@pytest.mark.parametrize("args, message", [
    (["table2", "--scale", "0"], "--scale must be in (0, 1]"),
    (["table2", "--scale", "1.5"], "--scale must be in (0, 1]"),
    (["table2", "--scorer", "llamacpp:smollm2"], "--scorer is for the prompt experiments"),
    (["bbh", "--bbh-tasks", "navigate,nope"], "unknown BBH task 'nope'"),
    (["ablations", "--ablation", "colour"], "unknown ablation 'colour'"),
    (["table2", "--task", "bbh"], "--task is for ablations and overfitting, not table2"),
    (["table3", "--set", "loop.steps=-1"], "loop.steps"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    done = invoke(["reproduce", *args, "--dry-run"], tmp_path)
    assert done.refused_in_one_line and message in done.stderr, done.stderr


# --- the table ------------------------------------------------------------------------------------------------


def test_verdicts():
    assert verdict(7.0, 1.0, 5.8, 2.6, "steps") == "within"
    assert verdict(9.0, 1.0, 5.8, 2.6, "steps") == "worse"
    assert verdict(2.0, 1.0, 5.8, 2.6, "steps") == "better"
    assert verdict(70.0, 0.0, 64.4, None, "baseline") == "better"  # one number: our std is the tolerance
    assert verdict(63.0, 2.0, 64.4, None, "baseline") == "within"
    assert verdict(None, None, 40.4, 5.6, "steps") == "n/a"


def _summary(folder: Path, cell: str, **fields) -> None:
    (folder / cell).mkdir(parents=True)
    (folder / cell / "summary.json").write_text(json.dumps(fields))


def test_table2_side_by_side_from_finished_runs(tmp_path):
    plan = build("table2", Options(seeds=[0, 1]))
    _summary(tmp_path, "problem.b_true=14,problem.w_true=15,seed=0", solved=True, steps_to_optimum=4, n_unique=30)
    _summary(tmp_path, "problem.b_true=14,problem.w_true=15,seed=1", solved=True, steps_to_optimum=6, n_unique=50)
    _summary(tmp_path, "problem.b_true=17,problem.w_true=17,seed=0", solved=False, steps_to_optimum=None, n_unique=80)
    rows = pd.DataFrame(tabulate(plan, tmp_path))
    first = rows[(rows["row"] == "w=15, b=14") & (rows["metric"] == "steps")].set_index("paper_column")
    bison = first.loc["# steps, text-bison"]
    assert (bison["ours_mean"], bison["ours_std"], bison["ours_successes"]) == (5.0, pytest.approx(math.sqrt(2)), 2)
    assert (bison["paper_mean"], bison["paper_spread"], bison["verdict"]) == (5.8, 2.6, "within")
    assert bison["difference"] == pytest.approx(-0.8)
    unsolved = rows[(rows["row"] == "w=17, b=17") & (rows["metric"] == "steps")]
    assert set(unsolved["verdict"]) == {"worse"} and set(unsolved["ours_successes"]) == {0}  # paper: 4-13 steps
    short = pd.DataFrame(tabulate(build("table2", Options(seeds=[0, 1], settings={"loop.steps": 5})), tmp_path))
    cut = short[(short["row"] == "w=17, b=17") & (short["metric"] == "steps")].set_index("paper_column")["verdict"]
    assert cut.to_dict() == {"# steps, text-bison": "n/a", "# steps, gpt-3.5-turbo": "n/a",  # 4.0 ± 1.8 > 5
                             "# steps, gpt-4": "n/a"}
    (tmp_path / "reproduce.json").write_text(json.dumps({"models": {"optimizer": "llamacpp:smollm2-opro"}}))
    finish(plan, tmp_path)
    markdown = (tmp_path / "table.md").read_text()
    assert markdown.startswith("# Table 2: linear regression (§3.1) (reduced run: 2 of 5 seeds)\n")
    assert "optimizer `llamacpp:smollm2-opro`" in markdown
    line = "| w=15, b=14 | steps to the optimum | 5.0 ± 1.4 (2) | 2 | # steps, text-bison | 5.8 ± 2.6 | -0.8 | within |"
    assert line in markdown
    assert (tmp_path / "table2.png").stat().st_size > 10_000
    table = pd.read_csv(tmp_path / "table.csv")
    assert len(table) == 7 * 2 * 3 and table["paper_mean"].notna().all()


# --- a real reduced run, killed and resumed -------------------------------------------------------------------


@pytest.mark.slow
def test_reproduce_killed_midway_resumes(tmp_path, default_model):
    out = tmp_path / "t2"
    command = [sys.executable, "-m", "opro.cli", "reproduce", "table2", "--seeds", "0", "--set", "loop.steps=1",
               "--set", "loop.candidates_per_step=2", "--set", "loop.max_tokens=24", "--workers", "2",
               "--out", str(out)]  # a short step: what is tested is the resume, at any length
    env = dict(os.environ)
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=log, start_new_session=True, env=env)
    deadline = time.time() + 400
    while time.time() < deadline and process.poll() is None and len(list(out.glob("*/summary.json"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p.parent.name: p.parent.joinpath("candidates.csv").read_bytes() for p in out.glob("*/summary.json")}
    assert 2 <= len(finished) < 7, (tmp_path / "killed.log").read_text()[-2000:]
    assert not (out / "table.md").exists()

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{7 - len(finished)} cells to run" in resumed.stderr
    for name, data in finished.items():  # finished runs were kept as they were
        assert (out / name / "candidates.csv").read_bytes() == data
    assert len(list(out.glob("*/summary.json"))) == 7
    record = json.loads((out / "reproduce.json").read_text())
    assert record["models"] == {"optimizer": "llamacpp:smollm2-opro"} and record["cells"]["done"] == 7
    assert "git" in record and record["versions"]["opro"]
    table = pd.read_csv(out / "table.csv")
    assert sorted(table["row"].unique()) == sorted(f"w={w}, b={b}" for w, b in
                                                   [(15, 14), (17, 17), (16, 10), (3, 5), (25, 23), (2, 30), (36, -1)])
    assert (out / "table2.png").is_file() and "| w=36, b=-1 |" in resumed.stdout
    other = subprocess.run([*command[:-2], "--optimizer", "llamacpp:smollm2", "--out", str(out)], cwd=tmp_path,
                           capture_output=True, text=True, env=env)
    assert other.returncode == 2 and "another --out" in other.stderr  # another model never mixes into a folder
    assert record == json.loads((out / "reproduce.json").read_text())


def test_experiments_are_listed_in_the_help(tmp_path):
    done = invoke(["reproduce", "--help"], tmp_path)
    assert done.code == 0 and all(name in done.stdout for name in EXPERIMENTS)


def test_unknown_experiment_builder():
    with pytest.raises(OproError, match="unknown experiment"):
        build("table9", Options())


PROMPT_TINY = ["--set", "loop.steps=1", "--set", "loop.candidates_per_step=2", "--set", "loop.max_tokens=16",
               "--set", "loop.resample_rounds=0", "--set", "problem.scorer_max_tokens=8",
               "--set", "problem.num_exemplars=1", "--set", "loop.stop_at_optimum=false"]


@pytest.mark.slow
def test_table4_on_a_subset_of_gsm8k_evaluates_the_found_and_the_baselines(tmp_path, default_model, shared_data):
    out = tmp_path / "t4"
    args = ["reproduce", "table4", "--limit", "3", "--data", str(shared_data), "--out", str(out), "--quiet",
            *PROMPT_TINY]
    done = invoke(args, tmp_path)
    assert done.code == 0, done.stderr + (done.escaped or "")
    evaluated = json.loads((out / "eval" / "seed=0" / "eval.json").read_text())
    assert evaluated["n_examples"] == 3 and evaluated["split"] == "test"
    assert [r["source"] for r in evaluated["results"]] == ["run", "baseline", "baseline", "baseline"]
    table = pd.read_csv(out / "table.csv", keep_default_na=False, na_values=[""])
    step = table[(table["row"] == "baseline: \"Let's think step by step.\"") & (table["paper_column"].str.contains(
        "text-bison"))].iloc[0]
    assert step["paper_mean"] == 64.4 and step["verdict"] in ("within", "better", "worse")
    assert 0 <= step["ours_mean"] <= 100 and step["ours_runs"] == 1
    palm = table[(table["row"] == "ours: best found") & table["paper_column"].str.contains("PaLM")].iloc[0]
    assert palm["paper_mean"] == 80.2 and pd.isna(palm["verdict"])  # Q_begin: judged against text-bison only
    markdown = (out / "table.md").read_text()
    assert "reduced run" in markdown.splitlines()[0] and "scorer `llamacpp:smollm2`" in markdown
    stamp = (out / "eval" / "seed=0" / "eval.json").stat().st_mtime_ns
    again = invoke(args, tmp_path)  # resumes: nothing left to run or evaluate
    assert again.code == 0 and (out / "eval" / "seed=0" / "eval.json").stat().st_mtime_ns == stamp
    report = invoke(["report", str(out)], tmp_path)
    assert report.code == 0, report.stderr
    html = (out / "report.html").read_text()
    assert "Reproduction: Table 4" in html and "data:image/png;base64" in html


def _candidates(folder: Path, scores: dict[int, list[float]]) -> None:
    lines = ["step,valid,duplicate,score"] + [f"{step},True,False,{s}" for step, values in scores.items()
                                               for s in values]
    (folder / "candidates.csv").write_text("\n".join(lines) + "\n")


def test_ablation_curves_and_table_from_finished_runs(tmp_path):
    plan = build("ablations", Options(seeds=[0, 1], ablations=("temperature", "per_step"), scale=0.01))
    for group in plan.groups:
        for k, cell in enumerate(group.cells):
            if not (tmp_path / cell).exists():
                _summary(tmp_path, cell, best_score=0.5 + 0.1 * k)
                _candidates(tmp_path / cell, {0: [0.2], 1: [0.3, 0.4 + 0.1 * k], 2: [0.5]})
    record = finish(plan, tmp_path)
    assert record["figures"] == ["ablations.png"] and (tmp_path / "ablations.png").stat().st_size > 10_000
    table = pd.read_csv(tmp_path / "table.csv")
    assert list(table["part"].unique()) == ["temperature", "per_step"]
    warm = table[table["row"] == "loop.temperature = 1.0"].iloc[0]
    assert (warm["ours_mean"], warm["ours_runs"]) == (pytest.approx(0.55), 2)


def test_bbh_gain_counts_tasks_over_five_points(tmp_path):
    plan = build("bbh", Options(seeds=[0], bbh_tasks=("navigate", "snarks")))
    for task, (found, base) in {"navigate": (70.0, 60.0), "snarks": (52.0, 50.0)}.items():
        cell = f"problem.bbh_task={task},seed=0"
        _summary(tmp_path, cell, best_score=0.8)
        (tmp_path / "eval" / cell).mkdir(parents=True)
        (tmp_path / "eval" / cell / "eval.json").write_text(json.dumps({"results": [
            {"source": "run", "instruction": "x", "accuracy": found},
            {"source": "baseline", "instruction": "Let's think step by step.", "accuracy": base}]}))
    record = finish(plan, tmp_path)
    table = pd.read_csv(tmp_path / "table.csv")
    gain = table[table["metric"] == "gain"].set_index("row")["ours_mean"]
    assert gain.to_dict() == {"navigate": 10.0, "snarks": 2.0}
    summary = table[table["metric"] == "tasks_gain_over_5"].iloc[0]
    assert (summary["ours_successes"], summary["paper_successes"], summary["verdict"]) == (1, 19, "worse")
    assert record["figures"] == ["gain.png"]


def test_overfitting_reads_validation_and_test_of_the_best(tmp_path):
    plan = build("overfitting", Options(seeds=[0], scale=0.05))
    cell = plan.groups[0].cells[0]
    _summary(tmp_path, cell, best_score=0.9)
    (tmp_path / cell / "steps.csv").write_text("step,best_so_far,validation_of_best,test_of_best\n0,0.5,40.0,38.0\n"
                                               "1,0.7,,\n2,0.9,45.0,41.0\n")
    record = finish(plan, tmp_path)
    table = pd.read_csv(tmp_path / "table.csv").set_index("metric")
    assert (table.loc["validation", "ours_mean"], table.loc["test", "ours_mean"]) == (45.0, 41.0)
    assert record["figures"] == ["overfitting.png"]
