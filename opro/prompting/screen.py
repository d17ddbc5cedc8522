"""Screening new instructions by successive halving (`--screen`; beyond the paper).

A new instruction is first scored on a small seeded subset of the training split. It goes on only if it could
still enter the top-k: its number of correct answers on the subset, plus a margin, must reach that of the k-th
best fully scored instruction on the same subset (whose answers there are already known). Until k
instructions are fully scored, every candidate goes on. Each question is asked once per instruction, so a
candidate that passes costs no extra scorer calls.

The rule's settings (problem.screen_*; the defaults: 3 stages, a fresh subset each step, margin 0, z 0):
- `stages`: successive halving proper. A candidate that passes a stage is scored on a larger subset
  (`STAGE_GROWTH` times the last, nested: the questions already answered are kept), and compared again
  with the k-th best on that subset, before the full split; 1: one subset.
- `rotate`: a fresh seeded subset each step (GEPA's per-iteration minibatch) instead of one for the run. With
  one fixed subset the top-k fills up with instructions that did well on it, so the bar there keeps rising
  and more would-be top-k entrants are cut (benchmarks/screen_at_scale.py).
- `z` > 0: a confidence bound on the paired difference. On the subset, the candidate's correct count minus
  the k-th best's has variance about the number of questions where the two differ (the discordant pairs,
  as in McNemar's test), so the candidate passes when difference + margin + z * sqrt(discordant) >= 0.
- `margin` < 0: the candidate must beat the k-th best by -margin answers on the subset (GEPA's minibatch
  acceptance, gepa-ai/gepa: a new candidate is kept only if it does strictly better than its parent on the
  same minibatch; here the parent's place is taken by the k-th best, the bar to enter the top-k).

This is a heuristic: a candidate that does badly on the subset but well on the rest is cut. The benchmarks
(benchmarks/prompt_screening.py on a real run, benchmarks/screen_at_scale.py with a simulated scorer at the
paper's scale) measure the calls saved, the best train accuracy kept, and how often a cut instruction would
have entered the top-k.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

#: Each successive-halving stage's subset is this many times the previous one (Jamieson & Talwalkar's eta).
STAGE_GROWTH = 3


def screen_positions(n_train: int, fraction: float, seed: int, step: int | None = None) -> list[int]:
    """The subset: a seeded `fraction` of the training positions (at least one), sorted; with `step`, the
    subset of that step (`rotate`), else the run's one."""
    size = min(n_train, max(1, round(fraction * n_train)))
    key = [seed, 104729] if step is None else [seed, step, 104729]
    return sorted(int(i) for i in np.random.default_rng(key).choice(n_train, size=size, replace=False))


def stage_positions(n_train: int, fraction: float, seed: int, stages: int = 1,
                    step: int | None = None) -> list[list[int]]:
    """The nested subsets of the screening stages: the first is `screen_positions`, each next one
    STAGE_GROWTH times larger (the previous one plus seeded new positions); a stage that would reach the
    whole split is left out (the full score follows anyway)."""
    first = screen_positions(n_train, fraction, seed, step)
    taken = set(first)
    key = [seed, 7919] if step is None else [seed, step, 7919]
    more = [int(i) for i in np.random.default_rng(key).permutation([i for i in range(n_train) if i not in taken])]
    subsets = [first]
    for stage in range(1, stages):
        size = len(first) * STAGE_GROWTH ** stage
        if size >= n_train:
            break
        subsets.append(sorted(first + more[:size - len(first)]))
    return subsets


def kth_best(full_scores: dict[str, float], k: int) -> str | None:
    """The k-th best fully scored instruction (ties: the one found first ranks higher); None below k."""
    if len(full_scores) < k:
        return None
    order = heapq.nsmallest(k, enumerate(full_scores.items()), key=lambda item: (-item[1][1], item[0]))
    return order[k - 1][1][0]


def passes_screen(candidate_correct: int, bar_correct: int | None, margin: int = 0) -> bool:
    """Whether a candidate with `candidate_correct` subset answers right may still enter the top-k, against
    the k-th best's `bar_correct` on the same subset (None: fewer than k fully scored, so it may)."""
    return bar_correct is None or candidate_correct + margin >= bar_correct


def passes_stage(candidate: Sequence[bool], bar: Sequence[bool] | None, margin: int = 0, z: float = 0.0) -> bool:
    """Whether a candidate goes on, from its answers (right or wrong) and the k-th best's on the same
    questions (None: fewer than k fully scored, so it does): difference in correct answers + margin +
    z * sqrt(discordant pairs) >= 0. With z = 0 this is `passes_screen`."""
    if bar is None:
        return True
    difference = sum(candidate) - sum(bar)
    discordant = sum(c != b for c, b in zip(candidate, bar, strict=True))
    return difference + margin + z * math.sqrt(discordant) >= 0


def calls_without_screening(n_instructions: int, n_train: int) -> int:
    """Scorer calls to score every instruction on the whole split (no cache hits)."""
    return n_instructions * n_train
