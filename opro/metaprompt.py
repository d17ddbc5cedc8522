"""The meta-prompt: the task description plus the best solutions so far, worst first and best last."""

from __future__ import annotations

from typing import Any

import numpy as np

from opro.problems import Problem


def shown_solutions(
    problem: Problem, trajectory: list[tuple[Any, float]], top_k: int, order: str = "ascending",
    rng: np.random.Generator | None = None,
) -> list[tuple[Any, float]]:
    """The `top_k` best (solution, score) pairs, by default in ascending order of quality: best last (paper
    §2.2). `order` "descending" puts the best first; "random" shuffles them with `rng` (the §5.3 ablation).

    Ties keep the order in which the solutions were found, so the prompt is reproducible.
    """
    sign = -1.0 if problem.minimize else 1.0
    ranked = sorted(range(len(trajectory)), key=lambda i: (sign * trajectory[i][1], -i))
    shown = [trajectory[i] for i in ranked[-top_k:]]
    floor = getattr(problem, "min_shown_score", None)  # prompt optimization hides weak old instructions
    if floor is not None:
        shown = [pair for pair in shown if pair[1] >= floor]
    if order == "descending":
        return shown[::-1]
    if order == "random":
        return [shown[i] for i in (rng or np.random.default_rng(0)).permutation(len(shown))]
    return shown


def render_meta_prompt(
    problem: Problem, shown: list[tuple[Any, float]], meta_template: str, entry_template: str,
    fields: dict[str, str] | None = None,
) -> str:
    """Fill the templates: one entry per shown solution, then the problem's own fields, then `fields` (the
    per-step ones, e.g. a prompt problem's exemplars)."""
    history = "".join(
        entry_template.format(solution=problem.render(s), score=problem.render_score(v)) for s, v in shown
    )
    return meta_template.format(**{"history": history, **problem.prompt_fields(), **(fields or {})}).strip()
