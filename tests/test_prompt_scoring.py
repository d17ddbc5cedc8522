"""The scorer's bookkeeping: answers cut at the completion limit, prompting again for the final answer, the
score cache's keys and older entries, the scorer's completion limit.

The scorer is `ScriptedLLM` (tests/scripted_llm.py), which replays fixed texts: these tests are about what
the framework records, not about a model. Real scoring is in tests/test_prompt_run.py.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opro.cli import main
from opro.config import build_config
from opro.problems import build_problem
from opro.problems.prompt import PromptOptimization
from opro.prompting.data import Example
from opro.prompting.evaluate import evaluate_instructions
from opro.prompting.scoring import (
    InstructionScorer,
    ScoreCache,
    scorer_prompt,
    truncated_rate,
    truncation_warning,
)
from tests.doubles import ScriptedLLM

EXAMPLES = [Example(f"toy/test/{i}/0", i, f"What is {i} + {i}?", str(2 * i), "number") for i in range(4)]
LONG = "First I add the two numbers: 20 + 80 + 160 = 260. The answer is 260."  # 16 words


def test_an_answer_cut_at_the_limit_is_recorded_as_such(tmp_path):
    llm = ScriptedLLM(["The answer is 0.", LONG, "The answer is 4.", LONG], cut=True)
    scorer = InstructionScorer(llm, max_tokens=12, cache=ScoreCache(tmp_path / "scores.sqlite"))
    results = scorer.evaluate("", EXAMPLES)
    assert [r.finish_reason for r in results] == ["stop", "length", "stop", "length"]
    assert results[1].raw_answer == "First I add the two numbers: 20 + 80 + 160 ="  # cut mid-derivation
    assert results[1].parsed == "160" and truncated_rate(results) == 0.5
    again = InstructionScorer(llm, max_tokens=12, cache=ScoreCache(tmp_path / "scores.sqlite")).evaluate("", EXAMPLES)
    assert all(r.cached for r in again) and [r.finish_reason for r in again] == [r.finish_reason for r in results]


def test_truncation_warning_above_five_percent():
    assert truncation_warning(0.05, 256) is None
    message = truncation_warning(0.24, 256)
    assert message is not None and "24%" in message and "problem.scorer_max_tokens=256" in message
    assert "\n" not in message and truncation_warning(None) is None


def test_opro_eval_warns_on_cut_answers(shared_data, tmp_path, monkeypatch, capsys):
    import opro.runner

    def scripted(options, api_key=None):
        return ScriptedLLM([LONG], cut=True)

    monkeypatch.setattr(opro.runner, "build_llm_from", scripted)
    with pytest.raises(SystemExit) as done:
        main(["eval", "--task", "gsm8k", "--data", str(shared_data), "--instruction", "Think.", "--limit", "2",
              "--set", "problem.scorer_max_tokens=10", "--set", "problem.score_cache=false", "--out",
              str(tmp_path / "eval")])
    assert done.value.code == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["opro: warning: 100% of the scorer's answers stopped at problem.scorer_max_tokens=10 "
                     "(finish_reason \"length\"), so most of them read as wrong; raise it with --set "
                     "problem.scorer_max_tokens=N"]


def test_score_cache_reads_entries_without_a_finish_reason(tmp_path):
    path = tmp_path / "scores.sqlite"
    scorer = InstructionScorer(ScriptedLLM(["unused"]), max_tokens=5, cache=ScoreCache(path))
    old = {"text": "The answer is 2.", "prompt_tokens": 9, "completion_tokens": 4, "new": False}  # written before
    used_all = {**old, "text": "one two three four five", "completion_tokens": 5}
    scorer.cache.put_many({scorer.key("", EXAMPLES[1]): old, scorer.key("", EXAMPLES[2]): used_all})
    results = scorer.evaluate("", EXAMPLES[1:3], cached_only=True)
    assert [r.correct for r in results] == [True, False] and scorer.calls == 0
    assert [r.finish_reason for r in results] == ["stop", "length"]  # all max_tokens used: taken as cut


def test_score_cache_key_holds_the_completion_limit_and_the_second_prompt():
    llm = ScriptedLLM(["x"])
    keys = {InstructionScorer(llm, max_tokens=m, prompt_again=again).key("Think.", EXAMPLES[0])
            for m in (256, 1024) for again in (False, True)}
    assert len(keys) == 4


def test_prompting_again_for_the_final_answer(tmp_path):
    first = "We add 2 and 2 and double it. Q: What is 3 + 3?"
    llm = ScriptedLLM([first, ": 4.\nThen 5 more."])
    scorer = InstructionScorer(llm, "Q_begin", True, 64, ScoreCache(tmp_path / "scores.sqlite"), prompt_again=True)
    (result,) = scorer.evaluate("Think.", EXAMPLES[2:3])
    prompt = scorer_prompt(EXAMPLES[2].question, "Think.", "Q_begin", True)
    second = llm.requests[1]
    # reference (eval_utils.evaluate_single_instruction): the prompt, the answer up to "Q:", "So the final answer
    # is", decoded for at most 50 tokens
    assert second.messages[0]["content"] == prompt + " We add 2 and 2 and double it. So the final answer is"
    assert second.max_tokens == 50 and second.temperature == 0.0
    assert result.second_answer == ": 4.\nThen 5 more." and result.parsed == "4" and result.correct
    assert scorer.calls == 2 and scorer.completion_tokens == len(first.split()) + 5  # both rounds counted
    assert scorer.prompt_tokens == 20
    plain = InstructionScorer(ScriptedLLM([first]), max_tokens=64).evaluate("Think.", EXAMPLES[2:3])
    assert plain[0].second_answer == "" and plain[0].parsed == "2"  # without it: the last number


def _problem(shared_data, tmp_path, texts, **settings) -> PromptOptimization:
    problem = PromptOptimization(dataset="gsm8k", data=str(shared_data), train_limit=4, score_cache=str(
        tmp_path / "scores.sqlite"), **settings)
    problem.use_scorer(ScriptedLLM(texts, cut=True))
    return problem


def test_truncated_share_in_instructions_csv_and_the_summary(shared_data, tmp_path):
    problem = _problem(shared_data, tmp_path, [LONG, "The answer is 1.", "The answer is 2.", "The answer is 3."],
                       scorer_max_tokens=10)
    assert "scorer_truncated_rate" not in problem.describe()  # not before a run (config.json's instance)
    problem.attach_run(tmp_path)
    problem.score(["Think."])
    index = pd.read_csv(tmp_path / "instructions.csv", keep_default_na=False)
    assert index["truncated_rate"].tolist() == [0.25]
    per_question = pd.read_csv(tmp_path / "instructions" / f"{index['instruction_id'][0]}.csv", keep_default_na=False)
    assert per_question["finish_reason"].tolist() == ["length", "stop", "stop", "stop"]
    assert problem.describe()["scorer_truncated_rate"] == 0.25


def test_a_resumed_run_keeps_its_instructions_csv_columns(shared_data, tmp_path):
    old = "step,instruction_id,instruction,score,n_scored,full,screened_out,scorer_calls,scorer_prompt_tokens," \
          "scorer_completion_tokens\n"
    (tmp_path / "instructions.csv").write_text(old)  # a run started before truncated_rate
    problem = _problem(shared_data, tmp_path, ["The answer is 1."])
    problem.attach_run(tmp_path)
    problem.score(["Think."])
    index = pd.read_csv(tmp_path / "instructions.csv", keep_default_na=False)
    assert list(index.columns) == old.strip().split(",") and len(index) == 1


def test_eval_csv_reports_the_truncated_share(shared_data, tmp_path):
    problem = _problem(shared_data, tmp_path, [LONG, LONG, "The answer is 2.", "The answer is 3."],
                       scorer_max_tokens=10)
    rows = evaluate_instructions(problem, [("given", "")], "train", None, tmp_path / "eval")
    table = pd.read_csv(tmp_path / "eval" / "eval.csv", keep_default_na=False)
    assert rows[0].truncated_rate == 0.5 and table["truncated_rate"].tolist() == [0.5]


def test_prompting_again_is_a_problem_setting(shared_data, tmp_path):
    problem = _problem(shared_data, tmp_path, ["Some work", "18"], extract_final_answer_by_prompting_again=True)
    problem.score(["Think."])
    assert problem.scorer.calls == 8 and problem.describe()["scorer_calls"] == 8


@pytest.mark.parametrize("task", ["gsm8k", "bbh"])
def test_scorer_completion_limit_is_the_references(task, shared_data, tmp_path):
    # reference: optimize_instructions.py / evaluate_instructions.py give both scorer families 1024 tokens,
    # and answer each question once (no second prompt to extract the final answer)
    config = build_config(task)
    problem = build_problem(config.problem, {**config.problem_settings, "data": str(shared_data), "train_limit": 3,
                                             "score_cache": str(tmp_path / "scores.sqlite")}, 0)
    scorer = ScriptedLLM(["The answer is 1."])
    problem.use_scorer(scorer)
    problem.score(["Think."])
    assert [r.max_tokens for r in scorer.requests] == [1024] * 3


def test_opro_run_reports_and_warns_on_cut_answers(shared_data, tmp_path, monkeypatch, capsys):
    import opro.runner

    built = []

    def scripted(options, api_key=None):  # the scorer is built first, then the optimizer
        built.append(ScriptedLLM([LONG], cut=True) if not built else ScriptedLLM(["<INS>Think twice.</INS>"]))
        return built[-1]

    monkeypatch.setattr(opro.runner, "build_llm_from", scripted)
    with pytest.raises(SystemExit) as done:
        main(["run", "--task", "gsm8k", "--data", str(shared_data), "--steps", "1", "--candidates", "1", "--quiet",
              "--results", str(tmp_path), "--run-id", "r", "--set", "problem.train_limit=2",
              "--set", "problem.scorer_max_tokens=10", "--set", "problem.score_cache=false"])
    assert done.value.code == 0
    summary = json.loads((tmp_path / "gsm8k" / "r" / "summary.json").read_text())
    assert summary["instance"]["scorer_truncated_rate"] == 1.0
    assert "scorer_truncated_rate" not in json.loads((tmp_path / "gsm8k" / "r" / "config.json").read_text())["instance"]
    assert capsys.readouterr().err.count("opro: warning: 100% of the scorer's answers stopped") == 1
