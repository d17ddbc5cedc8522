"""The meta-prompt: the task description plus the best solutions so far, worst first and best last."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from opro.problems import Problem

# A score shown as "label:\n{score}" lines, or inline as "Label: {score} " (instructions-only's "Precision:").
_SCORE_LINES = re.compile(r"[^\n{}]*:\n\{score\}\n?|[A-Za-z]+: \{score\} ?")


def shown_solutions(
    problem: Problem, trajectory: list[tuple[Any, float]], top_k: int, order: str = "ascending",
    rng: np.random.Generator | None = None,
) -> list[tuple[Any, float]]:
    """The `top_k` best (solution, score) pairs, by default in ascending order of quality: best last (paper
    §2.2). `order` "descending" puts the best first; "random" shuffles them with `rng` (the §5.3 ablation).

    Ties, as in the reference code (a stable sort by score, then the last `top_k`): the older solution is shown
    first, and at the `top_k` cap the newer one stays in.
    """
    sign = -1.0 if problem.minimize else 1.0
    ranked = sorted(range(len(trajectory)), key=lambda i: (sign * trajectory[i][1], i))
    shown = [trajectory[i] for i in ranked[-top_k:]]
    floor = problem.min_shown_score  # prompt optimization hides weak old instructions
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
    per-step ones, e.g. a prompt problem's exemplars).

    A problem whose `render_score` returns None hides the scores (the §5.3 "no scores" ablation): the entry's
    score lines ("score:\\n{score}") or inline score ("Precision: {score} ") are left out.
    """
    entries = []
    for solution, value in shown:
        score = problem.render_score(value)
        template = entry_template if score is not None else _SCORE_LINES.sub("", entry_template)
        entries.append(template.format(solution=problem.render(solution), score=score))
    return meta_template.format(**{"history": "".join(entries), **problem.prompt_fields(), **(fields or {})}).strip()
