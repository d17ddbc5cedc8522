"""The `Problem` seam: everything any caller needs from a task, and nothing about LLMs.

`Problem` lists every hook a caller uses. The first group is required; the second has a documented default in
`ProblemBase`, so a problem of the user's own subclasses it and writes only the required hooks
(docs/your-own-problem.md). The built-in problems subclass it too, and a conformance test calls every hook of each.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from opro.scores import Invalid, better
from opro.settings import Range

__all__ = ["Invalid", "Problem", "ProblemBase", "PromptTask", "StepValues", "better"]


@runtime_checkable
class Problem(Protocol):
    """One optimization task. Solutions are immutable and hashable; scores are floats.

    `minimize` says which direction is better. Parsing never raises: bad text becomes `Invalid`. Settings are
    the dataclass fields of the problem's class (the preset's `[problem]` table), checked against `LIMITS`
    and `check_settings` before the instance is built.
    """

    # -- required --
    name: str
    """The problem's kind as shown in tables (a built-in's registry name)."""
    minimize: bool
    """True: a lower score is better."""
    TEMPLATE_FIELDS: tuple[str, ...]
    """The meta-prompt fields `prompt_fields()` (and a prompt task's `step_fields`) fill, besides `history`;
    templates are checked against them before a run starts."""

    def initial_solutions(self, rng: np.random.Generator, count: int) -> list[Any]:
        """`count` random starting solutions (paper §3: 5), drawn from `rng`."""
        ...

    def parse(self, text: str) -> Any | Invalid:
        """Extract and validate one solution from raw optimizer output; never raises."""
        ...

    def decode(self, rendered: str) -> Any:
        """Inverse of `render`, for solutions read back from a run directory."""
        ...

    def score(self, solutions: list[Any]) -> list[float]:
        """Objective values, batched, one finite float per solution."""
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
        """Instance metadata for config.json and summary.json (sizes, optimum, instance name); JSON values."""
        ...

    # -- optional: ProblemBase has the defaults --
    LIMITS: ClassVar[dict[str, Range]]
    """Setting name -> allowed range, checked before the instance is built (default: none)."""
    SCORE_LABEL: ClassVar[str]
    """What a score is, with its unit, for axis labels and tables (default "score")."""
    QUICK_SETTINGS: ClassVar[dict[str, Any]]
    """Settings that build the instance quickly, for a dry run and the baseline table (TSP: no certified
    optimum); default none."""
    uses_scorer: ClassVar[bool]
    """True for a prompt task (`PromptTask`), which scores through a scorer LLM (default False)."""
    min_shown_score: float | None
    """Solutions scoring below this are not shown in the meta-prompt (default None: all are)."""

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """Cross-setting checks on the full settings (defaults filled in); raise OproError. Default: none."""
        ...

    @classmethod
    def resolve_template(cls, template: str, settings: dict[str, Any]) -> str:
        """The template the preset's `template` names for these settings (default: `template` itself)."""
        ...

    @classmethod
    def group_label(cls, task: str, instance: dict[str, Any]) -> str:
        """The comparison setting of a run, from its task and `describe()` (default: the task)."""
        ...

    def known_optimum(self) -> float | None:
        """The optimal score when known (default: `baselines()["optimal"]`, else None)."""
        ...

    def strong_solution(self) -> Any | None:
        """A solver-made best solution, the RL export's target answer (default None: none known)."""
        ...

    def neighbors(self, solution: Any) -> list[Any]:
        """The solutions one small move from `solution`, the RL export's next-step search (default: none)."""
        ...

    def perturb(self, solution: Any, rng: np.random.Generator) -> Any | None:
        """A random nearby solution, for the RL export's synthetic histories (default None: not supported)."""
        ...

    def answer_text(self, solution: Any) -> str:
        """`solution` written as the meta-prompt asks the optimizer to answer (default: `render`)."""
        ...


class ProblemBase:
    """The optional hooks of `Problem` with their defaults. Subclass it (as a dataclass, whose fields are the
    settings) and write the required hooks."""

    LIMITS: ClassVar[dict[str, Range]] = {}
    SCORE_LABEL: ClassVar[str] = "score"
    QUICK_SETTINGS: ClassVar[dict[str, Any]] = {}
    uses_scorer: ClassVar[bool] = False
    min_shown_score: float | None = None

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        return None

    @classmethod
    def resolve_template(cls, template: str, settings: dict[str, Any]) -> str:
        return template

    @classmethod
    def group_label(cls, task: str, instance: dict[str, Any]) -> str:
        return task

    def known_optimum(self) -> float | None:
        value = self.baselines().get("optimal")  # type: ignore[attr-defined]
        return None if value is None else float(value)

    def strong_solution(self) -> Any | None:
        return None

    def neighbors(self, solution: Any) -> list[Any]:
        return []

    def perturb(self, solution: Any, rng: np.random.Generator) -> Any | None:
        return None

    def answer_text(self, solution: Any) -> str:
        return self.render(solution)  # type: ignore[attr-defined]


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
    files in the run directory, per-step meta-prompt fields, and what the proposal methods (opro/methods/),
    the evaluation command and the run read. They test for it with isinstance, never with hasattr."""

    uses_scorer: bool
    min_shown_score: float | None
    """Old instructions scoring below this are not shown in OPRO's meta-prompt (None: all are)."""
    train: list[Any]
    """The training examples (`Example`: question, answer), APE's demonstrations."""
    scorer: Any
    """The `InstructionScorer` once `use_scorer` ran (its `calls` count the scorer's requests); None before."""
    scorer_max_tokens: int
    """The scorer's completion limit per answer."""
    screen_top_k: int
    """Screening's bar: a new instruction is scored fully only if it could enter this top-k (the run sets it
    to loop.top_k)."""

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

    def examples(self, split: str) -> list[Any]:
        """The examples of `split` ("train", "validation", "test"), for `opro eval`."""
        ...

    def evaluate(self, instruction: str, examples: list[Any]) -> list[Any]:
        """`instruction` scored on `examples` by the scorer: one `ExampleResult` each."""
        ...
