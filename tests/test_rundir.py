"""Run-directory integrity on resume: a corrupt folder is one line and exit 2, and nothing in it changes.

The runs here are real loop runs with a scripted optimizer; the checks under test come before any model is
loaded (the stored optimizer points at a GGUF that does not exist, so a resume that loaded it would fail).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opro.results import RunDir, remove_unstarted
from tests.rundir_tools import make_run, opro, snapshot


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    path = make_run(tmp_path_factory.mktemp("made"))
    record = json.loads((path / "config.json").read_text())
    record["config"]["optimizer"]["spec"] = "llamacpp:/no/such/model.gguf"  # proves no model is loaded
    (path / "config.json").write_text(json.dumps(record))
    return path


@pytest.fixture
def run(made, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(made, copy)
    return copy


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def refused(run: Path, *args: str, message: str = "") -> str:
    """Resume `run`: exit 2, one line (containing `message`), no file changed."""
    before = snapshot(run)
    done = opro("run", "--resume", str(run), "--quiet", *args)
    assert done.code == 2, done
    assert len(done.lines) == 1 and done.lines[0].startswith("opro: error:"), done
    assert message in done.lines[0]
    assert snapshot(run) == before
    return done.lines[0]


def test_a_valid_run_resumes_without_loading_a_model_when_no_step_is_left(run):
    done = opro("run", "--resume", str(run), "--steps", "2", "--quiet")
    assert done.code == 0, done
    assert "2 steps, stop: steps" in done.stdout


def test_a_log_shorter_than_recorded_is_refused_not_padded_with_nul_bytes(run):
    data = (run / "candidates.csv").read_bytes()
    (run / "candidates.csv").write_bytes(data[:-30])
    line = refused(run, message="candidates.csv is shorter than state.json records")
    assert f"{len(data) - 30} < {len(data)} bytes" in line
    assert b"\0" not in (run / "candidates.csv").read_bytes()


def test_a_partial_step_beyond_the_recorded_length_is_cut_back_on_resume(run):
    whole = snapshot(run)
    with open(run / "candidates.csv", "a") as handle:
        handle.write("3,0,0,9,abc,\"w=1, b=")  # a step cut short by a kill
    with open(run / "llm_calls.jsonl", "a") as handle:
        handle.write('{"step": 3, "outp')
    assert opro("run", "--resume", str(run), "--quiet").code == 0
    for name in ("candidates.csv", "llm_calls.jsonl", "steps.csv"):
        assert (run / name).read_bytes() == whole[name]


@pytest.mark.parametrize("lengths_extra", [{"config.json": 0}, {"summary.json": 3}])
def test_state_naming_a_file_other_than_the_logs_is_refused(run, lengths_extra):
    edit_json(run / "state.json", lambda s: {**s, "lengths": {**s["lengths"], **lengths_extra}})
    refused(run, message="lengths must name exactly candidates.csv, steps.csv, llm_calls.jsonl")
    assert (run / "config.json").stat().st_size > 0


@pytest.mark.parametrize("state", [
    "{}", "[]", "garbage", "", '{"last_step": "1", "lengths": {}}', '{"last_step": true, "lengths": {}}',
    '{"last_step": 1.5, "lengths": {"candidates.csv": 1, "steps.csv": 1, "llm_calls.jsonl": 1}}',
    '{"last_step": 2, "lengths": {"candidates.csv": -1, "steps.csv": 10, "llm_calls.jsonl": 0}}',
    '{"last_step": 2, "lengths": {"candidates.csv": "10", "steps.csv": 10, "llm_calls.jsonl": 0}}',
    '{"last_step": -5, "lengths": {"candidates.csv": 1, "steps.csv": 1, "llm_calls.jsonl": 0}}',
])
def test_a_corrupt_state_json_is_refused(run, state):
    (run / "state.json").write_text(state)
    refused(run, message="state.json")


def test_a_state_ahead_of_its_logs_is_refused(run):
    edit_json(run / "state.json", lambda s: {**s, "last_step": 5})
    refused(run, message="does not hold steps 0..5")


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: "garbage", "not a run record"),
    (lambda r: {**r, "config": {**r["config"], "loop": {**r["config"]["loop"], "steps": "3"}}},
     "loop.steps must be int, got '3'"),
    (lambda r: {**r, "config": {**r["config"], "loop": {**r["config"]["loop"], "steps": None}}},
     "loop.steps must be int, got None"),
    (lambda r: {**r, "config": {**r["config"], "loop": "x"}}, "loop must be a table"),
    (lambda r: {**r, "config": {**r["config"], "problem": "nosuch"}}, "unknown problem 'nosuch'"),
    (lambda r: {**r, "config": {**r["config"], "problem": "tsp", "task": "tsp", "problem_settings": {"n": 5}}},
     "describes another problem"),
    (lambda r: {"config": {**r["config"], "problem": "tsp", "task": "tsp", "problem_settings": {"n": 5}},
                "templates": r["templates"]}, "not a solution of the tsp problem"),  # no instance record
    (lambda r: {**r, "config": {**r["config"], "problem_settings": {"w_true": 3.0}}}, "describes another problem"),
    (lambda r: {**r, "config": {**r["config"], "problem_settings": {"w_true": "3"}}}, "problem.w_true must be float"),
])
def test_a_corrupt_or_edited_config_json_is_refused(run, change, message):
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(change(record)))
    refused(run, message=message)


def test_garbage_config_json_is_refused(run):
    (run / "config.json").write_bytes(b"\x00\xffnot json")
    refused(run, message="unreadable config.json")


@pytest.mark.parametrize(("old", "new", "message"), [
    (b"step,index,attempt", b"stap,index,attempt", "the header is not"),
    (b",268.1393306534849,", b",26x.1393306534849,", "score '26x.1393306534849' is not float"),
    (b",True,,False,268", b",Tru,,False,268", "valid 'Tru' is not bool"),
    (b"\n1,0,0,2,", b"\n1,0,0,2,\xff", "unreadable"),
])
def test_a_garbled_candidates_csv_is_refused(run, old, new, message):
    data = (run / "candidates.csv").read_bytes()
    assert data.count(old) == 1
    (run / "candidates.csv").write_bytes(data.replace(old, new))
    edit_json(run / "state.json", lambda s: {**s, "lengths": {**s["lengths"], "candidates.csv": len(
        (run / "candidates.csv").read_bytes())}})
    refused(run, message=message)


def test_a_garbled_steps_csv_and_llm_calls_are_refused(run, made):
    steps = (run / "steps.csv").read_text().splitlines(keepends=True)
    (run / "steps.csv").write_text(steps[0] + steps[1].replace("0,", "x,", 1) + "".join(steps[2:]))
    refused(run, message="step 'x' is not int")
    shutil.copy(made / "steps.csv", run / "steps.csv")
    calls = (run / "llm_calls.jsonl").read_text()
    (run / "llm_calls.jsonl").write_text("[1]" + calls[3:])
    refused(run, message="llm_calls.jsonl line 1")


def test_a_bad_steps_value_is_refused_before_anything_changes(run):
    refused(run, "--steps", "-1", message="loop.steps must be in [0, 1000000], got -1")
    refused(run, "--max-cost", "0", message="loop.max_cost must be > 0")


def test_a_group_keeps_a_repeat_folder_holding_user_data(tmp_path):
    group = tmp_path / "linreg" / "g"
    made = make_run(tmp_path / "one")
    group.mkdir(parents=True)
    (group / "group.json").write_text(json.dumps({"task": "linreg", "overrides": {"loop.steps": 0}, "seeds": [0],
                                                  "instances": None, "runs": ["seed0"]}))
    shutil.copytree(made, group / "seed0")
    (group / "seed0" / "state.json").unlink()  # a finished run's logs without its state: someone's data
    before = snapshot(group)
    done = opro("run", "--resume", str(group), "--quiet")
    assert done.code == 2 and len(done.lines) == 1, done
    assert "candidates.csv has content: not an unstarted run" in done.lines[0]
    assert snapshot(group) == before
    for name in ("candidates.csv", "steps.csv", "llm_calls.jsonl", "summary.json"):
        (group / "seed0" / name).unlink()
    (group / "seed0" / "notes.txt").write_text("my notes")  # beside what an unstarted run holds
    done = opro("run", "--resume", str(group), "--quiet")
    assert done.code == 2 and "holds notes.txt: not an unstarted run" in done.lines[0], done
    assert (group / "seed0" / "notes.txt").read_text() == "my notes"


def test_only_an_unstarted_run_folder_is_removed(tmp_path):
    run = RunDir.create(tmp_path, "linreg", "r", {"config": {"seed": 0}})
    (run.path / "state.json").unlink()  # killed before its first state.json
    remove_unstarted(run.path)
    assert not run.path.exists()
    for extra in ("candidates.csv", "config.json"):
        run = RunDir.create(tmp_path, "linreg", "r", {"config": {"seed": 0}})
        (run.path / "state.json").unlink()
        with open(run.path / extra, "a") as handle:
            handle.write("0,0,0,kept")
        before = snapshot(run.path)
        with pytest.raises(Exception, match="not an unstarted run"):
            remove_unstarted(run.path)
        assert snapshot(run.path) == before
        shutil.rmtree(run.path)


def test_an_optimum_of_zero_reports_the_difference_not_a_gap(tmp_path, shared_data):
    instance = tmp_path / "one.tsp"
    instance.write_text("NAME : one\nTYPE : TSP\nDIMENSION : 1\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n"
                        "1 0 0\nEOF\n")
    path = make_run(tmp_path, "tsp", 0, **{"problem.instance": str(instance)})
    summary = json.loads((path / "summary.json").read_text())
    assert summary["optimum"] == 0 and summary["gap_percent"] is None and summary["gap_absolute"] == 0
    done = opro("run", "--resume", str(path), "--quiet")
    assert done.code == 0, done
    assert "optimum 0 (difference 0)" in done.stdout
    four = tmp_path / "four.tsp"  # four cities on one point: every tour is optimal, of length 0
    four.write_text("NAME : four\nTYPE : TSP\nDIMENSION : 4\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n"
                    + "".join(f"{i} 5 5\n" for i in range(1, 5)) + "EOF\n")
    same = make_run(tmp_path / "same", "tsp", 0, **{"problem.instance": str(four)})
    assert json.loads((same / "summary.json").read_text())["gap_absolute"] == 0
