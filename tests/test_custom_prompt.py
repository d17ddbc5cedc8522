"""The `prompt` problem: instructions for the user's own data (examples/custom_prompt/: a CSV and a metric
function), its answer checks, and a metric's failures as bad input or as invalid candidates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from opro.problems import build_problem
from opro.scores import Invalid
from tests.cli_inprocess import invoke
from tests.scripted_llm import ScriptedLLM

FIELDS = {"question_field": "query", "answer_field": "expected", "score_cache": False, "num_exemplars": 0}


@pytest.fixture
def project(user_folder) -> Path:
    """A user's folder holding a copy of the example, as the working directory."""
    return user_folder("custom_prompt")


def _scored(settings: dict, answers: list[str]) -> float | Invalid:
    problem = build_problem("prompt", {"data": "capitals.csv", "train_limit": 2, **FIELDS, **settings}, seed=0)
    problem.use_scorer(ScriptedLLM(answers))  # a scripted scorer: the test is about the judging
    try:
        return problem.score(["Answer with the city."])[0]
    finally:
        problem.close()


@pytest.mark.parametrize(("check", "answers", "expected"), [
    ("exact", ["Paris.", "tokyo"], 100.0),           # case and punctuation ignored
    ("exact", ["It is Paris.", "Tokyo"], 50.0),      # exact means the whole first line
    ("contains", ["It is Paris.", "The capital is Tokyo, of course"], 100.0),
])
def test_built_in_answer_checks(project, check, answers, expected):
    problem = build_problem("prompt", {"data": "capitals.csv", **FIELDS}, seed=0)
    train = [e.answer for e in problem.train[:2]]
    problem.close()
    ordered = [a.replace("Paris", train[0]).replace("Tokyo", train[1]).replace("tokyo", train[1].lower())
               for a in answers]
    assert _scored({"answer_check": check}, ordered) == expected


def test_the_users_metric_gives_partial_credit(project):
    problem = build_problem("prompt", {"data": "capitals.csv", **FIELDS}, seed=0)
    first = problem.train[0].answer
    problem.close()
    assert _scored({"metric": "metric:score"}, [f"{first}.", "Somewhere"]) == pytest.approx(75.0)


def test_a_metric_failing_while_scoring_makes_the_instruction_invalid(project):
    (project / "fragile_score.py").write_text("def score(answer, gold):\n    if answer == 'boom':\n"
                                        "        raise ValueError('cannot read')\n    return 1.0\n")
    assert _scored({"metric": "fragile_score:score"}, ["boom", "fine"]) == Invalid(
        "problem.metric fragile_score:score raised ValueError: cannot read")


@pytest.mark.parametrize(("metric", "message"), [
    ("nowhere:score", "cannot import module 'nowhere'"),
    ("metric:missing", "has no function 'missing'"),
    ("bad:score", "returned 2.0; expected a float in [0, 1]"),
])
def test_a_broken_metric_is_one_line_before_any_run_folder(project, metric, message):
    (project / "bad.py").write_text("def score(answer, gold):\n    return 2.0\n")
    outcome = invoke(["run", "--task", "capitals.toml", "--set", f'problem.metric="{metric}"', "--quiet"], project)
    assert outcome.refused_in_one_line, outcome
    assert message in outcome.stderr and not (project / "results").exists()


@pytest.mark.slow
def test_custom_prompt_through_the_command_line(project, default_model):
    outcome = invoke(["run", "--task", "capitals.toml", "--steps", "1", "--run-id", "c0", "--threads", "1",
                      "--max-tokens", "24", "--set", "problem.train_limit=2", "--set", "loop.resample_rounds=0",
                      "--no-cache", "--quiet"], project)
    assert outcome.code == 0, outcome
    run = project / "results" / "capitals" / "c0"
    index = pd.read_csv(run / "instructions.csv", keep_default_na=False)
    assert set(index["n_scored"]) == {2}
    candidates = pd.read_csv(run / "candidates.csv", keep_default_na=False)
    scores = candidates.loc[candidates["valid"], "score"]
    assert ((scores >= 0) & (scores <= 100) & (scores % 25 == 0)).all()  # mean credit of 2 in {0, .5, 1}
