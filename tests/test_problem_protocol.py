"""The task boundary: every built-in problem satisfies `Problem`, each declared hook answers in its declared
shape, and a problem of the user's own that does not is refused in one line, before any run folder exists."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import pytest

from opro.problems import PROBLEMS, Problem, ProblemBase, PromptTask, build_problem
from opro.problems.check import OPTIONAL, REQUIRED, GuardedProblem
from opro.scores import Invalid, gap_percent
from tests.cli_inprocess import invoke

REPO = Path(__file__).resolve().parents[1]
QUICK = {"tsp": {"n": 6}, "linreg": {}, "gsm8k": {"train_limit": 2}, "bbh": {"train_limit": 2, "bbh_task": "navigate"},
         "mmlu": {"train_limit": 2, "validation_limit": 1}, "prompt": {"train_limit": 2}}
LOCAL = {"gsm8k": "gsm8k", "bbh": "bbh", "mmlu": "mmlu"}


def test_the_protocol_lists_exactly_the_required_and_optional_hooks():
    assert set(typing._get_protocol_attrs(Problem)) == set(REQUIRED) | set(OPTIONAL)
    for name in OPTIONAL:
        assert hasattr(ProblemBase, name), name


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_every_builtin_problem_conforms_and_each_hook_answers(kind, shared_data, tmp_path):
    settings = dict(QUICK[kind])
    if kind in LOCAL:
        settings["data"] = str(shared_data / LOCAL[kind])
    if kind == "prompt":  # the user's own data
        (tmp_path / "mine.jsonl").write_text('{"question": "2 + 2?", "answer": "4"}\n{"question": "3 + 3?", '
                                             '"answer": "6"}\n{"question": "1 + 1?", "answer": "2"}\n')
        settings["data"] = str(tmp_path / "mine.jsonl")
    problem = build_problem(kind, settings, seed=0)
    assert isinstance(problem, Problem) and isinstance(problem, ProblemBase)
    assert isinstance(problem, PromptTask) == problem.uses_scorer
    solutions = problem.initial_solutions(np.random.default_rng(0), 2)
    for solution in solutions:
        text = problem.render(solution)
        assert problem.render(problem.decode(text)) == text
        parsed = problem.parse(problem.answer_text(solution))
        assert isinstance(parsed, Invalid) or problem.render(parsed) == text
        moved = problem.perturb(solution, np.random.default_rng(1))
        assert moved is None or isinstance(problem.render(moved), str)
        assert all(isinstance(problem.render(n), str) for n in problem.neighbors(solution))
    if not problem.uses_scorer:  # a prompt task scores through its scorer LLM (tests/test_prompt_run.py)
        scores = problem.score(solutions)
        assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
        assert isinstance(problem.render_score(scores[0]), str)
        assert isinstance(problem.is_optimal(scores[0]), bool)
    assert all(isinstance(v, str) for v in problem.prompt_fields().values())
    assert set(problem.prompt_fields()) <= set(problem.TEMPLATE_FIELDS)
    assert all(isinstance(v, float) for v in problem.baselines().values())
    optimum = problem.known_optimum()
    assert optimum is None or optimum == pytest.approx(problem.baselines()["optimal"])
    strong = problem.strong_solution()
    assert strong is None or problem.score([strong])[0] == pytest.approx(optimum)
    assert isinstance(problem.describe(), dict)
    assert isinstance(type(problem).group_label(kind, problem.describe()), str)
    assert isinstance(problem.SCORE_LABEL, str) and isinstance(problem.QUICK_SETTINGS, dict)
    assert type(problem).resolve_template("tsp", {}) in ("tsp", "instructions-gpt")
    if isinstance(problem, PromptTask):
        problem.close()


def test_the_gap_has_one_rule_set():
    assert gap_percent(110.0, 100.0, minimize=True) == pytest.approx(10.0)
    assert gap_percent(90.0, 100.0, minimize=False) == pytest.approx(10.0)  # worse is positive both ways
    assert gap_percent(100.0 + 1e-12, 100.0, True) == 0.0  # the same tour summed in another order
    assert gap_percent(5.0, 0.0, True) is None and gap_percent(5.0, None, True) is None
    assert gap_percent(float("inf"), 1.0, True) is None and gap_percent(None, 1.0, True) is None


BAD_MODULES = {
    "no_module": ("kind = \"nowhere_at_all:Knapsack\"", "cannot import module 'nowhere_at_all'"),
    "no_class": ("kind = \"knapsack:Missing\"", "has no class 'Missing'"),
    "bad_score": ("kind = \"badknap:BadScore\"", "score must return a list of one finite float per solution"),
    "raising": ("kind = \"badknap:Raising\"", "initial_solutions raised ZeroDivisionError"),
    "lacking": ("kind = \"badknap:Lacking\"", "Lacking lacks"),
}
BADKNAP = '''
from dataclasses import dataclass
from knapsack import Knapsack

@dataclass
class BadScore(Knapsack):
    def score(self, solutions):
        return ["high" for _ in solutions]

@dataclass
class Raising(Knapsack):
    def initial_solutions(self, rng, count):
        return 1 / 0

@dataclass
class Lacking:
    n_items: int = 3
    def parse(self, text):
        return text
'''


@pytest.mark.parametrize("case", sorted(BAD_MODULES))
def test_bad_user_code_is_one_line_and_exit_2_before_any_run_folder(case, tmp_path):
    for name in ("knapsack.py", "knapsack.meta.txt", "knapsack.entry.txt", "knapsack.toml"):
        (tmp_path / name).write_text((REPO / "examples" / "knapsack" / name).read_text())
    (tmp_path / "badknap.py").write_text(BADKNAP)
    kind, message = BAD_MODULES[case]
    preset = (tmp_path / "knapsack.toml").read_text().replace('kind = "knapsack:Knapsack"', kind)
    (tmp_path / "bad.toml").write_text(preset)
    outcome = invoke(["run", "--task", "bad.toml", "--steps", "1", "--quiet"], tmp_path)
    assert outcome.refused_in_one_line, outcome
    assert message in outcome.stderr
    assert not (tmp_path / "results").exists()


def test_a_score_that_fails_while_running_makes_an_invalid_candidate(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples" / "knapsack"))
    from knapsack import Knapsack

    @dataclasses.dataclass
    class Fragile(Knapsack):
        def score(self, solutions):
            if any(len(s) == 1 for s in solutions):
                raise ValueError("one item is not a selection")
            return super().score(solutions)

    guarded = GuardedProblem(Fragile(n_items=4))
    scores = guarded.score([(0,), (0, 1)])
    assert scores[0] == Invalid("score raised ValueError: one item is not a selection")
    assert scores[1] == guarded.inner.score([(0, 1)])[0]
    assert isinstance(GuardedProblem(Fragile()).parse(None), Invalid)  # a parse that raises is data too


def test_baselines_of_a_user_problem_are_its_own_table(tmp_path):
    for name in ("knapsack.py", "knapsack.meta.txt", "knapsack.entry.txt", "knapsack.toml"):
        (tmp_path / name).write_text((REPO / "examples" / "knapsack" / name).read_text())
    outcome = invoke(["baselines", "--task", "knapsack.toml"], tmp_path)
    assert outcome.code == 0, outcome
    assert [line.split()[0] for line in outcome.stdout.splitlines()] == ["greedy_by_ratio", "optimal"]


def test_optimize_records_a_failing_score_as_an_invalid_candidate(tmp_path, monkeypatch):
    """opro.optimize with a scripted optimizer (the test is about the loop's bookkeeping): a proposal the
    user's score raises on is an invalid row with the reason, and the run goes on."""
    import opro
    from tests.scripted_llm import ScriptedLLM

    for name in ("knapsack.py", "knapsack.meta.txt", "knapsack.entry.txt"):
        (tmp_path / name).write_text((REPO / "examples" / "knapsack" / name).read_text())
    (tmp_path / "fragile.py").write_text(
        "from dataclasses import dataclass\nfrom knapsack import Knapsack\n\n\n@dataclass\n"
        "class Fragile(Knapsack):\n    def score(self, solutions):\n"
        "        if (3, 4) in solutions:\n            raise ValueError('no pairs today')\n"
        "        return super().score(solutions)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from fragile import Fragile

    llm = ScriptedLLM(["<items>3, 4</items>", "<items>2</items>"])
    run = opro.optimize(Fragile(n_items=6), optimizer=llm, template="knapsack.meta.txt", steps=1, candidates=2,
                        loop__resample_rounds=0, run_id="fragile")
    proposed = run.candidates[run.candidates["step"] == 1].set_index("solution")
    assert not proposed.loc["3, 4", "valid"]
    assert proposed.loc["3, 4", "invalid_reason"] == "score raised ValueError: no pairs today"
    assert proposed.loc["2", "valid"] and proposed.loc["2", "score"] == Fragile(n_items=6).values[2]
    assert run.config["problem"] == "fragile:Fragile"


def test_optimize_refuses_an_object_that_lacks_hooks_in_one_line(tmp_path, monkeypatch):
    import opro
    from opro.errors import OproError

    monkeypatch.chdir(tmp_path)

    @dataclasses.dataclass
    class Half:
        n: int = 3

    with pytest.raises(OproError, match="Half lacks name, minimize"):
        opro.optimize(Half(), template="tsp", steps=1)
    assert not (tmp_path / "results").exists()


def test_debug_shows_the_users_own_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("OPRO_DEBUG", "0")  # restored after the test: --debug sets it for the process
    for name in ("knapsack.py", "knapsack.meta.txt", "knapsack.entry.txt", "knapsack.toml"):
        (tmp_path / name).write_text((REPO / "examples" / "knapsack" / name).read_text())
    (tmp_path / "badknap.py").write_text(BADKNAP)
    preset = (tmp_path / "knapsack.toml").read_text().replace("knapsack:Knapsack", "badknap:Raising")
    (tmp_path / "bad.toml").write_text(preset)
    outcome = invoke(["--debug", "run", "--task", "bad.toml", "--dry-run"], tmp_path)
    assert outcome.escaped is not None and "ZeroDivisionError" in outcome.escaped
    assert "badknap.py" in outcome.escaped  # the user's own line
