"""A simulated scorer (and a simulated optimizer) for measuring the `--screen` rule at scale, not a model.

Nothing here is an LLM. Each question has a seeded difficulty, each instruction a latent ability; the
simulated scorer answers question q right under instruction i when a seeded uniform draw u[i, q] falls below
logistic(ability[i] - difficulty[q]), so every (instruction, question) outcome is fixed by the seed. A child
instruction keeps its parent's draw on a share of the questions (`inherit`): a rephrasing changes some
answers, not all, so instructions are correlated as a real scorer's are.

The simulated optimizer stands in for OPRO's proposals: each new instruction is a variant of one shown in the
meta-prompt (best first, the parent's rank drawn from an exponential with mean `parent_rank`), its ability
the parent's plus a normal step (mean `drift`, mostly a little worse; sd `spread`), or with probability
`wild` an unrelated instruction. Its random draws are seeded per (seed, step, proposal), so two runs with the
same seed see the same proposals for as long as they show the same instructions: runs with and without
screening are paired, and differ only where screening changed the top-k.

`SimulatedScorer` stands where the problem's InstructionScorer does (problem.scorer), so the real
PromptOptimization._score_one and opro.prompting.screen rule decide what is scored. It counts one scorer call
per (instruction, question) pair asked for the first time: the calls a run makes with the score cache on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opro.prompting.data import Example
from opro.prompting.scoring import ExampleResult


@dataclass(frozen=True)
class SimulationSettings:
    """The simulated world's knobs (logits; accuracies in percent)."""

    start_accuracy: float = 60.0
    """Expected train accuracy of the initial instruction (paper Table 4: PaLM 2-L scorer, "Let's solve the
    problem.", about 60% on GSM8K)."""
    difficulty_sd: float = 1.5
    """Spread of the question difficulties (logits)."""
    parent_rank: float = 4.0
    """Mean rank (0: the best) of the shown instruction a proposal varies."""
    drift: float = -0.4
    """Mean ability change from parent to child (logits): most rephrasings are no better."""
    spread: float = 0.2
    """Sd of the ability change (logits)."""
    wild: float = 0.1
    """Share of proposals unrelated to the shown instructions (ability: the start's - 0.2, sd 0.3)."""
    inherit: float = 0.5
    """Share of questions on which a child keeps its parent's draw."""


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class SimulatedWorld:
    """The seeded abilities and answers of every instruction proposed in one simulated run."""

    def __init__(self, n_questions: int, seed: int, settings: SimulationSettings = SimulationSettings()) -> None:
        self.settings, self.seed = settings, seed
        self.difficulty = np.random.default_rng([seed, 1]).normal(0.0, settings.difficulty_sd, n_questions)
        grid = np.linspace(-5, 5, 2001)  # the ability whose expected accuracy is start_accuracy
        expected = _logistic(grid[:, None] - self.difficulty[None, :]).mean(axis=1)
        self.start_ability = float(grid[np.argmin(abs(expected - settings.start_accuracy / 100))])
        self.ability: dict[str, float] = {}
        self.draws: dict[str, np.ndarray] = {}
        self.outcomes: dict[str, np.ndarray] = {}

    def _add(self, name: str, ability: float, draws: np.ndarray) -> str:
        self.ability[name], self.draws[name] = ability, draws
        self.outcomes[name] = draws < _logistic(ability - self.difficulty)
        return name

    def initial(self) -> str:
        """Step 0's instruction."""
        draws = np.random.default_rng([self.seed, 2]).random(len(self.difficulty))
        return self._add("simulated instruction 0", self.start_ability, draws)

    def propose(self, step: int, index: int, shown: list[str]) -> str:
        """The `index`-th new instruction of `step`, a variant of one of `shown` (best first)."""
        s, rng = self.settings, np.random.default_rng([self.seed, 3, step, index])
        wild, rank, change = rng.random() < s.wild, rng.exponential(s.parent_rank), rng.normal(s.drift, s.spread)
        keep, fresh = rng.random(len(self.difficulty)) < s.inherit, rng.random(len(self.difficulty))
        name = f"simulated instruction {step}.{index}"
        if wild or not shown:
            return self._add(name, self.start_ability + float(rng.normal(-0.2, 0.3)), fresh)
        parent = shown[min(int(rank), len(shown) - 1)]
        return self._add(name, self.ability[parent] + float(change), np.where(keep, self.draws[parent], fresh))

    def accuracy(self, name: str) -> float:
        """Train accuracy (percent) of `name` fully scored: known to the world, no scorer call counted."""
        return 100.0 * float(self.outcomes[name].mean())


class SimulatedScorer:
    """Stands in for InstructionScorer: answers from the SimulatedWorld, one call per new pair."""

    def __init__(self, world: SimulatedWorld, train: list[Example]) -> None:
        self.world, self.cache, self.llm = world, None, None
        self.position = {e.uid: i for i, e in enumerate(train)}
        self.asked: set[tuple[str, int]] = set()
        self.calls = self.lookups = self.prompt_tokens = self.completion_tokens = 0

    def evaluate(self, instruction: str, examples: list[Example], cached_only: bool = False) -> list[ExampleResult]:
        outcomes, results = self.world.outcomes[instruction], []
        self.lookups += len(examples)
        for example in examples:
            at = self.position[example.uid]
            new = (instruction, at) not in self.asked
            if new:
                self.asked.add((instruction, at))
                self.calls += 1
            results.append(ExampleResult(example.index, example.uid, "", "", "", example.answer, bool(outcomes[at]),
                                         0, 0, not new))
        return results
