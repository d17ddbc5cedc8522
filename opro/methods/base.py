"""The `Method` seam: how a step's candidates are proposed from the run so far.

The loop keeps one job (sample the proposals, score them through the problem, record them, stop at a
budget); a method only says what to ask the optimizer LLM and how to read its answer. It never scores and
never writes files. Its state is a function of the run's files (`History`), so a resumed run continues the
same population without any state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opro.errors import OproError
from opro.problems import Invalid, Problem, PromptTask


@dataclass(frozen=True)
class Proposal:
    """One candidate to sample (and re-sample while it does not parse)."""

    messages: tuple[dict[str, str], ...]
    """The chat messages sent to the optimizer."""
    extras: dict[str, str] = field(default_factory=dict)
    """The method's candidates.csv cells for it (its `columns`: operator, parents...)."""


@dataclass
class History:
    """What a method sees at the start of a step."""

    pairs: list[tuple[Any, float]]
    """Every valid, distinct solution of the run with its score, in the order found (the trajectory)."""
    read_rows: Callable[[], list[dict[str, Any]]]
    """candidates.csv up to the last completed step: True/False cells as bool, the others text
    (opro.results.typed_row; read on demand: OPRO needs none)."""


class Method(Protocol):
    """A proposal method. `columns` are its extra candidates.csv columns (appended after the standard ones;
    none for OPRO, so its files are as before); `temperature` is its sampling temperature."""

    name: str
    columns: tuple[str, ...]
    temperature: float

    def initial_solutions(self, count: int) -> tuple[list[Any], list[dict[str, str]]]:
        """Step 0's solutions (`count`: loop.num_initial) and their candidates.csv extras."""
        ...

    def propose(self, step: int, history: History) -> list[Proposal]:
        """The step's proposals, one per candidate; candidate i is sampled with seed + step * N + i."""
        ...

    def parse(self, text: str) -> Any | Invalid:
        """A solution from the optimizer's raw text, or Invalid with the reason; never raises."""
        ...


def prompt_task(problem: Problem, method: str) -> PromptTask:
    """`problem` when it is a prompt task, else a one-line OproError."""
    if not isinstance(problem, PromptTask):
        raise OproError(f"loop.method {method!r} optimizes instructions; the {problem.name} problem is not a prompt "
                        "task (use loop.method = \"opro\")")
    return problem


def ranked(pairs: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """`pairs` best first (higher scores are better; at equal scores the older one first)."""
    return [pairs[i] for i in sorted(range(len(pairs)), key=lambda i: (-pairs[i][1], i))]
