"""MMLU: the reference CSV layout, the categories, the preset's split, the hub path offline, and `opro run` /
`opro eval --task mmlu` end to end with scripted LLMs (no model)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opro.cli import main
from opro.config import build_config
from opro.errors import OproError
from opro.problems import build_problem
from opro.prompting.data import (
    MMLU_CATEGORIES,
    MMLU_SUBCATEGORIES,
    MMLU_SUBJECTS,
    load_examples,
    load_mmlu,
    mmlu_subjects,
)
from opro.prompting.extract import extract_answer, is_correct
from tests.doubles import LevelScorerLLM, ScriptedLLM


def test_the_reference_layout_and_question_format(shared_data):
    examples = load_mmlu("abstract_algebra", str(shared_data / "mmlu"))
    assert len(examples) == 100 and load_mmlu("abstract_algebra", str(shared_data))[0] == examples[0]
    first = examples[0]
    assert first.question == ("Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q."
                              "\n(A) 0\n(B) 4\n(C) 2\n(D) 6\nWhat's the answer in (A) (B) (C) (D)?")
    assert (first.answer, first.kind) == ("(B)", "choice") and first.uid.startswith("mmlu-abstract_algebra/test/0/")
    assert load_examples("mmlu", "all", str(shared_data / "mmlu" / "test"), "abstract_algebra") == examples
    # the project's choice scoring reads MMLU answers (a letter, or the option's text)
    assert is_correct(extract_answer("The answer is (B).", "choice"), first.answer, "choice", first.question)
    assert not is_correct(extract_answer("The answer is (C).", "choice"), first.answer, "choice", first.question)


def test_categories_group_the_57_subjects_as_the_reference(shared_data):
    assert len(MMLU_SUBJECTS) == 57 == len({s for v in MMLU_SUBCATEGORIES.values() for s in v})
    files = {p.name.removesuffix("_test.csv") for p in (shared_data / "mmlu" / "test").iterdir()}
    assert files == set(MMLU_SUBJECTS)
    by_category = {c: mmlu_subjects(c) for c in MMLU_CATEGORIES}
    assert sorted(s for v in by_category.values() for s in v) == sorted(MMLU_SUBJECTS)  # each in one category
    assert len(by_category["STEM"]) == 18 and "machine_learning" in by_category["STEM"]
    assert "professional_law" in by_category["humanities"] and "sociology" in by_category["social sciences"]
    assert "virology" in by_category["other (business, health, misc.)"]
    with pytest.raises(OproError, match="unknown MMLU task"):
        mmlu_subjects("astrology")


def test_the_preset_splits_80_20_and_tests_on_the_whole_category(shared_data):
    config = build_config("mmlu", {"problem.data": str(shared_data / "mmlu")})
    problem = build_problem(config.problem, dict(config.problem_settings), 0)
    assert (len(problem.train), len(problem.validation), len(problem.examples("test"))) == (2414, 603, 3018)
    assert not {e.uid for e in problem.train} & {e.uid for e in problem.validation}
    assert problem.prompt_fields()["task_description"] == "STEM"  # the reference's task description
    thirds = build_problem("mmlu", {"data": str(shared_data), "mmlu_task": "abstract_algebra",
                                    "train_ratio": 1 / 3, "validation_ratio": 1 / 3}, 0)
    assert (len(thirds.train), len(thirds.validation), len(thirds.examples("test"))) == (33, 33, 34)
    assert thirds.prompt_fields()["task_description"] == "abstract algebra"


def test_offline_without_data_is_a_one_line_error(tmp_path):
    with pytest.raises(OproError, match="cais/mmlu abstract_algebra.*--data PATH"):
        load_mmlu("abstract_algebra")  # tests run with HF_HUB_OFFLINE=1: the hub fails at once
    with pytest.raises(OproError, match="no MMLU data for abstract_algebra"):
        load_mmlu("abstract_algebra", str(tmp_path))
    (tmp_path / "abstract_algebra_test.csv").write_text("What?,1,2,3\n")
    with pytest.raises(OproError, match="4 columns"):
        load_mmlu("abstract_algebra", str(tmp_path))
    (tmp_path / "abstract_algebra_test.csv").write_text("What?,1,2,3,4,E\n")
    with pytest.raises(OproError, match="row 1"):
        load_mmlu("abstract_algebra", str(tmp_path))
    with pytest.raises(OproError, match="mmlu_task"):
        build_problem("gsm8k", {"dataset": "mmlu"}, 0)


@pytest.fixture
def scripted(monkeypatch, shared_data):
    """The first LLM a command builds (the scorer) is a LevelScorerLLM; the next ones replay proposals."""
    examples = load_mmlu("abstract_algebra", str(shared_data / "mmlu"))
    built = []

    def build(options, api_key=None):
        built.append(LevelScorerLLM(examples) if not built else ScriptedLLM(["<INS>Think! Twice!</INS>"]))
        return built[-1]

    monkeypatch.setattr("opro.runner.build_llm_from", build)
    return built


def _main(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 0


def test_opro_run_and_eval_on_mmlu(tmp_path, shared_data, scripted, capsys):
    data = str(shared_data / "mmlu")
    _main(["run", "--task", "mmlu", "--data", data, "--steps", "1", "--results", str(tmp_path), "--run-id", "r",
          "--set", "problem.mmlu_task=abstract_algebra", "--set", "problem.train_limit=10",
          "--set", "problem.validation_limit=5", "--set", "problem.score_cache=false",
          "--set", "loop.candidates_per_step=1"])
    run = tmp_path / "mmlu" / "r"
    steps = pd.read_csv(run / "steps.csv")
    assert steps["validation_of_best"].notna().tolist() == [True, True]  # eval_interval = 3: steps 0 and 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_solution"] == "Think! Twice!" and summary["instance"]["n_validation"] == 5
    scripted.clear()
    _main(["eval", "--run", str(run), "--split", "validation", "--limit", "5"])
    rows = pd.read_csv(run / "eval-validation" / "eval.csv")
    assert rows["n"].tolist() == [5] and rows["dataset"].tolist() == ["mmlu"]
    scripted.clear()
    _main(["eval", "--task", "mmlu", "--data", data, "--set", "problem.mmlu_task=abstract_algebra",
          "--set", "problem.score_cache=false", "--instruction", "Go!", "--limit", "4", "--out", str(tmp_path / "e")])
    assert pd.read_csv(tmp_path / "e" / "eval.csv")["n"].tolist() == [4]


def test_run_without_data_offline_is_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--task", "mmlu", "--results", str(tmp_path)])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2 and stderr.count("\n") == 1 and "cais/mmlu" in stderr and "--data PATH" in stderr
