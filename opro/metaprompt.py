"""The meta-prompt: the task description plus the best solutions so far, worst first and best last."""

from __future__ import annotations

from typing import Any

from opro.problems import Problem


def shown_solutions(problem: Problem, trajectory: list[tuple[Any, float]], top_k: int) -> list[tuple[Any, float]]:
    """The `top_k` best (solution, score) pairs in ascending order of quality: best last (paper §2.2).

    Ties keep the order in which the solutions were found, so the prompt is reproducible.
    """
    sign = -1.0 if problem.minimize else 1.0
    ranked = sorted(range(len(trajectory)), key=lambda i: (sign * trajectory[i][1], -i))
    return [trajectory[i] for i in ranked[-top_k:]]


def render_meta_prompt(
    problem: Problem, shown: list[tuple[Any, float]], meta_template: str, entry_template: str
) -> str:
    """Fill the templates: one entry per shown solution, then the problem's own fields."""
    history = "".join(
        entry_template.format(solution=problem.render(s), score=problem.render_score(v)) for s, v in shown
    )
    return meta_template.format(history=history, **problem.prompt_fields()).strip()
