"""Prompt-optimization data: local layouts, splits, offline errors; the meta-prompt; screening; the score cache.

The scorer here is `RuleScorerLLM`, a scripted stand-in that answers right exactly when the instruction
contains "GOOD": these tests are about the bookkeeping (screening decisions, call counting, the cache).
Real scoring with the embedded model is in tests/test_prompt_run.py.
"""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from opro.cli import main
from opro.errors import OproError
from opro.metaprompt import render_meta_prompt, shown_solutions
from opro.problems.prompt import PromptOptimization
from opro.prompting.data import load_examples, split_indices
from opro.prompting.scoring import InstructionScorer, ScoreCache
from opro.prompting.screen import kth_best, passes_screen
from tests.doubles import RuleScorerLLM, rule_scored_problem


def test_local_layouts(shared_data):
    train = load_examples("gsm8k", "train", str(shared_data))
    test = load_examples("gsm8k", "test", str(shared_data / "gsm8k"))
    assert (len(train), len(test)) == (7473, 1319)
    assert test[0].answer == "18" and test[0].kind == "number" and test[0].uid.startswith("gsm8k/test/0/")
    bbh = load_examples("bbh", "all", str(shared_data), "date_understanding")
    assert len(bbh) == 250 and bbh[0].kind == "choice" and bbh[0].answer.startswith("(")
    assert load_examples("bbh", "all", str(shared_data / "bbh" / "navigate.json"), "navigate")[0].kind == "bool"
    multiarith = load_examples("multiarith", "test", str(shared_data))
    assert len(multiarith) == 600 and multiarith[0].answer == "39"
    aqua = load_examples("aqua", "test", str(shared_data))
    assert len(aqua) == 254 and aqua[0].kind == "choice" and "(E)" in aqua[0].question


def test_jsonl_and_parquet_in_the_hub_layout(tmp_path):
    rows = [{"question": "Tom has 3 apples and buys 2. How many?", "answer": "3 + 2 = 5\n#### 5"},
            {"question": "What is 1,000 + 200?", "answer": "#### 1,200"}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pd.DataFrame(rows).to_parquet(tmp_path / "test.parquet")
    from_jsonl = load_examples("gsm8k", "train", str(tmp_path))
    from_parquet = load_examples("gsm8k", "test", str(tmp_path / "test.parquet"))
    assert [e.answer for e in from_jsonl] == [e.answer for e in from_parquet] == ["5", "1200"]


def test_splits_follow_the_paper_and_are_seeded(shared_data):
    train, rest = split_indices(7473, 0.035, 0)
    assert len(train) == 261 and not set(train) & set(rest) and len(train) + len(rest) == 7473
    assert split_indices(7473, 0.035, 0) == (train, rest) and split_indices(7473, 0.035, 1)[0] != train
    problem = PromptOptimization(dataset="bbh", bbh_task="navigate", data=str(shared_data), train_ratio=0.2)
    assert (len(problem.examples("train")), len(problem.examples("test"))) == (50, 200)
    assert not {e.uid for e in problem.examples("train")} & {e.uid for e in problem.examples("test")}


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(OproError, match="--data PATH"):
        load_examples("gsm8k", "train")  # tests run with HF_HUB_OFFLINE=1: the hub fails at once
    with pytest.raises(OproError, match="no gsm8k train data"):
        load_examples("gsm8k", "train", str(tmp_path))
    with pytest.raises(OproError, match="unknown BBH task"):
        load_examples("bbh", "all", str(tmp_path), "chess")
    with pytest.raises(SystemExit) as stopped:
        main(["eval", "--task", "gsm8k"])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2 and stderr.count("\n") == 1 and "--data PATH" in stderr


def test_meta_prompt_shows_top_instructions_ascending_with_exemplars(shared_data):
    problem = PromptOptimization(data=str(shared_data), train_limit=10, shown_threshold=20.0, seed=3)
    history = [("Solve it.", 30.0), ("Think.", 61.25), ("Guess.", 10.0), ("Check twice.", 45.0)]
    shown = shown_solutions(problem, history, top_k=3)
    assert [s for s, _ in shown] == ["Solve it.", "Check twice.", "Think."]  # ascending, best last
    meta, entry = "{history}\n--\n{exemplars}", "\ntext:\n{solution}\nscore:\n{score}\n"
    text = render_meta_prompt(problem, shown, meta, entry, problem.step_fields(1, shown))
    assert "score:\n61\n" in text and "Guess." not in text  # integer buckets; below threshold hidden
    assert text.count("input:\nQ: <INS>\n") == 3 and text.count("\nGround truth answer:\n") == 3
    assert problem.step_fields(1, shown) == problem.step_fields(1, shown) != problem.step_fields(2, shown)
    hidden = shown_solutions(PromptOptimization(data=str(shared_data), train_limit=2, shown_threshold=50.0),
                             history, 3)
    assert [s for s, _ in hidden] == ["Think."]


def test_wrong_answer_exemplars_are_the_most_missed(shared_data):
    problem = PromptOptimization(data=str(shared_data), train_limit=6, exemplar_selection="wrong")
    problem.correct = {"a": (True, False, False, True, True, True), "b": (True, False, True, False, True, True)}
    assert problem.pick_exemplars(1, ["a", "b"]) == [1, 2, 3]  # question 1 missed twice, then 2 and 3


def test_screening_skips_hopeless_instructions(shared_data, tmp_path):
    instructions = ["GOOD one", "GOOD two", "bad one", "bad two", "GOOD three", "bad three"]
    plain, plain_llm = rule_scored_problem(shared_data, tmp_path / "plain.sqlite")
    full = plain.score(instructions)
    assert full == [100.0, 100.0, 0.0, 0.0, 100.0, 0.0] and plain_llm.requests == 6 * 20
    screened, llm = rule_scored_problem(shared_data, tmp_path / "screened.sqlite", screen=True, screen_fraction=0.1,
                                  screen_top_k=2)
    scores = screened.score(instructions)
    assert max(scores) == max(full)  # the same best train accuracy
    # the bad ones cost only the 2-question subset; a good one's subset answers are reused from the cache
    assert screened.n_screened_out == 3 and llm.requests == 3 * 20 + 3 * 2
    assert scores[2] == 0.0 and scores[4] == 100.0


def test_screening_rule():
    assert passes_screen(1, None) and passes_screen(2, 2) and not passes_screen(1, 2) and passes_screen(1, 2, 1)
    assert kth_best({"a": 10.0, "b": 30.0, "c": 30.0}, 2) == "c" and kth_best({"a": 1.0}, 2) is None


def test_score_cache_avoids_repeats_and_takes_concurrent_writers(shared_data, tmp_path):
    examples = load_examples("gsm8k", "test", str(shared_data))[:12]
    llm = RuleScorerLLM({e.question: e.answer for e in examples})
    path = tmp_path / "scores.sqlite"
    scorers = [InstructionScorer(llm, cache=ScoreCache(path)) for _ in range(3)]
    threads = [threading.Thread(target=s.evaluate, args=(f"GOOD {k % 2}", examples)) for k, s in enumerate(scorers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    again = InstructionScorer(llm, cache=ScoreCache(path))
    for instruction in ("GOOD 0", "GOOD 1"):
        results = again.evaluate(instruction, examples)
        assert all(r.cached and r.correct for r in results)
    assert again.calls == 0 and again.lookups == 24
    other_position = InstructionScorer(llm, position="Q_end", cache=ScoreCache(path))
    other_position.evaluate("GOOD 0", examples[:2])
    assert other_position.calls == 2  # the position is part of the key


def test_instruction_files_and_resume_state(shared_data, tmp_path):
    problem, _ = rule_scored_problem(shared_data, tmp_path / "scores.sqlite", screen=True, screen_top_k=1)
    problem.attach_run(tmp_path)
    problem.score(["GOOD a", "bad b"])
    index = pd.read_csv(tmp_path / "instructions.csv", keep_default_na=False)
    assert index["full"].tolist() == [True, False] and index["n_scored"].tolist() == [20, 2]
    assert index["scorer_calls"].tolist() == [20, 2]
    per_question = pd.read_csv(tmp_path / "instructions" / f"{index['instruction_id'][0]}.csv")
    assert per_question["correct"].all() and len(per_question) == 20
    resumed, _ = rule_scored_problem(shared_data, tmp_path / "scores.sqlite", screen=True, screen_top_k=1)
    resumed.attach_run(tmp_path)
    assert resumed.full_scores == {"GOOD a": 100.0} and resumed.correct["GOOD a"] == (True,) * 20
