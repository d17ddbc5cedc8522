"""The `Problem` seam: everything the loop needs from a task, and nothing about LLMs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Invalid:
    """A proposal that could not be turned into a solution. It is data, kept with its reason."""

    reason: str


class Problem(Protocol):
    """One optimization task. Solutions are immutable and hashable; scores are floats.

    `minimize` says which direction is better. Parsing never raises: bad text becomes `Invalid`.

    `TEMPLATE_FIELDS` names the meta-prompt fields of `prompt_fields()` (and `step_fields`), besides
    `history`; templates are checked against them before a run starts. `LIMITS` (setting -> config.Range)
    and an optional static `check_settings(settings)` check the settings before the instance is built.

    Optional, for prompt optimization: `step_fields(step, shown) -> dict[str, str]` (per-step meta-prompt
    fields, e.g. exemplars), `min_shown_score` (weaker solutions are not shown), `uses_scorer` with
    `use_scorer(llm)`, `attach_run(path, last_step)` and `close()` (see opro/problems/prompt.py); `StepValues` below
    (columns of its own in steps.csv).
    """

    name: str
    minimize: bool
    TEMPLATE_FIELDS: tuple[str, ...]

    def initial_solutions(self, rng: np.random.Generator, count: int) -> list[Any]:
        """`count` random starting solutions (paper §3: 5), drawn from `rng`."""
        ...

    def parse(self, text: str) -> Any | Invalid:
        """Extract and validate one solution from raw optimizer output."""
        ...

    def decode(self, rendered: str) -> Any:
        """Inverse of `render`, for solutions read back from a run directory."""
        ...

    def score(self, solutions: list[Any]) -> list[float]:
        """Objective values, batched."""
        ...

    def render(self, solution: Any) -> str:
        """The solution as shown in the meta-prompt and stored in `candidates.csv`."""
        ...

    def render_score(self, score: float) -> str | None:
        """The score as shown in the meta-prompt; None: not shown (its entry lines are left out)."""
        ...

    def prompt_fields(self) -> dict[str, str]:
        """Extra fields of the meta-prompt template (e.g. the TSP points)."""
        ...

    def is_optimal(self, score: float) -> bool:
        """True when `score` reaches the known optimum (False when none is known)."""
        ...

    def baselines(self) -> dict[str, float]:
        """Reference scores, by method name (the optimum under the name "optimal" when known)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Instance metadata for config.json and summary.json (sizes, optimum, instance name)."""
        ...


@runtime_checkable
class StepValues(Protocol):
    """A problem that records values of its own in steps.csv, after the standard columns (a prompt problem's
    validation accuracies, opro/problems/prompt.py). `step_columns` may be empty: then nothing is added."""

    step_columns: tuple[str, ...]
    """The extra steps.csv columns, numbers (empty cells: no value at that step)."""

    def step_values(self, step: int) -> dict[str, float | None]:
        """The values of `step_columns` once `step` is scored."""
        ...


def better(a: float, b: float, minimize: bool) -> bool:
    """Whether score `a` is strictly better than `b`."""
    return a < b if minimize else a > b
