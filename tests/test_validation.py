"""Validation during the run (paper §5.4): `eval_interval`, the validation split, the new CSV columns and the
train/validation/test curve. The scorer is `LevelScorerLLM`, a deterministic stand-in (no model)."""

from __future__ import annotations

import pandas as pd
import pytest

from opro.config import build_config
from opro.errors import OproError
from opro.plots import validation_curve
from opro.problems.prompt import PromptOptimization
from opro.prompting.data import split_indices, split_with_validation
from opro.results import RunDir
from opro.runner import resume_run, start_run
from tests.artifacts import assert_plot
from tests.doubles import LevelScorerLLM, ScriptedLLM

PROPOSALS = ["<INS>Think!</INS>", "<INS>Think! Really!</INS>", "<INS>Think! Really! Now!</INS>",
             "<INS>Go! Go! Go! Go!</INS>"]
TINY = {"problem.mmlu_task": "abstract_algebra", "problem.train_ratio": 1 / 3, "problem.validation_ratio": 1 / 3,
        "problem.eval_interval": 1, "problem.eval_test": True, "problem.score_cache": False, "loop.steps": 3,
        "loop.candidates_per_step": 2, "loop.resample_rounds": 0, "loop.stop_at_optimum": False,
        "optimizer.cache": False}


@pytest.fixture
def level_scorer(monkeypatch, shared_data):
    """Every scorer LLM a run builds is a LevelScorerLLM over abstract algebra."""
    from opro.prompting.data import load_mmlu

    examples = load_mmlu("abstract_algebra", str(shared_data / "mmlu"))
    monkeypatch.setattr("opro.runner.build_llm_from", lambda options, api_key=None: LevelScorerLLM(examples))


def _run(tmp_path, shared_data, **changes):
    config = build_config("mmlu", {**TINY, "problem.data": str(shared_data / "mmlu"),
                                   "results_root": str(tmp_path), **changes})
    return start_run(config, run_id="r", optimizer=ScriptedLLM(PROPOSALS))


def test_split_with_validation_keeps_the_training_split():
    for n, ratio in ((7473, 0.035), (250, 0.2), (100, 1.0)):
        train, validation, rest = split_with_validation(n, ratio, 0.0, 0)
        assert (train, rest) == split_indices(n, ratio, 0) and validation == []
    train, validation, rest = split_with_validation(99, 1 / 3, 1 / 3, 0)
    assert (len(train), len(validation), len(rest)) == (33, 33, 33)
    assert not set(train) & set(validation) and sorted(train + validation + rest) == list(range(99))
    with pytest.raises(OproError, match="validation_ratio"):
        split_with_validation(10, 0.8, 0.3, 0)


def test_eval_interval_needs_a_validation_split():
    with pytest.raises(OproError, match="validation_ratio"):
        PromptOptimization.check_settings({**_defaults(), "eval_interval": 3})


def _defaults():
    import dataclasses

    return {f.name: f.default for f in dataclasses.fields(PromptOptimization)
            if f.default is not dataclasses.MISSING}


def test_a_run_with_eval_interval_1_records_and_plots_validation(tmp_path, shared_data, level_scorer):
    run, summary = _run(tmp_path, shared_data)
    steps = pd.read_csv(run.path / "steps.csv")
    index = pd.read_csv(run.path / "instructions.csv", keep_default_na=False)
    assert list(steps.columns[-3:]) == ["validation_mean", "validation_of_best", "test_of_best"]
    assert steps["validation_of_best"].notna().all() and steps["test_of_best"].notna().all()
    assert index["validation_score"].astype(float).between(0, 100).all() and len(index) == 5  # 1 initial, 4 new
    assert steps["validation_of_best"].iloc[-1] > steps["validation_of_best"].iloc[0]  # "!!!!" beats none
    best = max(index.itertuples(), key=lambda r: r.score)
    assert steps["validation_of_best"].iloc[-1] == pytest.approx(float(best.validation_score))
    figure = validation_curve(run.path, path=tmp_path / "curve.png")
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels[:3] == ["train (best so far)", "validation (of the best)", "test (of the best)"]
    assert_plot(tmp_path / "curve.png")
    from opro.report import write_report

    page = write_report(tmp_path, tmp_path / "report.html").read_text()
    assert "validation and test accuracy against step" in page
    # the run resumes with its extra columns: the header is checked and kept
    resumed, _ = resume_run(run.path, {"steps": 4})
    again = pd.read_csv(resumed.path / "steps.csv")
    assert len(again) == 5 and list(again.columns) == list(steps.columns)


def test_eval_every_third_step_as_the_reference(tmp_path, shared_data, level_scorer):
    run, _ = _run(tmp_path, shared_data, **{"problem.eval_interval": 3, "problem.eval_test": False,
                                            "loop.steps": 4})
    steps = pd.read_csv(run.path / "steps.csv")
    assert list(steps.columns[-2:]) == ["validation_mean", "validation_of_best"]
    assert steps["validation_of_best"].notna().tolist() == [True, True, False, False, True]  # 0, 1, 4


def test_validation_off_leaves_the_files_as_before(tmp_path, shared_data, level_scorer):
    run, _ = _run(tmp_path, shared_data, **{"problem.eval_interval": 0, "problem.eval_test": False,
                                            "problem.validation_ratio": 0.0})
    from opro.prompting.records import INSTRUCTION_COLUMNS
    from opro.results import STEP_COLUMNS

    # no validation columns; a prompt run's steps.csv always ends with its scorer calls (the budget's count)
    assert (run.path / "steps.csv").read_text().splitlines()[0] == ",".join([*STEP_COLUMNS, "scorer_calls"])
    assert (run.path / "instructions.csv").read_text().splitlines()[0] == ",".join(INSTRUCTION_COLUMNS)
    assert RunDir.open(run.path).step_extras == ("scorer_calls",)
    assert not (run.path / "few_shot.csv").exists()


# ---- §5.3 knobs: plain settings a sweep crosses -----------------------------------------------------------

def test_a_sweep_crosses_instructions_per_step_at_a_fixed_evaluation_budget():
    from opro.sweep import plan_cells

    spec = {"task": "mmlu", "set": {"loop.max_evaluated": 16, "loop.steps": 1000},
            "axes": {"loop.candidates_per_step": [1, 2, 4, 8, 16], "loop.temperature": [0.5, 1.0],
                     "problem.initial_instructions": [["Let's solve the problem."], [""]]}}
    cells = plan_cells(spec)
    assert len(cells) == 5 * 2 * 2 and len({c.id for c in cells}) == 20
    assert cells[0].overrides["loop.max_evaluated"] == 16 and cells[0].values["problem.initial_instructions"] == [
        "Let's solve the problem."]
    assert {c.values["loop.candidates_per_step"] for c in cells} == {1, 2, 4, 8, 16}


def test_max_evaluated_stops_at_the_step_boundary(tmp_path, shared_data, level_scorer):
    run, summary = _run(tmp_path, shared_data, **{"loop.max_evaluated": 3, "loop.steps": 10,
                                                  "problem.eval_interval": 0, "problem.eval_test": False})
    steps = pd.read_csv(run.path / "steps.csv")
    assert summary["stop_reason"] == "budget" and steps["step"].tolist() == [0, 1, 2]  # 2 + 2 new >= 3
    assert steps["n_new"][1:].sum() == 4


def test_resume_drops_the_rows_of_a_step_cut_short(tmp_path, shared_data, level_scorer):
    run, _ = _run(tmp_path, shared_data)
    index = run.path / "instructions.csv"
    whole = index.read_bytes()
    rows = whole.splitlines(keepends=True)
    # a kill in step 4: one complete row of that step, then one cut short (no line end)
    index.write_bytes(whole + b"4" + rows[-1][1:] + b'4,0123456789abcdef,"half an\ninstruc')
    resumed, _ = resume_run(run.path, {"steps": 4})
    after = pd.read_csv(index, keep_default_na=False)
    assert index.read_bytes().startswith(whole)  # the completed steps' rows, byte for byte
    assert not after.duplicated(["instruction_id"]).any()  # the copied row is gone: no instruction twice
    assert "half an" not in index.read_text() and after["step"].tolist() == [0, 1, 1, 2, 2, 4]
