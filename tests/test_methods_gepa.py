"""GEPA (opro/methods/gepa.py) with a scripted reflection LLM and a deterministic scorer (no model): the
reflection prompt and its parsing, the Pareto-front pool, the minibatches and feedback, the scorer-call
budget, resume, the missing extra; and two real steps with the embedded model (slow)."""

from __future__ import annotations

import hashlib
import json
import random

import pandas as pd
import pytest

from opro.config import build_config
from opro.methods.evoprompt import ids
from opro.methods.gepa import GEPA_MINIBATCH, feedback, gepa_state, minibatches
from opro.problems import Invalid
from opro.problems.prompt import MMLUInstructions
from opro.results import CANDIDATE_COLUMNS, STEP_COLUMNS, RunDir
from opro.runner import resume_run, start_run
from tests.doubles import TINY_METHOD_RUN as METHOD_TINY
from tests.doubles import LevelScorerLLM, ReflectingLLM
from tests.tiers import require_extra

require_extra("gepa")

COLUMNS = ["operator", "parents", "minibatch", "prompt_sha"]


TINY = {**METHOD_TINY, "loop.population": 3, "loop.num_initial": 2, "loop.method": "gepa"}


@pytest.fixture
def llms(monkeypatch, shared_data):
    """Every scorer a run builds is a LevelScorerLLM over abstract algebra; every optimizer a ReflectingLLM."""
    from opro.prompting.data import load_mmlu

    examples = load_mmlu("abstract_algebra", str(shared_data / "mmlu"))

    def build(options, api_key=None):
        return LevelScorerLLM(examples) if options.spec == "scorer" else ReflectingLLM()

    monkeypatch.setattr("opro.runner.build_llm_from", build)


def _run(tmp_path, shared_data, optimizer=None, run_id="r", **changes):
    config = build_config("mmlu", {**TINY, "problem.data": str(shared_data / "mmlu"), "results_root": str(tmp_path),
                                   **changes})
    return start_run(config, run_id=run_id, optimizer=optimizer or ReflectingLLM())


def _candidates(run) -> pd.DataFrame:
    return pd.read_csv(run.path / "candidates.csv", keep_default_na=False, dtype=str)


def _results(run, instruction) -> pd.DataFrame:
    return pd.read_csv(run.path / "instructions" / f"{ids(instruction)}.csv", keep_default_na=False, dtype=str)


def test_the_template_is_gepas_and_answers_parse(shared_data):
    from gepa.strategies.instruction_proposal import InstructionProposalSignature

    from opro.methods.evoprompt import template
    from opro.methods.gepa import GEPA

    assert template("gepa-reflection") == InstructionProposalSignature.default_prompt_template
    problem = MMLUInstructions(mmlu_task="abstract_algebra", data=str(shared_data / "mmlu"), train_limit=6)
    method = GEPA(problem, build_config("mmlu", TINY).loop, 0)
    assert method.parse("x\n```\nSort the words.\n```\ny") == "Sort the words."
    assert method.parse("```text\nAdd them.\n```") == "Add them."  # gepa skips a language tag
    assert method.parse("Just this.") == "Just this."  # no block: the whole answer, as gepa reads it
    assert method.parse("``````") == Invalid("empty instruction")
    assert isinstance(method.parse("```\n" + "a" * 600 + "\n```"), Invalid)  # the task's length rule
    assert feedback("(B)", "(C)", False) == ("The generated response is incorrect. The correct answer is '(B)', but "
                                             "the answer read from the response is '(C)'.")
    assert feedback("(B)", "(B)", True) == "The generated response is correct. The correct answer is '(B)'."


def test_the_pareto_front_leaves_out_dominated_instructions():
    from gepa.strategies.candidate_selector import ParetoCandidateSelector

    def results(right):
        return [{"correct": i in right} for i in range(4)]  # as example_results reads instructions/<id>.csv

    # a: right on 0, 1; b: on 2; c: on 0 only (dominated by a); nobody on 3 (all tie there)
    pool = [("a", "", results({0, 1})), ("b", "", results({2})), ("c", ids("a"), results({0}))]
    state = gepa_state(pool)
    assert state.parent_program_for_candidate == [[None], [], [0]]
    selector = ParetoCandidateSelector(random.Random(0))
    drawn = [selector.select_candidate_idx(state) for _ in range(3000)]
    assert 2 not in drawn and set(drawn) == {0, 1}


def test_minibatches_are_gepas_epoch_shuffles():
    batches = minibatches(6, 0, 0, 6)
    assert all(len(b) == GEPA_MINIBATCH for b in batches)
    assert sorted(batches[0] + batches[1]) == list(range(6)) and sorted(batches[2] + batches[3]) == list(range(6))
    assert minibatches(6, 0, 3, 2) == batches[3:5]  # replayed: the same whatever the first iteration asked


def test_gepa_reflects_on_pareto_parents_with_feedback(tmp_path, shared_data, llms):
    llm = ReflectingLLM(empty_every=4)
    run, summary = _run(tmp_path, shared_data, optimizer=llm)
    rows = _candidates(run)
    assert list(rows.columns) == CANDIDATE_COLUMNS + COLUMNS
    initial = rows[rows["step"] == "0"]
    assert initial["solution"].tolist() == ["Solve it!", "Answer."] and set(initial["operator"]) == {"initial"}
    later = rows[rows["step"] != "0"]
    assert set(later["operator"]) == {"reflect"} and {r.temperature for r in llm.requests} == {1.0}
    invalid = later[later["valid"] == "False"]
    assert len(invalid) and set(invalid["invalid_reason"]) == {"empty instruction"}
    calls = [json.loads(line) for line in (run.path / "llm_calls.jsonl").read_text().splitlines()]
    prompts = {hashlib.sha256(c["messages"][0]["content"].encode()).hexdigest()[:16]: c["messages"][0]["content"]
               for c in calls}
    train = MMLUInstructions(mmlu_task="abstract_algebra", data=str(shared_data / "mmlu"), train_limit=6).train
    for row in later.itertuples():
        scored = rows[(rows["step"].astype(int) < int(row.step)) & (rows["valid"] == "True")
                      & (rows["duplicate"] == "False")]
        parent = next(s for s in scored["solution"] if ids(s) == row.parents)  # a pool member
        prompt = prompts[row.prompt_sha]
        assert prompt.startswith(f"I provided an assistant with the following instructions to perform a task for "
                                 f"me:\n```\n{parent}\n```")
        batch = [int(i) for i in row.minibatch.split(";")]
        assert len(batch) == GEPA_MINIBATCH
        outcomes = _results(run, parent)
        assert (outcomes["correct"].iloc[batch] == "False").any()  # a perfect minibatch is not reflected on
        for n, i in enumerate(batch, 1):  # gepa's markdown layout of the reflective records
            record = (f"# Example {n}\n## Inputs\n{train[i].question.strip()}\n\n## Generated Outputs\n"
                      f"{outcomes['raw_answer'].iloc[i]}\n\n## Feedback\nThe generated response is ")
            assert record in prompt
    assert summary["steps_run"] == 2


def test_a_parent_right_on_its_whole_minibatch_is_not_reflected_on(tmp_path, shared_data, llms):
    llm = ReflectingLLM()  # "!!!!" beats every difficulty of the level scorer: right on every question
    run, summary = _run(tmp_path, shared_data, optimizer=llm, **{"problem.initial_instructions": ["Solve!!!!"],
                                                                 "loop.num_initial": 1})
    steps = pd.read_csv(run.path / "steps.csv")
    assert steps["n_candidates"].tolist() == [1, 0, 0] and not llm.requests
    assert summary["stop_reason"] == "steps" and summary["best_score"] == 100.0


def test_max_scorer_calls_stops_at_the_step_boundary(tmp_path, shared_data, llms):
    run, summary = _run(tmp_path, shared_data, **{"loop.max_scorer_calls": 30, "loop.steps": 50})
    steps = pd.read_csv(run.path / "steps.csv")
    assert list(steps.columns) == STEP_COLUMNS + ["scorer_calls"]
    assert steps["scorer_calls"].tolist() == (6 * steps["n_new"]).tolist()  # 6 training questions each
    assert summary["stop_reason"] == "budget" and steps["scorer_calls"].sum() >= 30
    assert steps["scorer_calls"].iloc[:-1].sum() < 30


def test_a_resumed_run_continues_the_same_pool(tmp_path, shared_data, llms):
    straight, _ = _run(tmp_path, shared_data, run_id="straight", **{"loop.steps": 3})
    cut, _ = _run(tmp_path, shared_data, run_id="cut", **{"loop.steps": 1})
    with open(cut.path / "candidates.csv", "a") as handle:  # a step cut short by a kill
        handle.write("2,0,0,5,abc,half a row")
    resumed, summary = resume_run(cut.path, {"steps": 3})
    assert summary["steps_run"] == 3 and summary["stop_reason"] == "steps"
    assert (resumed.path / "candidates.csv").read_text() == (straight.path / "candidates.csv").read_text()
    assert pd.read_csv(resumed.path / "steps.csv").drop(columns=["seconds"]).equals(
        pd.read_csv(straight.path / "steps.csv").drop(columns=["seconds"]))
    assert RunDir.open(resumed.path).candidate_extras == tuple(COLUMNS)


def test_without_the_extra_a_one_line_error(tmp_path, shared_data):
    from tests.hidden_modules import opro_without

    done = opro_without("gepa", ["run", "--task", "bbh", "--method", "gepa", "--data", str(shared_data / "bbh"),
                                 "--set", "problem.bbh_task=navigate", "--dry-run"], tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "needs the 'gepa' extra" in done.stderr and "pip install 'opro[gepa]'" in done.stderr


@pytest.mark.slow
def test_gepa_two_steps_with_the_embedded_model(default_model, shared_data, tmp_path):
    # one reflection a step; a starting instruction the tiny scorer gets wrong, so its minibatches have failures
    tiny = {"loop.steps": 2, "loop.population": 1, "loop.max_tokens": 40, "loop.resample_rounds": 0,
            "problem.train_limit": 3, "problem.scorer_max_tokens": 8, "optimizer.cache_prompt": True,
            "optimizer.threads": 1, "loop.stop_at_optimum": False, "problem.bbh_task": "navigate",
            "loop.method": "gepa", "problem.initial_instructions": ["Think step by step."]}
    config = build_config("bbh", {**tiny, "problem.data": str(shared_data / "bbh"), "results_root": str(tmp_path)})
    run, summary = start_run(config)
    steps = pd.read_csv(run.path / "steps.csv")
    candidates = pd.read_csv(run.path / "candidates.csv", keep_default_na=False, dtype=str)
    assert steps["step"].tolist() == [0, 1, 2] and list(steps.columns) == STEP_COLUMNS + ["scorer_calls"]
    assert list(candidates.columns) == CANDIDATE_COLUMNS + COLUMNS
    assert (candidates["step"] == "1").sum() == 1 and set(candidates.loc[candidates["step"] != "0", "operator"]) == {
        "reflect"}
    assert candidates.loc[candidates["step"] == "1", "parents"].tolist() == [ids("Think step by step.")]
    assert steps["scorer_calls"].sum() == 3 * steps["n_new"].sum()  # three training questions each
    calls = [json.loads(line) for line in (run.path / "llm_calls.jsonl").read_text().splitlines()]
    assert {c["temperature"] for c in calls} == {1.0}
    assert calls[0]["messages"][0]["content"].startswith("I provided an assistant with the following instructions")
    assert summary["stop_reason"] == "steps" and summary["steps_run"] == 2 and summary["best_solution"]
