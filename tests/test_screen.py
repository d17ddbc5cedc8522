"""The `--screen` rule's options (stages, confidence bound, GEPA-style acceptance, rotating subsets) and the
simulated scorer of benchmarks/screen_at_scale.py. Deterministic: scripted or seeded scorers, no model."""

from __future__ import annotations

import pytest

from benchmarks.screen_at_scale import RULES, simulate
from benchmarks.simulated_scorer import SimulatedScorer, SimulatedWorld
from opro.config import build_config
from opro.errors import OproError
from opro.prompting.screen import STAGE_GROWTH, kth_best, passes_screen, passes_stage, screen_positions, stage_positions
from tests.cli_inprocess import invoke
from tests.doubles import rule_scored_problem


def test_stage_subsets_are_nested_seeded_and_stop_short_of_the_split():
    stages = stage_positions(261, 0.05, 0, stages=3)
    assert [len(s) for s in stages] == [13, 13 * STAGE_GROWTH, 13 * STAGE_GROWTH ** 2]
    assert stages[0] == screen_positions(261, 0.05, 0)  # one stage: the default rule's subset
    assert set(stages[0]) < set(stages[1]) < set(stages[2])
    assert stage_positions(261, 0.05, 0, stages=3) == stages
    assert len(stage_positions(261, 0.2, 0, stages=3)) == 2  # 52, 156; 468 would pass the whole split
    assert stage_positions(261, 0.1, 0, step=3) == stage_positions(261, 0.1, 0, step=3)
    assert stage_positions(261, 0.1, 0, step=3) != stage_positions(261, 0.1, 0, step=4)


def test_the_stage_rule():
    # z = 0 is the count comparison of the default rule, margin included
    for cand, bar, margin in [((1, 0, 0), (1, 1, 0), 0), ((1, 1, 0), (1, 1, 0), 0), ((1, 0, 0), (1, 1, 0), 1)]:
        assert passes_stage(cand, bar, margin) == passes_screen(sum(cand), sum(bar), margin)
    assert passes_stage((0, 0), None) and passes_screen(0, None)
    cand, bar = (0, 0, 1, 1), (1, 1, 1, 0)  # 2 vs 3 right, 3 discordant pairs
    assert not passes_stage(cand, bar) and passes_stage(cand, bar, z=0.6) and not passes_stage(cand, bar, z=0.5)
    assert passes_stage(cand, (0, 1, 0, 0), margin=-1) and not passes_stage(bar, bar, margin=-1)  # GEPA: beat it


def test_kth_best_keeps_the_first_found_on_ties():
    scores = {"a": 10.0, "b": 30.0, "c": 30.0, "d": 5.0, "e": 30.0}
    assert [kth_best(scores, k) for k in (1, 2, 3, 4, 5, 6)] == ["b", "c", "e", "a", "d", None]


def test_halving_stages_cost_only_the_stages_reached(shared_data, tmp_path):
    # 20 questions, 10%: stages of 2 and 6 questions; top-2 from the two GOOD ones
    problem, llm = rule_scored_problem(shared_data, tmp_path / "s.sqlite", screen=True, screen_top_k=2, screen_stages=2)
    assert [len(s) for s in problem.screen_subsets()] == [2, 6]
    problem.score(["GOOD one", "GOOD two"])
    assert llm.requests == 40 and problem.step_scorer_calls == 40  # nothing to screen against yet: no subset
    problem.score(["bad one"])
    assert llm.requests == 42 and problem.n_screened_out == 1  # cut at the first stage
    problem.score(["GOOD three"])
    assert llm.requests == 62 and problem.step_scorer_calls == 62  # each question asked once, stages included
    assert "GOOD three" in problem.full_scores


def test_rotating_subsets_change_with_the_step(shared_data, tmp_path):
    problem, _ = rule_scored_problem(shared_data, tmp_path / "s.sqlite", screen=True, screen_rotate=True,
                               screen_fraction=0.25)
    problem.begin_step(1)
    first = problem.screen_subsets()
    problem.begin_step(2)
    assert problem.screen_subsets() != first
    problem.begin_step(1)
    assert problem.screen_subsets() == first


def test_the_new_settings_are_checked(shared_data):
    base = {"problem.data": str(shared_data)}
    with pytest.raises(OproError, match="screen_stages"):
        build_config("gsm8k", {**base, "problem.screen_stages": 0})
    with pytest.raises(OproError, match="screen_z"):
        build_config("gsm8k", {**base, "problem.screen_z": -1.0})
    build_config("gsm8k", {**base, "problem.screen_margin": -1, "problem.screen_rotate": True})


def test_simulated_scorer_is_seeded_and_counts_new_pairs(shared_data):
    from opro.problems.prompt import PromptOptimization

    train = PromptOptimization(data=str(shared_data), train_limit=30, score_cache=False).train
    worlds = [SimulatedWorld(len(train), 7) for _ in range(2)]
    names = [w.propose(1, 0, [w.initial()]) for w in worlds]
    assert (worlds[0].outcomes[names[0]] == worlds[1].outcomes[names[1]]).all()
    scorer = SimulatedScorer(worlds[0], train)
    first = scorer.evaluate(names[0], train[:10])
    again = scorer.evaluate(names[0], train[:20])
    assert scorer.calls == 20 and [r.correct for r in again[:10]] == [r.correct for r in first]
    assert all(r.cached for r in again[:10]) and not any(r.cached for r in again[10:])


def test_screening_at_small_scale_is_paired_and_saves_calls(shared_data):
    data = str(shared_data)
    plain = simulate(data, RULES["none"], 0, 6, 8, 4, 3)
    screened = simulate(data, RULES["10%, 30%, 90% rotate (new default)"], 0, 6, 8, 4, 3)
    assert plain["calls"] == 49 * 261 and plain["cut"] == 0
    assert screened["calls"] < plain["calls"] and screened["cut"] > 0
    assert simulate(data, RULES["10%, 30%, 90% rotate (new default)"], 0, 6, 8, 4, 3) == screened  # seeded


def test_the_replay_of_a_real_run_makes_the_calls_the_problem_makes(shared_data, tmp_path):
    from benchmarks.prompt_screening import replay

    steps = [["GOOD a", "bad a"], ["bad b", "GOOD b", "bad c"], ["GOOD c", "bad d"]]
    plain, _ = rule_scored_problem(shared_data, tmp_path / "plain.sqlite")
    (tmp_path / "run").mkdir()
    plain.attach_run(tmp_path / "run")
    screened, llm = rule_scored_problem(shared_data, tmp_path / "screened.sqlite", screen=True, screen_top_k=2)
    for step, instructions in enumerate(steps):
        for problem in (plain, screened):
            problem.begin_step(step)
            problem.score(instructions)
    result = replay(tmp_path / "run", 2, 0.1, 0, 0)
    # "bad b" ties the 2nd best ("bad a", 0%) and goes on; "bad c" and "bad d" meet "GOOD b" and are cut
    assert result["calls_screen"] == llm.requests == 5 * 20 + 2 * 2
    assert result["screened_out"] == screened.n_screened_out == 2 and result["best_screen"] == 100.0


@pytest.mark.parametrize(("settings", "warned"), [
    ([], True),  # 1 initial + 3 steps x 4 = at most 13 instructions, below the default k (loop.top_k, 20)
    (["--set", "problem.screen_top_k=4"], False),
    (["--steps", "5"], False),  # 21 instructions: the last ones are screened against the 20th best
])
def test_a_run_too_short_to_screen_says_so(shared_data, tmp_path, settings, warned):
    """Screening starts once screen_top_k instructions are fully scored; a run that never scores that many
    is told so (a warning, before anything runs) instead of screening nothing in silence."""
    outcome = invoke(["run", "--task", "bbh", "--data", str(shared_data / "bbh"), "--set", "problem.bbh_task=navigate",
                      "--screen", "--steps", "3", "--set", "loop.candidates_per_step=4", *settings, "--dry-run"],
                     tmp_path)
    assert outcome.code == 0, outcome.stderr
    assert ("--screen screens nothing here" in outcome.stderr) is warned
    if warned:
        assert "this run scores at most 13; set problem.screen_top_k below 13" in outcome.stderr


def test_a_sweep_names_its_cells_too_short_to_screen(shared_data, tmp_path):
    """`opro sweep` gives the same warning once per reason, naming the cells it concerns."""
    sweep = tmp_path / "short.toml"
    sweep.write_text(f"""task = "bbh"
[set]
"problem.data" = "{shared_data / 'bbh'}"
"problem.bbh_task" = "navigate"
"problem.screen" = true
"loop.steps" = 3
"loop.candidates_per_step" = 4
[axes]
"problem.screen_top_k" = [4, 20]
""")
    outcome = invoke(["sweep", str(sweep), "--dry-run", "--results", str(tmp_path / "results")], tmp_path)
    assert outcome.code == 0, outcome.stderr
    assert outcome.stderr.count("--screen screens nothing here") == 1
    assert "1 cell(s) (problem.screen_top_k=20)" in outcome.stderr


def test_the_python_api_warns_before_it_starts(tmp_path):
    """`opro.run` gives the warning as a UserWarning before the run starts (here it then fails on its data)."""
    import opro

    with pytest.warns(UserWarning, match="this run scores at most 13"), pytest.raises(OproError):
        opro.run("bbh", steps=3, problem__screen=True, data=str(tmp_path / "missing"),
                 problem__bbh_task="navigate", loop__candidates_per_step=4, results=str(tmp_path))
