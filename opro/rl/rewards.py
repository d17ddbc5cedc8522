"""Rewards for optimizer proposals, from the problem's own parser and scorer, in TRL's signature.

For one completion of an episode's meta-prompt:
- invalid (does not parse): `invalid` (negative);
- a duplicate of a solution already seen: `duplicate` (negative);
- valid: the normalized improvement over the best solution shown, clipped to [-clip, clip]. With a known
  optimum it is the fraction of the remaining gap closed, (best_shown - score) / (best_shown - optimum)
  for a minimized score (1 at the optimum); without one it is relative to |best_shown|;
- plus `new_best_bonus` when the proposal beats every solution shown.

Prompt-optimization problems score through their scorer LLM (given to `opro_reward(scorer=...)`) and
the problem's evaluation cache, so repeated instructions are not scored twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opro.errors import OproError
from opro.problems import Invalid, better
from opro.rl.episodes import Episode, problem_from


@dataclass(frozen=True)
class RewardConfig:
    """The reward's constants (unitless; a valid proposal's base reward lies in [-clip, clip])."""

    invalid: float = -1.0
    """Reward of a proposal that does not parse."""
    duplicate: float = -0.5
    """Reward of a valid proposal that repeats a solution already seen."""
    new_best_bonus: float = 0.5
    """Added when the proposal is strictly better than every solution shown."""
    clip: float = 1.0
    """Bound on the normalized improvement (a very bad proposal is -clip, not -1e12)."""


@dataclass(frozen=True)
class Judgement:
    """What a proposal is and what it earns."""

    reward: float
    valid: bool
    duplicate: bool
    improved: bool
    """Strictly better than the best solution shown."""
    score: float | None


def judge(episode: Episode, text: str, config: RewardConfig = RewardConfig(), scorer: Any = None) -> Judgement:
    """Parse and score one proposal for `episode`; never raises on bad text. A prompt-optimization problem
    scores through `scorer` (an LLM), attached once, with the problem's evaluation cache."""
    problem = problem_from(episode.problem, episode.settings)
    if getattr(problem, "uses_scorer", False) and getattr(problem, "scorer", None) is None:
        if scorer is None:
            raise OproError(f"rewards of the {episode.problem} problem need a scorer LLM (opro_reward(scorer=...))")
        problem.use_scorer(scorer)
    parsed = problem.parse(text)
    if isinstance(parsed, Invalid):
        return Judgement(config.invalid, False, False, False, None)
    if problem.render(parsed) in set(episode.seen):
        return Judgement(config.duplicate, True, True, False, None)
    score = problem.score([parsed])[0]
    gain = improvement(score, episode.best_shown, episode.optimum, problem.minimize)
    value = max(-config.clip, min(config.clip, gain)) if math.isfinite(gain) else -config.clip
    improved = better(score, episode.best_shown, problem.minimize)
    return Judgement(value + (config.new_best_bonus if improved else 0.0), True, False, improved, score)


def improvement(score: float, best_shown: float, optimum: float | None, minimize: bool) -> float:
    """Normalized improvement of `score` over `best_shown` (positive is better, 1 reaches the optimum)."""
    gain = best_shown - score if minimize else score - best_shown
    if optimum is not None:
        gap = best_shown - optimum if minimize else optimum - best_shown
        if gap > 1e-9:
            return gain / gap
    return gain / max(abs(best_shown), 1e-9)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational list of messages (the last one's content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        return str(completion[-1].get("content", ""))
    return ""


def opro_reward(config: RewardConfig = RewardConfig(), scorer: Any = None) -> Callable[..., list[float]]:
    """A TRL reward function: `f(completions, problem, settings, seen, best_shown, optimum, **kwargs)`.

    The keyword arguments are the dataset columns of the episodes (see `Episode`), one value per completion.
    `scorer` is the scorer LLM of prompt-optimization problems (unused by TSP and linreg).
    """

    def reward(completions: list[Any], problem: list[str], settings: list[str], seen: list[list[str]],
               best_shown: list[float], optimum: list[float | None], **kwargs: Any) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            episode = Episode([], problem[i], settings[i], list(seen[i]), float(best_shown[i]), optimum[i])
            out.append(judge(episode, completion_text(completion), config, scorer).reward)
        return out

    reward.__name__ = "opro_reward"
    return reward
