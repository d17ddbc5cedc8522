"""Problems: built by kind from a preset's `[problem]` table.

A kind is a built-in name (`tsp`, `linreg`, `gsm8k`, `bbh`, `mmlu`, `prompt`), the name of an `opro.problems`
entry point of an installed package, or `module:Class`, importable from the working directory or an installed
package. A problem class is a dataclass whose fields are its settings and which satisfies `Problem` (most
simply by subclassing `ProblemBase`); opro/problems/check.py turns a class that does not into one line.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from opro.errors import OproError
from opro.problems.base import Invalid, Problem, ProblemBase, PromptTask, StepValues, better
from opro.problems.check import check_problem, load_problem_class
from opro.problems.linreg import LinearRegression
from opro.problems.prompt import BBHInstructions, GSM8KInstructions, MMLUInstructions
from opro.problems.tsp import TravelingSalesman
from opro.problems.user_prompt import UserPromptTask
from opro.settings import MAX_SEED, Range, check_type

PROBLEMS: dict[str, type] = {"linreg": LinearRegression, "tsp": TravelingSalesman, "gsm8k": GSM8KInstructions,
                             "bbh": BBHInstructions, "mmlu": MMLUInstructions, "prompt": UserPromptTask}

__all__ = ["PROBLEMS", "Invalid", "Problem", "ProblemBase", "PromptTask", "StepValues", "better", "build_problem",
           "check_problem_settings", "known_class", "problem_class"]


def problem_class(kind: str) -> type:
    """The class of problem `kind`: a built-in, an `opro.problems` entry point or `module:Class`."""
    if not isinstance(kind, str) or not kind:
        raise OproError(f"problem kind must be a name or module:Class, got {kind!r}")
    if kind in PROBLEMS:
        return PROBLEMS[kind]
    return load_problem_class(kind, sorted(PROBLEMS))


def known_class(kind: str) -> type:
    """The class of `kind` for reading a recorded run: `ProblemBase`'s defaults where it cannot be loaded here
    (a `module:Class` that is not importable from this working directory)."""
    try:
        return problem_class(kind)
    except OproError:
        return ProblemBase


def build_problem(kind: str, settings: dict[str, Any], seed: int) -> Problem:
    """The problem `kind` with `settings`; its instance seed defaults to the run seed (a problem without a
    `seed` setting gets none). A problem from outside opro is checked hook by hook (check_problem)."""
    cls = problem_class(kind)
    has_seed = "seed" in {f.name for f in dataclasses.fields(cls)}
    checked = check_problem_settings(kind, {"seed": seed, **settings} if has_seed else dict(settings))
    if kind in PROBLEMS:
        return cls(**checked)
    return check_problem(kind, cls, checked)


def check_problem_settings(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` checked against the problem's fields (names, types, the class's `LIMITS` and its
    `check_settings`), without building the instance."""
    cls = problem_class(kind)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    checked = {}
    for name, value in settings.items():
        if name not in known:
            raise OproError(f"unknown setting 'problem.{name}' for {kind}; known: {', '.join(sorted(known)) or 'none'}")
        checked[name] = check_type(f"problem.{name}", value, hints[name])
    limits = {"seed": Range(0, MAX_SEED), **cls.LIMITS}
    for name, allowed in limits.items():
        if name in checked:
            allowed.check(f"problem.{name}", checked[name])
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    cls.check_settings({**defaults, **checked})
    return checked
