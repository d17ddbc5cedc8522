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

    Prompt optimization adds the `PromptTask` protocol below; `StepValues` below adds columns of its own to
    steps.csv.
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


@runtime_checkable
class PromptTask(Protocol):
    """What a prompt optimization problem adds to `Problem` (opro/problems/prompt.py): a scorer LLM, its own
    files in the run directory, per-step meta-prompt fields, and what the proposal methods (opro/methods/)
    read. The loop, the run and the methods test for it with isinstance, never with hasattr."""

    uses_scorer: bool
    min_shown_score: float | None
    """Old instructions scoring below this are not shown in OPRO's meta-prompt (None: all are)."""
    train: list[Any]
    """The training examples (`Example`: question, answer), APE's demonstrations."""

    def use_scorer(self, llm: Any) -> None:
        """Score through `llm` (the run builds it from the scorer config)."""
        ...

    def attach_run(self, path: Any, last_step: int | None = None) -> None:
        """Write the problem's own files into the run directory at `path` (cut back to `last_step`)."""
        ...

    def close(self) -> None:
        """Shut the scorer down."""
        ...

    def begin_step(self, step: int) -> None:
        """The loop starts `step` (before any proposal of it is scored)."""
        ...

    def step_fields(self, step: int, shown: list[tuple[Any, float]]) -> dict[str, str]:
        """Per-step meta-prompt fields (OPRO's exemplars); called once per step, before scoring."""
        ...

    def example_results(self, instruction: str) -> list[dict[str, str]] | None:
        """A fully scored instruction's per-training-example results as recorded in the run directory
        (instructions/<id>.csv rows: index, raw_answer, parsed, gold, correct...); None when it was not fully
        scored. GEPA's Pareto front and feedback read them."""
        ...

    def check_instruction(self, text: str) -> str | Invalid:
        """A proposed instruction (already extracted from the optimizer's text) checked against the task's
        rules (length, no digits for GSM8K...): the instruction, or Invalid with the reason."""
        ...


def better(a: float, b: float, minimize: bool) -> bool:
    """Whether score `a` is strictly better than `b`."""
    return a < b if minimize else a > b
