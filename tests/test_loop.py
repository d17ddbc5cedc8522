"""The loop's bookkeeping, driven by a scripted LLM (real generation: tests/test_run_llamacpp.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opro.config import LoopConfig
from opro.loop import optimize, sample_seed
from opro.metaprompt import render_meta_prompt, shown_solutions
from opro.problems.linreg import LinearRegression, integer_least_squares, sse
from opro.results import CANDIDATE_COLUMNS, STEP_COLUMNS, RunDir
from tests.doubles import ScriptedLLM

TEMPLATES = ("Pairs:\n{history}Propose.", "input:\n{solution}\nvalue:\n{score}\n\n")


def _run(tmp_path, texts, **loop):
    problem = LinearRegression(seed=0)
    settings = {"steps": 3, "candidates_per_step": 4, "num_initial": 5, "top_k": 3, **loop}
    run = RunDir.create(tmp_path, "linreg", "r", {"config": {"seed": 0}})
    llm = ScriptedLLM(texts)
    summary = optimize(problem, llm, LoopConfig(**settings), 7, TEMPLATES, run)
    return problem, llm, run, summary


def test_integer_least_squares_is_exact():
    problem = LinearRegression(w_true=15, b_true=14, seed=3)
    (w, b), value = problem.optimum_pair, problem.optimum
    for dw in range(-3, 4):
        for db in range(-8, 9):
            assert sse(problem.x, problem.y, w + dw, b + db) >= value - 1e-9
    assert (w, b) == integer_least_squares(problem.x, problem.y)[0]
    assert abs(w - 15) <= 1 and abs(b - 14) <= 3


def test_meta_prompt_shows_top_k_worst_first_best_last():
    problem = LinearRegression(seed=0)
    trajectory = [((10, 10), 500.0), ((11, 11), 100.0), ((12, 12), 300.0), ((13, 13), 200.0)]
    shown = shown_solutions(problem, trajectory, top_k=3)
    assert [score for _, score in shown] == [300.0, 200.0, 100.0]
    text = render_meta_prompt(problem, shown, *TEMPLATES)
    assert text.index("w=12, b=12") < text.index("w=13, b=13") < text.index("w=11, b=11")
    assert "w=10, b=10" not in text


def test_meta_prompt_order_ablation_descending_and_seeded_random():
    import numpy as np

    problem = LinearRegression(seed=0)
    trajectory = [((w, w), float(100 * w)) for w in range(1, 9)]
    ascending = shown_solutions(problem, trajectory, top_k=5)
    assert shown_solutions(problem, trajectory, 5, "descending") == ascending[::-1]
    shuffled = [shown_solutions(problem, trajectory, 5, "random", np.random.default_rng([0, s, 1])) for s in range(4)]
    assert all(sorted(order, key=lambda pair: -pair[1]) == ascending for order in shuffled)  # the same top 5
    assert len({tuple(pair[1] for pair in order) for order in shuffled}) > 1  # reshuffled from step to step
    again = shown_solutions(problem, trajectory, 5, "random", np.random.default_rng([0, 0, 1]))
    assert again == shuffled[0]


def test_loop_records_every_candidate_and_step(tmp_path):
    texts = ["[15, 14]", "garbage", "[15, 14]", "[16, 12]", "[w=14, b=20]"]
    problem, llm, run, summary = _run(tmp_path, texts, resample_rounds=1, stop_at_optimum=False)
    candidates = pd.read_csv(run.path / "candidates.csv")
    steps = pd.read_csv(run.path / "steps.csv")
    assert list(candidates.columns) == CANDIDATE_COLUMNS and list(steps.columns) == STEP_COLUMNS
    assert steps["step"].tolist() == [0, 1, 2, 3]
    assert (candidates["step"] == 0).sum() == 5
    proposals = candidates[candidates["step"] > 0]
    invalid = proposals[~proposals["valid"]]
    assert set(invalid["invalid_reason"]) == {"no [w, b] pair"}
    assert (proposals["attempt"] > 0).sum() == steps["n_resampled"].sum() > 0
    # a solution is scored once; later copies are duplicates with the same score
    valid = candidates[candidates["valid"]]
    assert valid.loc[~valid["duplicate"], "solution"].is_unique
    first = valid.drop_duplicates("solution").set_index("solution")["score"]
    assert (valid["score"] == valid["solution"].map(first)).all()
    # best-so-far never gets worse, and matches the best score in the candidates
    assert steps["best_so_far"].is_monotonic_decreasing
    assert summary["best_score"] == pytest.approx(candidates["score"].min())
    # seeds follow seed + step * N + index (re-samples shifted)
    first_tries = proposals[proposals["attempt"] == 0]
    assert (first_tries["seed"] == 7 + first_tries["step"] * 4 + first_tries["index"]).all()
    assert [r.seed for r in llm.requests[:4]] == [sample_seed(7, 1, i, 0, 4) for i in range(4)]
    calls = [json.loads(line) for line in (run.path / "llm_calls.jsonl").read_text().splitlines()]
    assert sum(len(c["outputs"]) for c in calls) == len(proposals)
    assert summary["n_candidates"] == len(proposals)
    assert summary["valid_rate"] == pytest.approx(proposals["valid"].mean())


def test_loop_stops_at_the_optimum(tmp_path):
    problem = LinearRegression(seed=0)
    w, b = problem.optimum_pair
    _, _, run, summary = _run(tmp_path, [f"[{w}, {b}]"], steps=5)
    assert summary["solved"] and summary["steps_to_optimum"] == 1 and summary["stop_reason"] == "optimum"
    assert summary["gap_percent"] == pytest.approx(0.0)
    assert pd.read_csv(run.path / "steps.csv")["step"].tolist() == [0, 1]


def test_resampling_is_bounded(tmp_path):
    _, llm, run, summary = _run(tmp_path, ["no answer"], steps=2, resample_rounds=2)
    assert len(llm.requests) == 2 * 4 * 3
    assert summary["n_valid"] == 0 and summary["n_resampled"] == 2 * 4 * 2


def test_resume_cuts_a_half_written_step(tmp_path):
    _, _, run, _ = _run(tmp_path, ["[15, 14]", "[16, 12]", "x"], steps=2)
    before = {name: (run.path / name).read_bytes() for name in ("candidates.csv", "steps.csv", "llm_calls.jsonl")}
    with open(run.path / "candidates.csv", "a") as handle:
        handle.write("3,0,0,999,abc,w=1, b=1")  # a kill in the middle of a row
    with open(run.path / "llm_calls.jsonl", "a") as handle:
        handle.write('{"step": 3')
    reopened = RunDir.open(run.path)  # checked, not yet changed
    assert (reopened.path / "llm_calls.jsonl").read_bytes() != before["llm_calls.jsonl"]
    reopened.restore()
    assert {n: (reopened.path / n).read_bytes() for n in before} == before
