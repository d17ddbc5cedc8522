"""The reference's exemplar criteria built on wrong answers (opt_utils.run_evolution,
few_shot_selection_criteria "current_most_frequent" and "accumulative_most_frequent"), as pure functions."""

from __future__ import annotations

from collections import Counter

import numpy as np


def most_frequent_picks(criterion: str, outcomes: list[tuple[bool, ...]], n: int,
                        rng: np.random.Generator) -> list[int]:
    """Training positions to show, from `outcomes` (per instruction, per training question: answered right).

    "current_most_frequent" (`outcomes` of the shown instructions): a random pick of `n` among the questions
    missed by the most instructions, sorted; with fewer than `n` of those, the `n` most missed, most first.
    "accumulative_most_frequent" (`outcomes` of every instruction of the run): every missed question, most
    missed first, when there are at most `n`; else a random pick of `n` among all of them, sorted (the
    reference draws from the whole list, whatever the counts). Ties rank the earlier question first. No
    missed question: no exemplars, as the reference.
    """
    missed: Counter[int] = Counter()
    for outcome in outcomes:
        missed.update(i for i, right in enumerate(outcome) if not right)
    ranked = sorted(missed, key=lambda i: (-missed[i], i))
    if criterion == "accumulative_most_frequent":
        if len(ranked) <= n:
            return ranked
        pool = ranked
    else:
        pool = [i for i in ranked if missed[i] == missed[ranked[0]]] if ranked else []
        if len(pool) < n:
            return ranked[:n]
    return sorted(int(i) for i in rng.choice(pool, size=n, replace=False))
