"""Few-shot exemplar selection (the reference's four criteria next to "wrong") and the reference switches that
score instructions on a step's exemplars (few_shot.csv). The scorer is the deterministic LevelScorerLLM."""

from __future__ import annotations

import pandas as pd
import pytest

from opro.errors import OproError
from opro.problems import build_problem
from opro.problems.prompt import PromptOptimization
from opro.prompting.data import load_mmlu
from tests.doubles import LevelScorerLLM


def _problem(shared_data, **settings) -> PromptOptimization:
    return build_problem("mmlu", {"data": str(shared_data / "mmlu"), "mmlu_task": "abstract_algebra",
                                  "train_limit": 8, "validation_ratio": 0.0, "score_cache": False, **settings}, 0)


def test_random_and_constant_are_seeded(shared_data):
    random = _problem(shared_data, exemplar_selection="random")
    picks = [random.pick_exemplars(step, []) for step in (1, 2, 3)]
    assert all(p == sorted(p) and len(set(p)) == 3 for p in picks) and len({tuple(p) for p in picks}) > 1
    assert random.pick_exemplars(2, []) == picks[1]
    constant = _problem(shared_data, exemplar_selection="constant")
    assert constant.pick_exemplars(1, []) == constant.pick_exemplars(7, []) == random.pick_exemplars(0, [])
    other_seed = build_problem("mmlu", {"data": str(shared_data / "mmlu"), "mmlu_task": "abstract_algebra",
                                        "train_limit": 8, "exemplar_selection": "constant"}, 5)
    assert other_seed.pick_exemplars(1, []) != constant.pick_exemplars(1, [])  # seeded by the run seed


def test_current_most_frequent_follows_the_shown_instructions(shared_data):
    problem = _problem(shared_data, exemplar_selection="current_most_frequent")
    right = (True,) * 8
    problem.correct = {"a": (False, False, False, False, True, True, True, True),
                       "b": (False, False, False, False, False, True, True, True), "c": right}
    tied = problem.pick_exemplars(1, ["a", "b"])  # 0-3 missed by both: a seeded pick of three of them
    assert len(tied) == 3 and set(tied) <= {0, 1, 2, 3} and tied == sorted(tied)
    assert problem.pick_exemplars(1, ["a", "b"]) == tied and problem.pick_exemplars(1, ["b"]) != [5, 6, 7]
    problem.correct["d"] = (True, False, True, True, True, True, True, False)
    # fewer than three missed by the most: the most missed first, in that order (not sorted)
    assert problem.pick_exemplars(1, ["b", "d"]) == [1, 0, 2]
    assert problem.pick_exemplars(1, ["c"]) == []  # nothing missed: no exemplars, as the reference
    assert problem.pick_exemplars(1, ["b"]) == sorted(problem.pick_exemplars(1, ["b"]))


def test_accumulative_most_frequent_counts_every_scored_instruction(shared_data):
    problem = _problem(shared_data, exemplar_selection="accumulative_most_frequent")
    problem.correct = {"a": (True, True, False, True, True, True, True, True),
                       "b": (True, False, False, True, True, True, True, True)}
    assert problem.pick_exemplars(1, []) == [2, 1]  # at most three missed: all of them, most missed first
    problem.correct["c"] = (False, True, True, True, False, True, True, False)
    picks = problem.pick_exemplars(4, [])  # five missed: a seeded pick among all of them, sorted
    assert len(picks) == 3 and set(picks) <= {0, 1, 2, 4, 7} and picks == sorted(picks)
    assert problem.pick_exemplars(4, ["b"]) == picks  # the shown instructions do not matter


def test_unknown_criterion_is_refused():
    with pytest.raises(OproError, match="exemplar_selection must be one of"):
        PromptOptimization.check_settings({**{"dataset": "gsm8k", "position": "Q_begin", "meta_prompt_type":
                                              "both_instructions_and_exemplars", "eval_interval": 0,
                                              "validation_ratio": 0.0, "mmlu_task": None},
                                           "exemplar_selection": "most_wrong"})


def test_instructions_scored_on_the_exemplars(shared_data, tmp_path):
    problem = _problem(shared_data, evaluate_generated_ins_on_few_shot=True, evaluate_old_ins_on_few_shot=True)
    problem.use_scorer(LevelScorerLLM(load_mmlu("abstract_algebra", str(shared_data / "mmlu"))))
    problem.attach_run(tmp_path)
    problem.score(["Start."])  # step 0: no exemplars yet, nothing on few_shot.csv
    problem.step_fields(1, [("Start.", problem.full_scores["Start."])])
    problem.score(["Go! Go! Go! Go!"])
    rows = pd.read_csv(tmp_path / "few_shot.csv")
    assert rows["kind"].tolist() == ["old", "generated"] and (rows["step"] == 1).all() and (rows["n"] == 3).all()
    assert rows["score"].tolist() == [0.0, 100.0]  # the level scorer: "Start." has no "!", four "!" always right
    plain = _problem(shared_data)
    (tmp_path / "plain").mkdir()
    plain.attach_run(tmp_path / "plain")
    assert not (tmp_path / "plain" / "few_shot.csv").exists()
