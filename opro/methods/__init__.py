"""Proposal methods (the `Method` seam, opro/methods/base.py): OPRO, EvoPrompt GA and DE, APE, GEPA."""

from __future__ import annotations

from opro.config import LoopConfig
from opro.methods.ape import APE
from opro.methods.base import History, Method, Proposal
from opro.methods.evoprompt import EvoPrompt
from opro.methods.gepa import GEPA
from opro.methods.opro import OproMethod
from opro.problems import Problem

#: Each method's extra candidates.csv columns (Method.columns), known before the problem is built.
METHOD_COLUMNS: dict[str, tuple[str, ...]] = {"opro": OproMethod.columns, "evoprompt-ga": EvoPrompt.columns,
                                              "evoprompt-de": EvoPrompt.columns, "ape": APE.columns,
                                              "gepa": GEPA.columns}

__all__ = ["METHOD_COLUMNS", "History", "Method", "Proposal", "build_method"]


def build_method(problem: Problem, loop: LoopConfig, seed: int, templates: tuple[str, str]) -> Method:
    """The method `loop.method` names (config.METHODS), for `problem`; `templates` are OPRO's."""
    if loop.method == "opro":
        return OproMethod(problem, loop, seed, templates)
    if loop.method == "ape":
        return APE(problem, loop, seed)
    if loop.method == "gepa":
        return GEPA(problem, loop, seed)
    return EvoPrompt(problem, loop, seed, loop.method.removeprefix("evoprompt-"))
