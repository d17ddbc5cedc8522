"""Screening new instructions by successive halving (`--screen`; beyond the paper).

A new instruction is first scored on a small seeded subset of the training split. It goes on to the full
split only if it could still enter the top-k: its number of correct answers on the subset, plus a margin, must
reach that of the k-th best fully scored instruction on the same subset (whose answers there are already
known). Until k instructions are fully scored, every candidate goes on. Both the subset answers and the full
answers go through the score cache, so a candidate that passes costs no extra scorer calls.

This is a heuristic: a candidate that does badly on the subset but well on the rest is cut. The benchmark
(benchmarks/prompt_screening.py) measures the calls saved and whether the best train accuracy is kept.
"""

from __future__ import annotations

import numpy as np


def screen_positions(n_train: int, fraction: float, seed: int) -> list[int]:
    """The subset: a seeded `fraction` of the training positions (at least one), sorted."""
    size = min(n_train, max(1, round(fraction * n_train)))
    return sorted(int(i) for i in np.random.default_rng([seed, 104729]).choice(n_train, size=size, replace=False))


def kth_best(full_scores: dict[str, float], k: int) -> str | None:
    """The k-th best fully scored instruction (ties: the one found first ranks higher); None below k."""
    if len(full_scores) < k:
        return None
    order = sorted(enumerate(full_scores.items()), key=lambda item: (-item[1][1], item[0]))
    return order[k - 1][1][0]


def passes_screen(candidate_correct: int, bar_correct: int | None, margin: int = 0) -> bool:
    """Whether a candidate with `candidate_correct` subset answers right may still enter the top-k, against
    the k-th best's `bar_correct` on the same subset (None: fewer than k fully scored, so it may)."""
    return bar_correct is None or candidate_correct + margin >= bar_correct


def calls_without_screening(n_instructions: int, n_train: int) -> int:
    """Scorer calls to score every instruction on the whole split (no cache hits)."""
    return n_instructions * n_train
