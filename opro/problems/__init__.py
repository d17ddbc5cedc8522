"""Problems: one module per task, built by name from a preset's `[problem]` table."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from opro.config import MAX_SEED, Range, check_type
from opro.errors import OproError
from opro.problems.base import Invalid, Problem, PromptTask, StepValues, better
from opro.problems.linreg import LinearRegression
from opro.problems.prompt import BBHInstructions, GSM8KInstructions, MMLUInstructions
from opro.problems.tsp import TravelingSalesman

PROBLEMS: dict[str, type] = {"linreg": LinearRegression, "tsp": TravelingSalesman, "gsm8k": GSM8KInstructions,
                             "bbh": BBHInstructions, "mmlu": MMLUInstructions}

__all__ = ["PROBLEMS", "Invalid", "Problem", "PromptTask", "StepValues", "better", "build_problem",
           "check_problem_settings"]


def build_problem(kind: str, settings: dict[str, Any], seed: int) -> Problem:
    """The problem `kind` with `settings`; its instance seed defaults to the run seed."""
    checked = check_problem_settings(kind, {"seed": seed, **settings})
    return PROBLEMS[kind](**checked)


def check_problem_settings(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` checked against the problem's fields (names, types, the class's `LIMITS` and its
    `check_settings`), without building the instance."""
    if not isinstance(kind, str) or kind not in PROBLEMS:
        raise OproError(f"unknown problem {kind!r}; known: {', '.join(sorted(PROBLEMS))}")
    cls = PROBLEMS[kind]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    checked = {}
    for name, value in settings.items():
        if name not in known:
            raise OproError(f"unknown setting 'problem.{name}' for {kind}; known: {', '.join(sorted(known))}")
        checked[name] = check_type(f"problem.{name}", value, hints[name])
    limits = {"seed": Range(0, MAX_SEED), **getattr(cls, "LIMITS", {})}
    for name, allowed in limits.items():
        if name in checked:
            allowed.check(f"problem.{name}", checked[name])
    if hasattr(cls, "check_settings"):
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        cls.check_settings({**defaults, **checked})
    return checked
