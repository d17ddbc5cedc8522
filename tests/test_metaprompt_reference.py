"""Meta-prompts identical to the reference implementation's (google-deepmind/opro e81b2f5), byte for byte.

The expected texts in tests/data/metaprompts/ were rendered by the reference's own gen_meta_prompt functions
(tests/data/metaprompts/make_reference.py) from the histories in tests/metaprompt_cases.py.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from opro.config import build_config, config_templates, load_templates
from opro.errors import OproError
from opro.metaprompt import render_meta_prompt, shown_solutions
from opro.problems.linreg import LinearRegression
from opro.problems.prompt import PromptOptimization
from opro.problems.tsp import TravelingSalesman
from opro.prompting.data import Example
from tests import metaprompt_cases as cases

EXPECTED = Path(__file__).parent / "data" / "metaprompts"


def expected(name: str) -> str:
    return (EXPECTED / f"{name}.txt").read_text()


def test_tsp_meta_prompt_is_the_references():
    problem = TravelingSalesman(n=len(cases.TSP_COORDS), optimum=False)
    problem.coords = [tuple(map(float, c)) for c in cases.TSP_COORDS]
    shown = shown_solutions(problem, cases.TSP_HISTORY, cases.TSP_TOP_K)
    assert render_meta_prompt(problem, shown, *load_templates("tsp")) == expected("tsp")


def test_linreg_meta_prompt_is_the_references():
    problem = LinearRegression()
    shown = shown_solutions(problem, cases.LINREG_HISTORY, cases.LINREG_TOP_K)
    assert render_meta_prompt(problem, shown, *load_templates("linreg")) == expected("linreg")


def prompt_problem(monkeypatch, case: cases.InstructionCase, train: list[Example] | None = None) -> PromptOptimization:
    """A bbh prompt problem with the case's settings and the fixed exemplars as its training split."""
    examples = [Example(f"bbh/train/{i}", i, q, a, "text") for i, (q, a) in enumerate(cases.EXEMPLARS)]
    monkeypatch.setattr(PromptOptimization, "_load_train", lambda self: (examples if train is None else train, []))
    settings = {f.name: getattr(case, f.name) for f in dataclasses.fields(case) if f.name != "family"}
    return PromptOptimization(dataset="bbh", bbh_task=cases.BBH_TASK, meta_prompt_family=case.family, **settings)


def render_case(problem: PromptOptimization, case: cases.InstructionCase) -> str:
    config = build_config("bbh", {"template": "instructions", "problem.meta_prompt_family": case.family,
                                  "problem.meta_prompt_type": case.meta_prompt_type, "problem.position": case.position})
    # instructions_only: the reference shows every old instruction (no cap); here the loop's top_k still applies
    top_k = cases.INSTRUCTION_TOP_K if case.meta_prompt_type != "instructions_only" else 1000
    shown = shown_solutions(problem, cases.INSTRUCTION_HISTORY, top_k)
    return render_meta_prompt(problem, shown, *config_templates(config), problem.step_fields(1, shown))


@pytest.mark.parametrize("case", cases.instruction_cases(), ids=lambda case: case.name)
def test_instruction_meta_prompt_is_the_references(monkeypatch, case):
    problem = prompt_problem(monkeypatch, case)
    assert render_case(problem, case) == expected(case.name)


@pytest.mark.parametrize("family", ["gpt", "bison"])
def test_no_training_data_means_no_exemplar_block(monkeypatch, family):
    case = cases.InstructionCase(family, num_exemplars=3)
    text = render_case(prompt_problem(monkeypatch, case, train=[]), case)
    assert text == expected(dataclasses.replace(case, num_exemplars=0).name)
    assert "Below are some problems." not in text and "The following exemplars" not in text


@pytest.mark.parametrize("family", ["gpt", "bison"])
def test_no_scores_leaves_the_order_and_drops_the_score_lines(monkeypatch, family):
    case = cases.InstructionCase(family)
    shown_scores = render_case(prompt_problem(monkeypatch, case), case)
    hidden = render_case(prompt_problem(monkeypatch, dataclasses.replace(case, num_score_buckets="none")), case)
    assert "score:" not in hidden and hidden == re.sub(r"score:\n\d+\n", "", shown_scores)
    only = cases.InstructionCase(family, "instructions_only")
    hidden_only = render_case(prompt_problem(monkeypatch, dataclasses.replace(only, num_score_buckets="none")), only)
    assert "Precision" not in hidden_only and "\n\n<TEXT>Use simple words.</TEXT>\n\n<TEXT>" in hidden_only


def test_ties_show_the_older_first_and_keep_the_newer_at_the_cap():
    problem = LinearRegression()
    history = [((1, 1), 5.0), ((2, 2), 3.0), ((3, 3), 5.0), ((4, 4), 5.0)]
    assert [s for s, _ in shown_solutions(problem, history, 4)] == [(1, 1), (3, 3), (4, 4), (2, 2)]
    assert [s for s, _ in shown_solutions(problem, history, 3)] == [(3, 3), (4, 4), (2, 2)]


def test_template_names_follow_the_family_or_say_what_they_need():
    def resolved(template: str, **settings) -> str:
        return PromptOptimization.resolve_template(template, settings)

    assert resolved("instructions") == "instructions-gpt"
    assert resolved("instructions", position="A_begin") == "instructions-gpt-start"
    assert resolved("instructions", meta_prompt_family="bison", position="A_begin") == "instructions-bison"
    assert resolved("instructions", meta_prompt_type="instructions_only") == "instructions-only"
    assert resolved("instructions-bison", meta_prompt_family="bison") == "instructions-bison"
    assert resolved("my/own.meta.txt") == "my/own.meta.txt"
    with pytest.raises(OproError, match="template 'instructions-bison' does not fit .* meta_prompt_family 'gpt' "
                                        "and position 'Q_begin', which call for 'instructions-gpt'"):
        build_config("gsm8k", {"template": "instructions-bison"})
    with pytest.raises(OproError, match="call for 'instructions-gpt-start'"):
        build_config("gsm8k", {"template": "instructions-gpt", "problem.position": "A_begin"})
    with pytest.raises(OproError, match=r'num_score_buckets must be an integer in \[1, 1000000\], "none" or "raw"'):
        build_config("gsm8k", {"problem.num_score_buckets": 0})
    with pytest.raises(OproError, match="meta_prompt_family must be one of gpt, bison"):
        build_config("gsm8k", {"problem.meta_prompt_family": "palm"})
