"""Proposal methods (opro/methods/): EvoPrompt GA and DE, APE, with a scripted optimizer and a deterministic
scorer (no model): their prompts, parents, operators and population updates, the scorer-call budget and
resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opro.config import METHODS, build_config
from opro.errors import OproError
from opro.llm import Completion
from opro.methods import METHOD_CLASSES, METHOD_COLUMNS
from opro.methods.ape import parse_completion
from opro.methods.evoprompt import de_population, ids, parse_prompt_tag, roulette
from opro.problems import Invalid
from opro.results import CANDIDATE_COLUMNS, STEP_COLUMNS, RunDir, typed_row
from opro.runner import resume_run, start_run
from tests.doubles import TINY_METHOD_RUN as TINY
from tests.doubles import LevelScorerLLM, SeededLLM


@pytest.fixture
def llms(monkeypatch, shared_data):
    """Every scorer a run builds is a LevelScorerLLM over abstract algebra; every optimizer a SeededLLM,
    tagged unless the test sets `tagged` false."""
    from opro.prompting.data import load_mmlu

    examples = load_mmlu("abstract_algebra", str(shared_data / "mmlu"))
    options_ = {"tagged": True}

    def build(options, api_key=None):
        return LevelScorerLLM(examples) if options.spec == "scorer" else SeededLLM(tagged=options_["tagged"])

    monkeypatch.setattr("opro.runner.build_llm_from", build)
    return options_


def _config(tmp_path, shared_data, method, **changes):
    return build_config("mmlu", {**TINY, "problem.data": str(shared_data / "mmlu"), "results_root": str(tmp_path),
                                 "loop.method": method, **changes})


def _run(tmp_path, shared_data, method, optimizer=None, run_id="r", **changes):
    config = _config(tmp_path, shared_data, method, **changes)
    return start_run(config, run_id=run_id, optimizer=optimizer or SeededLLM(tagged=method != "ape"))


def _candidates(run) -> pd.DataFrame:
    return pd.read_csv(run.path / "candidates.csv", keep_default_na=False, dtype=str)


def test_every_method_name_has_its_class():
    assert tuple(METHOD_CLASSES) == METHODS  # the names the command line and the settings check accept
    assert METHOD_COLUMNS["opro"] == ()  # OPRO's candidates.csv has the standard columns only


def test_parsers_never_raise():
    assert parse_prompt_tag("1. x\n2. <prompt> A <b>.</prompt> and <prompt>B.</prompt>") == "B."
    assert parse_prompt_tag("<prompt>multi\nline</prompt>") == "multi\nline"
    assert isinstance(parse_prompt_tag("no tag"), Invalid) and isinstance(parse_prompt_tag("<prompt>cut"), Invalid)
    assert parse_completion('\n  "Sort the words."\nmore') == "Sort the words."
    assert parse_completion("Output: Add them.") == "Add them."
    assert isinstance(parse_completion(" \n "), Invalid)


def test_roulette_is_proportional_to_the_score():
    rng = np.random.default_rng(0)
    draws = [roulette([10.0, 30.0, 60.0], rng) for _ in range(3000)]
    assert all(a != b for a, b in draws)  # two distinct parents
    first = np.bincount([a for a, _ in draws], minlength=3) / len(draws)
    assert first == pytest.approx([0.1, 0.3, 0.6], abs=0.03)
    assert sorted(roulette([0.0, 0.0, 50.0], rng)) != [2, 2]  # one positive score: uniform, still distinct
    assert roulette([5.0], rng) == [0, 0]


def test_evoprompt_ga_generation(tmp_path, shared_data, llms):
    llm = SeededLLM()
    run, summary = _run(tmp_path, shared_data, "evoprompt-ga", optimizer=llm)
    rows = _candidates(run)
    assert list(rows.columns) == CANDIDATE_COLUMNS + ["operator", "parents"]
    initial = rows[rows["step"] == "0"]
    # the task's instructions, then the manual ones, up to the population
    assert initial["solution"].tolist()[:2] == ["Solve it!", "Answer."] and len(initial) == 4
    assert set(initial["operator"]) == {"initial"}
    assert len(llm.requests) == 8 and {r.temperature for r in llm.requests} == {0.5}  # EvoPrompt §4.1
    first = llm.requests[0].messages[0]["content"]
    assert first.startswith("Please follow the instruction step-by-step to generate a better prompt.")
    assert "<prompt>Transform the provided text into simpler language" in first and first.endswith("\n\n1. ")
    pairs = [(s, float(v)) for s, v in zip(rows["solution"], rows["score"], strict=True)]
    for step in ("1", "2"):
        before = [(s, v) for (s, v), k in zip(pairs, rows["step"], strict=True) if int(k) < int(step)]
        population = sorted(dict(before).items(), key=lambda p: -p[1])[:4]  # top N of parents + children
        members = {ids(s): s for s, _ in population}
        for row in rows[rows["step"] == step].itertuples():
            assert row.operator == "ga"
            a, b = row.parents.split(";")
            assert a in members and b in members and a != b
            prompt = llm.requests[(int(step) - 1) * 4 + int(row.index)].messages[0]["content"]
            assert f"Prompt 1: {members[a]}\nPrompt 2: {members[b]}\n" in prompt
    assert summary["steps_run"] == 2 and summary["n_candidates"] == 8


def test_evoprompt_de_generation_and_replacement(tmp_path, shared_data, llms):
    llm = SeededLLM(invalid_every=3)
    run, _ = _run(tmp_path, shared_data, "evoprompt-de", optimizer=llm)
    rows = _candidates(run)
    records = rows.to_dict("records")
    invalid = rows[rows["valid"] == "False"]
    assert len(invalid) and set(invalid["invalid_reason"]) == {"no <prompt>...</prompt> in the answer"}
    for step in (1, 2):
        population = de_population([typed_row(r) for r in records if int(r["step"]) < step], 4)
        best = max(population, key=lambda p: p[1])[0]
        for row in rows[rows["step"] == str(step)].itertuples():
            a, b, third, basic = row.parents.split(";")
            i = int(row.index)
            assert basic == ids(population[i][0]) and third == ids(best) and basic not in (a, b)
            prompt = llm.requests[(step - 1) * 4 + i].messages[0]["content"]
            assert prompt.endswith(f"Prompt 3: {best}\n4. Crossover the prompt in the step3 with the following basic "
                                   f"prompt and generate a final prompt bracketed with <prompt> and </prompt>:\n"
                                   f"Basic Prompt: {population[i][0]}\n\n1. ")


def test_de_population_replaces_a_member_by_a_better_child():
    def row(step, index, solution, score, valid=True, duplicate=False):
        return {"step": str(step), "index": str(index), "solution": solution, "score": "" if not valid else str(score),
                "valid": valid, "duplicate": duplicate}  # as RunDir.read_candidates types them

    rows = [row(0, 0, "a", 10), row(0, 1, "b", 50), row(0, 2, "a", 10, duplicate=True), row(0, 3, "c", 30),
            row(1, 0, "d", 20), row(1, 1, "e", 40), row(1, 2, "", 0, valid=False), row(2, 0, "f", 20),
            row(2, 2, "b", 60)]
    # d beats a; e does not beat b; the invalid one changes nothing; f only ties d; b is a member already
    assert de_population(rows, 3) == [("d", 20.0), ("b", 50.0), ("c", 30.0)]


def test_ape_induction_then_resampling(tmp_path, shared_data, llms):
    llm = SeededLLM(tagged=False)
    run, _ = _run(tmp_path, shared_data, "ape", optimizer=llm, **{"loop.steps": 3, "loop.num_initial": 2})
    rows = _candidates(run)
    assert list(rows.columns) == CANDIDATE_COLUMNS + ["operator", "parents", "demos"]
    assert rows[rows["step"] == "0"]["solution"].tolist() == ["Solve it!", "Answer."]
    induced = rows[rows["step"] == "1"]
    assert set(induced["operator"]) == {"induction"} and len(induced) == 4
    problem_train = len(set(induced["demos"].str.split(";").sum()))
    assert problem_train <= 6 and all(len(d.split(";")) == 5 for d in induced["demos"])
    induction = llm.requests[0].messages[0]["content"]
    assert induction.startswith("I gave a friend an instruction and five inputs.")
    assert induction.count("\nOutput: ") == 5 and induction.endswith("The instruction was")
    assert {r.temperature for r in llm.requests} == {0.9}
    for step in ("2", "3"):
        before = rows[rows["step"].astype(int) < int(step)]
        scored = before[(before["valid"] == "True") & (before["duplicate"] == "False")]
        order = sorted(range(len(scored)), key=lambda k: (-float(scored["score"].iloc[k]), k))
        top = [scored["solution"].iloc[k] for k in order[:max(1, len(scored) // 2)]]
        resampled = rows[rows["step"] == step]
        assert set(resampled["operator"]) == {"resample"}
        assert resampled["parents"].tolist() == [ids(top[i % len(top)]) for i in range(4)]
    prompt = llm.requests[4].messages[0]["content"]
    assert prompt.startswith("Generate a variation of the following instruction while keeping the semantic meaning.")


def test_methods_are_for_prompt_tasks(tmp_path):
    with pytest.raises(OproError, match="not a prompt task"):
        build_config("tsp", {"loop.method": "evoprompt-ga", "results_root": str(tmp_path)})
    with pytest.raises(OproError, match="has no scorer"):
        build_config("tsp", {"loop.max_scorer_calls": 10, "results_root": str(tmp_path)})
    with pytest.raises(OproError, match="loop.method must be one of"):
        build_config("tsp", {"loop.method": "dspy", "results_root": str(tmp_path)})


@pytest.mark.parametrize("method", ["opro", "evoprompt-ga", "evoprompt-de", "ape"])
def test_max_scorer_calls_stops_at_the_step_boundary(tmp_path, shared_data, llms, method):
    optimizer = SeededLLM(tagged=method != "ape")
    if method == "opro":  # OPRO's answers are <INS>-tagged
        optimizer.generate = lambda requests: [Completion(f"<INS>Go{'!' * (r.seed % 5)} {r.seed}</INS>", 10, 5)
                                               for r in requests]
    run, summary = _run(tmp_path, shared_data, method, optimizer, **{"loop.max_scorer_calls": 30,
                                                                     "loop.steps": 50})
    steps = pd.read_csv(run.path / "steps.csv")
    assert list(steps.columns) == STEP_COLUMNS + ["scorer_calls"]
    index = pd.read_csv(run.path / "instructions.csv")
    # every new instruction is scored on the 6 training questions, once
    assert steps["scorer_calls"].tolist() == (6 * steps["n_new"]).tolist()
    assert steps["scorer_calls"].sum() == 6 * len(index)
    assert summary["stop_reason"] == "budget" and steps["scorer_calls"].sum() >= 30
    assert steps["scorer_calls"].iloc[:-1].sum() < 30  # it stopped at the first boundary past the budget


@pytest.mark.parametrize("method", ["evoprompt-ga", "evoprompt-de", "ape"])
def test_a_resumed_run_continues_the_same_population(tmp_path, shared_data, llms, method):
    straight, _ = _run(tmp_path, shared_data, method, run_id="straight", **{"loop.steps": 3})
    cut, _ = _run(tmp_path, shared_data, method, run_id="cut", **{"loop.steps": 1})
    llms["tagged"] = method != "ape"
    with open(cut.path / "candidates.csv", "a") as handle:  # a step cut short by a kill
        handle.write("2,0,0,5,abc,half a row")
    resumed, summary = resume_run(cut.path, {"steps": 3})
    assert summary["steps_run"] == 3 and summary["stop_reason"] == "steps"
    assert (resumed.path / "candidates.csv").read_text() == (straight.path / "candidates.csv").read_text()
    drop = ["seconds"]
    assert pd.read_csv(resumed.path / "steps.csv").drop(columns=drop).equals(
        pd.read_csv(straight.path / "steps.csv").drop(columns=drop))
    assert RunDir.open(resumed.path).candidate_extras == tuple(_candidates(straight).columns[len(CANDIDATE_COLUMNS):])


def test_compare_shows_accuracy_against_scorer_calls(tmp_path, shared_data, llms):
    from opro.budget import call_curves, value_at
    from opro.compare import compare

    for method in ("evoprompt-ga", "evoprompt-de"):
        for seed in (0, 1):
            _run(tmp_path / "runs", shared_data, method, run_id=f"{method}-s{seed}", seed=seed)
    written = compare([tmp_path / "runs"], tmp_path / "cmp")
    budget = pd.read_csv(tmp_path / "cmp" / "budget.csv")
    assert sorted(budget["method"]) == ["evoprompt-de llamacpp:smollm2", "evoprompt-ga llamacpp:smollm2"]
    assert set(budget["runs"]) == {2} and budget["budget_scorer_calls"].nunique() == 1
    from opro.analysis import load

    results = load([tmp_path / "runs"])
    curves = call_curves(results.steps)
    least = min(c[0][-1] for c in curves.values())
    assert budget["budget_scorer_calls"].iloc[0] == least
    for row in budget.itertuples():  # the mean over seeds of the best at the equal budget
        runs = results.runs[results.runs["method"] == row.method]["run"]
        assert row.best_at_budget_mean == pytest.approx(np.mean([value_at(curves[r], least) for r in runs]))
    assert "best train accuracy at" in (tmp_path / "cmp" / "table.md").read_text()
    assert any(p.name.startswith("accuracy_vs_scorer_calls-") and p.stat().st_size for p in written["plots"])
    cands = load([tmp_path / "runs"], candidates=True).candidates  # the method columns load as text
    assert set(cands["operator"]) == {"initial", "ga", "de"}
    from opro.report import write_report

    page = Path(write_report(tmp_path / "runs", tmp_path / "report.html")).read_text()
    assert "Best training accuracy against scorer calls" in page and "equal budget of 72 scorer calls" in page


def test_a_sweep_crosses_methods_and_seeds(shared_data):
    from opro.sweep import plan_cells

    cells = plan_cells({"task": "bbh", "set": {"problem.data": str(shared_data / "bbh"), "loop.steps": 2},
                        "axes": {"loop.method": ["opro", "evoprompt-ga", "evoprompt-de", "ape"], "seed": "0-1"}})
    assert [c.id for c in cells[:2]] == ["loop.method=opro,seed=0", "loop.method=opro,seed=1"] and len(cells) == 8
    with pytest.raises(OproError, match="loop.method must be one of"):
        plan_cells({"task": "bbh", "axes": {"loop.method": ["dspy"]}})


def test_cli_method_and_budget_flags(tmp_path, shared_data):
    from tests.cli_inprocess import invoke

    wrong = invoke(["run", "--task", "tsp", "--method", "evoprompt-ga", "--dry-run"], tmp_path)
    assert wrong.refused_in_one_line and "not a prompt task" in wrong.stderr
    budget = invoke(["run", "--task", "tsp", "--max-scorer-calls", "5", "--dry-run"], tmp_path)
    assert budget.refused_in_one_line and "has no scorer" in budget.stderr
    ok = invoke(["run", "--task", "bbh", "--method", "ape", "--max-scorer-calls", "100", "--data",
                 str(shared_data / "bbh"), "--set", "problem.bbh_task=navigate", "--dry-run"], tmp_path)
    assert ok.code == 0 and ok.stdout.startswith("ok: 1 run(s) of bbh"), ok.stderr
