"""Proposal methods (the `Method` seam, opro/methods/base.py): OPRO, EvoPrompt GA and DE, APE, GEPA."""

from __future__ import annotations

from opro.config import METHODS, LoopConfig
from opro.methods.ape import APE
from opro.methods.base import History, Method, Proposal
from opro.methods.evoprompt import EvoPrompt
from opro.methods.gepa import GEPA
from opro.methods.opro import OproMethod
from opro.problems import Problem

#: The class of each method config.METHODS names (there as plain names, so that the command line and the
#: settings check know them without importing the methods); tests/test_methods.py checks the two agree.
METHOD_CLASSES: dict[str, type[APE | EvoPrompt | GEPA | OproMethod]] = {
    "opro": OproMethod, "evoprompt-ga": EvoPrompt, "evoprompt-de": EvoPrompt, "ape": APE, "gepa": GEPA}

#: Each method's extra candidates.csv columns (Method.columns), known before the problem is built.
METHOD_COLUMNS: dict[str, tuple[str, ...]] = {name: cls.columns for name, cls in METHOD_CLASSES.items()}

__all__ = ["METHODS", "METHOD_CLASSES", "METHOD_COLUMNS", "History", "Method", "Proposal", "build_method"]


def build_method(problem: Problem, loop: LoopConfig, seed: int, templates: tuple[str, str]) -> Method:
    """The method `loop.method` names, for `problem`; `templates` are OPRO's meta-prompt and entry."""
    cls = METHOD_CLASSES[loop.method]
    return OproMethod(problem, loop, seed, templates) if cls is OproMethod else cls(problem, loop, seed)
