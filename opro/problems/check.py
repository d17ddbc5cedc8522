"""Problems from outside opro: found by `module:Class` or an `opro.problems` entry point, and checked hook by
hook before any run folder exists, so that bad user code is one line of bad input (exit 2), not a traceback.

Errors that only show while a run scores are data: `GuardedProblem` turns an exception of the user's `parse`
or `score` into an invalid candidate with the reason, as unparseable model output already is.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import sys
from importlib import metadata
from typing import Any

import numpy as np

from opro.errors import OproError
from opro.problems.base import Problem
from opro.scores import Invalid

#: The entry-point group through which an installed package registers problem kinds.
ENTRY_POINT_GROUP = "opro.problems"
#: Every required hook (the optional ones have ProblemBase's defaults, and are checked when present).
REQUIRED = ("name", "minimize", "TEMPLATE_FIELDS", "initial_solutions", "parse", "decode", "score", "render",
            "render_score", "prompt_fields", "is_optimal", "baselines", "describe")
#: The optional hooks, which ProblemBase has (a class that does not subclass it writes them itself).
OPTIONAL = ("LIMITS", "SCORE_LABEL", "QUICK_SETTINGS", "uses_scorer", "min_shown_score", "check_settings",
            "resolve_template", "group_label", "known_optimum", "strong_solution", "neighbors", "perturb",
            "answer_text")

#: Set by `opro --debug`: the user's own exceptions propagate with their tracebacks.
DEBUG_ENV = "OPRO_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def load_problem_class(kind: str, builtins: list[str]) -> type:
    """The class `kind` names: `module:Class` (importable from the working directory or an installed package)
    or an `opro.problems` entry point; checked to be a dataclass with every member of `Problem`."""
    module_name, sep, class_name = kind.partition(":")
    if not sep:
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == kind]
        if not found:
            raise OproError(f"unknown problem {kind!r}; known: {', '.join(builtins)} (or module:Class, or an "
                            f"{ENTRY_POINT_GROUP} entry point)")
        module_name, _, class_name = found[0].value.partition(":")
    if not module_name or not class_name:
        raise OproError(f"problem kind {kind!r}: expected module:Class")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # `module:Class` from the working directory, after installed packages
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        if debugging():
            raise
        raise OproError(f"problem kind {kind!r}: cannot import module {module_name!r}: "
                        f"{type(error).__name__}: {error}") from None
    cls: Any = module
    for part in class_name.split("."):
        cls = getattr(cls, part, None)
    if not isinstance(cls, type):
        local = " (define it at the top level of a module)" if "<locals>" in class_name else ""
        raise OproError(f"problem kind {kind!r}: module {module_name!r} has no class {class_name!r}{local}")
    if not dataclasses.is_dataclass(cls):
        raise OproError(f"problem kind {kind!r}: {class_name} must be a @dataclass (its fields are the settings)")
    missing = [name for name in REQUIRED + OPTIONAL if name not in dir(cls) and name not in _field_names(cls)]
    if missing:
        raise OproError(f"problem kind {kind!r}: {class_name} lacks {', '.join(missing)} (subclass "
                        "opro.ProblemBase for the optional hooks' defaults)")
    return cls


def check_problem(kind: str, cls: type, settings: dict[str, Any]) -> Problem:
    """An instance of a user's problem class, every required hook called once on its own starting solutions
    and its return checked; a one-line OproError naming the hook and what was expected otherwise."""
    return check_instance(kind, _call(kind, cls.__name__, cls, **settings))


def check_instance(kind: str, problem: Any) -> Problem:
    """`problem` (a user's instance) with every required hook called once and its return checked, wrapped in
    `GuardedProblem`; a one-line OproError naming the hook and what was expected otherwise."""
    if isinstance(problem, GuardedProblem):
        return problem
    missing = [name for name in REQUIRED + OPTIONAL if not hasattr(problem, name)]
    if missing:
        raise OproError(f"problem {kind!r}: {type(problem).__name__} lacks {', '.join(missing)} (subclass "
                        "opro.ProblemBase for the optional hooks' defaults)")
    for name, expected, ok in (("name", "a str", isinstance(problem.name, str) and problem.name),
                               ("minimize", "a bool", isinstance(problem.minimize, bool)),
                               ("TEMPLATE_FIELDS", "a tuple of str", isinstance(problem.TEMPLATE_FIELDS, tuple)
                                and all(isinstance(f, str) for f in problem.TEMPLATE_FIELDS))):
        if not ok:
            raise OproError(f"problem kind {kind!r}: {name} must be {expected}, got {getattr(problem, name)!r}")
    solutions = _call(kind, "initial_solutions", problem.initial_solutions, np.random.default_rng(0), 2)
    _expect(kind, "initial_solutions(rng, 2)", "a list of 2 solutions",
            isinstance(solutions, list) and len(solutions) == 2, solutions)
    for solution in solutions:
        rendered = _call(kind, "render", problem.render, solution)
        _expect(kind, "render", "a str", isinstance(rendered, str), rendered)
        again = _call(kind, "decode", problem.decode, rendered)
        _expect(kind, "decode", "the solution render wrote (render(decode(text)) == text)",
                _call(kind, "render", problem.render, again) == rendered, again)
        parsed = _call(kind, "parse", problem.parse, problem.answer_text(solution))
        _expect(kind, "parse", "the solution back from answer_text(solution), or Invalid",
                isinstance(parsed, Invalid) or _call(kind, "render", problem.render, parsed) == rendered, parsed)
    scores = _call(kind, "score", problem.score, solutions)
    _expect(kind, "score", "a list of one finite float per solution", isinstance(scores, list) and len(scores) == 2
            and all(_finite(s) for s in scores), scores)
    shown = _call(kind, "render_score", problem.render_score, float(scores[0]))
    _expect(kind, "render_score", "a str or None", shown is None or isinstance(shown, str), shown)
    fields = _call(kind, "prompt_fields", problem.prompt_fields)
    _expect(kind, "prompt_fields", "a dict of str -> str", isinstance(fields, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()), fields)
    optimal = _call(kind, "is_optimal", problem.is_optimal, float(scores[0]))
    _expect(kind, "is_optimal", "a bool", isinstance(optimal, bool | np.bool_), optimal)
    baselines = _call(kind, "baselines", problem.baselines)
    _expect(kind, "baselines", "a dict of str -> finite float", isinstance(baselines, dict) and all(
        isinstance(k, str) and _finite(v) for k, v in baselines.items()), baselines)
    described = _call(kind, "describe", problem.describe)
    _expect(kind, "describe", "a dict of JSON values", isinstance(described, dict) and _json(described), described)
    return GuardedProblem(problem)


class GuardedProblem:
    """A user's problem, as the loop sees it: an exception of its `parse` becomes an Invalid candidate, and one
    of its `score` (or a score that is not a finite number) an Invalid for the solutions it could not score;
    every other member is the problem's own. With `opro --debug` the exceptions propagate."""

    def __init__(self, problem: Any) -> None:
        self.inner = problem

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def parse(self, text: str) -> Any:
        try:
            return self.inner.parse(text)
        except Exception as error:
            if debugging():
                raise
            return Invalid(f"parse raised {type(error).__name__}: {error}")

    def score(self, solutions: list[Any]) -> list[float | Invalid]:
        """The batch's scores; on an exception each solution is scored alone, so one bad solution costs only
        its own score."""
        try:
            scores = self.inner.score(solutions)
            if isinstance(scores, list) and len(scores) == len(solutions):
                return [self._checked(s) for s in scores]
        except Exception:
            if debugging():
                raise
        return [self._one(solution) for solution in solutions]

    def _one(self, solution: Any) -> float | Invalid:
        try:
            scores = self.inner.score([solution])
        except Exception as error:
            if debugging():
                raise
            return Invalid(f"score raised {type(error).__name__}: {error}")
        if not isinstance(scores, list) or len(scores) != 1:
            return Invalid(f"score returned {scores!r}, expected a list of one float per solution")
        return self._checked(scores[0])

    @staticmethod
    def _checked(value: Any) -> float | Invalid:
        return float(value) if _finite(value) else Invalid(f"score returned {value!r}, expected a finite float")


def _call(kind: str, hook: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except OproError:
        raise
    except Exception as error:
        if debugging():
            raise
        raise OproError(f"problem kind {kind!r}: {hook} raised {type(error).__name__}: {error} (--debug shows "
                        "the traceback)") from None


def _expect(kind: str, hook: str, expected: str, ok: bool, got: Any) -> None:
    if not ok:
        raise OproError(f"problem kind {kind!r}: {hook} must return {expected}, got {_short(got)}")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool) and \
        math.isfinite(float(value))


def _json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}
