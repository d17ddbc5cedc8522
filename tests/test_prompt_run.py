"""Real prompt optimization and evaluation with the embedded model (SmolLM2-135M) as optimizer and scorer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opro.cli import main
from opro.config import build_config
from opro.llm import build_llm
from opro.prompting.data import load_examples
from opro.prompting.scoring import InstructionScorer, ScoreCache
from opro.runner import start_run
from tests.doubles import CountingLLM

pytestmark = pytest.mark.slow

TINY = {"loop.steps": 2, "loop.candidates_per_step": 2, "loop.max_tokens": 16, "loop.resample_rounds": 0,
        "problem.train_limit": 2, "problem.scorer_max_tokens": 8, "problem.num_exemplars": 1,
        "optimizer.cache_prompt": True, "optimizer.threads": 1, "loop.stop_at_optimum": False}


def _check_run(run, summary, n_train: int, n_proposals: int, validation_calls: int = 0) -> None:
    steps = pd.read_csv(run.path / "steps.csv")
    candidates = pd.read_csv(run.path / "candidates.csv", keep_default_na=False)
    index = pd.read_csv(run.path / "instructions.csv", keep_default_na=False)
    assert steps["step"].tolist() == [0, 1, 2]
    assert (candidates["step"] > 0).sum() == n_proposals
    scored = candidates[(candidates["valid"].astype(str) == "True") & (candidates["duplicate"].astype(str) == "False")]
    assert sorted(index["instruction"]) == sorted(scored["solution"])  # every new instruction scored once
    for row in index.itertuples():
        results = pd.read_csv(run.path / "instructions" / f"{row.instruction_id}.csv")
        assert len(results) == row.n_scored == n_train
        assert row.score == pytest.approx(100 * results["correct"].mean())
    assert steps["best_so_far"].is_monotonic_increasing
    instance = summary["instance"]
    assert instance["scorer"]["spec"] == "llamacpp:smollm2"  # no --scorer: the optimizer's model scores
    # validation answers count in the run's totals, not in instructions.csv's per-instruction calls
    assert instance["scorer_calls"] == index["scorer_calls"].sum() + validation_calls > 0
    meta = json.loads((run.path / "llm_calls.jsonl").read_text().splitlines()[-1])["messages"][0]["content"]
    assert meta.count("input:\n") == 1 and "score:\n" in meta


def test_gsm8k_prompt_optimization_two_steps(default_model, shared_data, tmp_path):
    config = build_config("gsm8k", {**TINY, "problem.data": str(shared_data), "results_root": str(tmp_path)})
    assert config.scorer is None
    run, summary = start_run(config)
    _check_run(run, summary, 2, 4)
    assert summary["problem"] == "gsm8k" and summary["best_solution"]
    with pytest.raises(SystemExit) as stopped:  # the run's best instruction on the first test question
        main(["eval", "--run", str(run.path), "--split", "test", "--limit", "1"])
    assert stopped.value.code == 0
    table = pd.read_csv(run.path / "eval-test" / "eval.csv", keep_default_na=False)
    assert table["instruction"].tolist() == [summary["best_solution"]] and table["n"].tolist() == [1]
    assert table["scorer_calls"].tolist() == [1] and table["split"].tolist() == ["test"]
    assert json.loads((run.path / "eval-test" / "eval.json").read_text())["n_examples"] == 1


def test_bbh_prompt_optimization_two_steps(default_model, shared_data, tmp_path):
    overrides = {**TINY, "problem.data": str(shared_data / "bbh"), "problem.bbh_task": "navigate",
                 "results_root": str(tmp_path), "seed": 1, "loop.candidates_per_step": 1}
    run, summary = start_run(build_config("bbh", overrides))
    _check_run(run, summary, 2, 2)
    assert summary["instance"]["bbh_task"] == "navigate"


def test_evaluation_cache_avoids_repeat_calls(default_model, shared_data, tmp_path):
    examples = load_examples("gsm8k", "test", str(shared_data))[:2]
    llm = CountingLLM(build_llm("llamacpp:smollm2", {"threads": 1}))  # no LLM-call cache: every request is generated
    path = tmp_path / "scores.sqlite"
    try:
        scorer = InstructionScorer(llm, "Q_begin", True, 8, ScoreCache(path))
        first = [scorer.evaluate(ins, examples) for ins in ("", "Let's think step by step.")]
        assert llm.requests == scorer.calls == 4 and not any(r.cached for rs in first for r in rs)
        again = [scorer.evaluate(ins, examples) for ins in ("", "Let's think step by step.")]
        assert llm.requests == 4  # the same instructions: no new calls
        assert [[r.raw_answer for r in rs] for rs in again] == [[r.raw_answer for r in rs] for rs in first]
        next_run = InstructionScorer(llm, "Q_begin", True, 8, ScoreCache(path))  # a later run, same file
        assert all(r.cached for r in next_run.evaluate("", examples)) and llm.requests == 4
        longer = InstructionScorer(llm, "Q_begin", True, 9, ScoreCache(path))  # other decoding: a miss
        longer.evaluate("", examples[:1])
        assert llm.requests == 5
    finally:
        llm.close()


def test_mmlu_prompt_optimization_with_validation(default_model, shared_data, tmp_path):
    overrides = {**TINY, "problem.data": str(shared_data / "mmlu"), "problem.mmlu_task": "abstract_algebra",
                 "problem.validation_limit": 2, "problem.eval_interval": 1, "results_root": str(tmp_path),
                 "loop.candidates_per_step": 1}
    run, summary = start_run(build_config("mmlu", overrides))
    index = pd.read_csv(run.path / "instructions.csv")
    _check_run(run, summary, 2, 2, validation_calls=2 * len(index))  # each instruction on 2 validation questions
    steps = pd.read_csv(run.path / "steps.csv")
    assert steps["validation_of_best"].between(0, 100).all()  # every step is an evaluation step
    assert index["validation_score"].between(0, 100).all() and index["truncated_rate"].between(0, 1).all()
    results = pd.read_csv(run.path / "instructions" / f"{index['instruction_id'].iloc[0]}.csv")
    assert results["gold"].str.fullmatch(r"\([A-D]\)").all() and "(D)" in results["prompt"].iloc[0]
    assert set(results["finish_reason"]) <= {"stop", "length"}  # 8 scorer tokens: most answers are cut
