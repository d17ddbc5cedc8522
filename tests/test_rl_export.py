"""Trajectory export (GRPO, DPO, SFT) and rewards. The runs are driven by a scripted LLM: what is tested is
the bookkeeping of reading a run back, and the rewards built from the problems' own parsers and scorers."""

from __future__ import annotations

import json

import pytest

from opro.config import build_config, load_templates
from opro.errors import OproError
from opro.loop import optimize
from opro.problems import build_problem
from opro.results import RunDir
from opro.rl.episodes import Episode, answer_text, fresh_episodes, problem_from, strong_solution
from opro.rl.export import export_runs, load_rows
from opro.rl.rewards import RewardConfig, improvement, judge, opro_reward
from tests.doubles import ScriptedLLM

LINREG_TEXTS = ["[15, 14]", "garbage", "[16, 12]", "[w=14, b=20]", "[15, 14]", "[99, 99]"]
TSP_TEXTS = ["<trace>0,1,2,3,4</trace>", "no tour", "<trace>0,2,4,1,3</trace>", "<trace>0,1,2</trace>"]


def _run(tmp_path, task, texts, **settings):
    config = build_config(task, {"loop.steps": 3, "loop.candidates_per_step": 4, "loop.stop_at_optimum": False,
                                 **settings})
    templates = load_templates(config.template)
    record = {"config": config.to_dict(), "templates": {"meta": templates[0], "entry": templates[1]}}
    run = RunDir.create(tmp_path, task, f"{task}-run", record)
    problem = build_problem(config.problem, dict(config.problem_settings), config.seed)
    optimize(problem, ScriptedLLM(texts), config.loop, config.seed, templates, run)
    return run.path


@pytest.fixture
def runs(tmp_path):
    return [_run(tmp_path, "linreg", LINREG_TEXTS), _run(tmp_path, "tsp", TSP_TEXTS, **{"problem.n": 5})]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("fmt", ["grpo", "dpo", "sft"])
def test_export_round_trips(runs, tmp_path, fmt, suffix):
    out = tmp_path / f"{fmt}{suffix}"
    count = export_runs(runs, fmt, out)
    dataset = load_rows(out)
    assert len(dataset) == count > 0
    episodes = [Episode.from_row(row) for row in dataset]
    assert {e.problem for e in episodes} == {"linreg", "tsp"}
    for row, episode in zip(dataset, episodes, strict=True):
        assert json.loads(episode.settings)["seed"] == 0
        if fmt == "dpo":
            assert row["chosen_reward"] > row["rejected_reward"]
            assert judge(episode, row["chosen"][0]["content"]).reward == row["chosen_reward"]
        if fmt == "sft":
            assert judge(episode, row["completion"][0]["content"]).improved


def test_grpo_rows_are_the_exact_meta_prompts(runs, tmp_path):
    export_runs(runs[:1], "grpo", tmp_path / "g.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    calls = [json.loads(line) for line in (runs[0] / "llm_calls.jsonl").read_text().splitlines()]
    first = {c["step"]: c["messages"] for c in reversed(calls)}
    assert [r["prompt"] for r in rows] == [first[s] for s in sorted(first)]
    steps = (runs[0] / "steps.csv").read_text().splitlines()[1:]
    best_before = [float(line.split(",")[1]) for line in steps]
    assert [r["best_shown"] for r in rows] == best_before[:len(rows)]
    # what a step's prompt shows has been seen: proposing it again is a duplicate
    episode = Episode.from_row(rows[-1])
    problem = problem_from(episode.problem, episode.settings)
    assert judge(episode, "[" + episode.seen[0].replace("w=", "").replace("b=", "") + "]").duplicate
    assert problem.name == "linreg"


def test_dpo_prefers_valid_over_invalid(runs, tmp_path):
    export_runs(runs[1:], "dpo", tmp_path / "d.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert any(r["rejected"][0]["content"] in ("no tour", "<trace>0,1,2</trace>") for r in rows)
    assert all(r["rejected"][0]["content"] != r["chosen"][0]["content"] for r in rows)


def test_export_rejects_bad_input(tmp_path, runs):
    with pytest.raises(OproError, match="not a run directory"):
        export_runs([tmp_path], "grpo", tmp_path / "x.jsonl")
    with pytest.raises(OproError, match="unknown export format"):
        export_runs(runs, "ppo", tmp_path / "x.jsonl")
    with pytest.raises(OproError, match=".jsonl or .parquet"):
        export_runs(runs, "grpo", tmp_path / "x.csv")


def test_rewards_follow_the_problem():
    episode = fresh_episodes("tsp", 1, seed=3, sizes=(6, 6))[0]
    problem = problem_from(episode.problem, episode.settings)
    best = answer_text(problem, strong_solution(problem))
    shown = "<trace>" + episode.seen[0] + "</trace>"
    config = RewardConfig()
    assert judge(episode, "I cannot").reward == config.invalid
    assert judge(episode, shown).reward == config.duplicate
    assert episode.best_shown > episode.optimum + 1e-9  # this seed's prompt leaves room to improve
    optimal = judge(episode, best)
    assert optimal.improved and optimal.reward == pytest.approx(1.0 + config.new_best_bonus)
    assert improvement(90.0, 100.0, 80.0, minimize=True) == pytest.approx(0.5)
    assert improvement(110.0, 100.0, None, minimize=True) == pytest.approx(-0.1)
    assert improvement(5.0, 4.0, 6.0, minimize=False) == pytest.approx(0.5)


def test_reward_function_has_trl_signature():
    episodes = fresh_episodes("linreg", 2, seed=1)
    reward = opro_reward()
    columns = {k: [e.row()[k] for e in episodes] for k in ("problem", "settings", "seen", "best_shown", "optimum")}
    problem = problem_from(episodes[0].problem, episodes[0].settings)
    w, b = problem.optimum_pair
    completions = [[{"role": "assistant", "content": f"[{w}, {b}]"}], "no pair here"]
    values = reward(completions=completions, prompts=[e.prompt for e in episodes], trainer_state=None, **columns)
    assert values[1] == RewardConfig().invalid
    assert episodes[0].best_shown > episodes[0].optimum + 1e-9  # the optimum is an improvement here
    assert values[0] >= 1.0
    assert reward.__name__ == "opro_reward"


def test_fresh_episodes_are_seeded_and_varied():
    a = fresh_episodes("tsp", 4, seed=0, sizes=(5, 10))
    assert a == fresh_episodes("tsp", 4, seed=0, sizes=(5, 10))
    assert len({e.settings for e in a}) == 4
    assert all(5 <= json.loads(e.settings)["n"] <= 10 for e in a)
    assert all("<trace>" in e.prompt[0]["content"] for e in a)
