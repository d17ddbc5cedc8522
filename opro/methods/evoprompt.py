"""EvoPrompt (Guo et al., ICLR 2024, "Connecting Large Language Models with Evolutionary Algorithms Yields
Powerful Prompt Optimizers"): a population of instructions evolved by the optimizer LLM acting as the
evolutionary operators, with the paper's templates (prompts/evoprompt-ga.txt, prompts/evoprompt-de.txt: its
Figures 1 and 2 with their worked demonstration, as the authors' code sends them).

- GA (§3.2): each child's two parents are drawn by roulette wheel (probability proportional to the score);
  the LLM crosses them over and mutates the result; the next population is the top N of parents and
  children. Since a top-N survivor selection keeps the top N of everything seen, the population after a step
  is the top N of the run's distinct instructions: rebuilt from the trajectory, also on resume.
- DE (§3.3): for each member (the "basic prompt"), two other members, picked at random, give the different
  parts to mutate; Prompt 3 is the best member (the authors' code); the child replaces its member when it
  scores strictly higher. The population is positional: replayed from candidates.csv (each candidate's `index`
  is its member), so a resumed run continues the same population.

One step is one generation of N = loop.population proposals. The instruction is read from the last
`<prompt>...</prompt>` of the answer; without one, the proposal is invalid.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from opro.config import LoopConfig, read_text
from opro.methods.base import History, Proposal, prompt_task, ranked
from opro.parsing import blocks_between, noted, tail
from opro.problems import Invalid, Problem
from opro.prompting.scoring import instruction_id

#: EvoPrompt §4.1: the optimizer samples at temperature 0.5.
EVOPROMPT_TEMPERATURE = 0.5


def template(name: str) -> str:
    """A method template of prompts/ (`{field}`s filled with str.format), without its final newline."""
    return read_text(resources.files("opro.prompts") / f"{name}.txt", f"template {name}.txt").removesuffix("\n")


def manual_instructions() -> list[str]:
    """The fixed manual instructions that fill an initial population (prompts/evoprompt-initial.txt)."""
    return [line.strip() for line in template("evoprompt-initial").splitlines() if line.strip()]


def parse_prompt_tag(text: str) -> str | Invalid:
    """The last `<prompt>...</prompt>` of `text`, stripped; Invalid when there is none. Linear in the text: only
    its last MAX_PARSED_CHARS characters are read (opro.parsing)."""
    text, dropped = tail(text)
    found = blocks_between(text, "<prompt>", "</prompt>")
    return found[-1].strip() if found else noted(Invalid("no <prompt>...</prompt> in the answer"), dropped)


def roulette(scores: list[float], rng: np.random.Generator, size: int = 2) -> list[int]:
    """`size` distinct positions drawn with probability proportional to the score (EvoPrompt §3.2's
    roulette wheel); uniform when fewer than `size` scores are above 0; with fewer members than `size`,
    drawn with replacement."""
    weights = np.asarray(scores, dtype=float).clip(min=0)
    p = weights / weights.sum() if (weights > 0).sum() >= min(size, len(scores)) else None
    return [int(i) for i in rng.choice(len(scores), size=size, replace=len(scores) < size, p=p)]


def ids(*instructions: str) -> str:
    """The instructions' ids (instructions.csv instruction_id), joined by ";": candidates.csv `parents`."""
    return ";".join(instruction_id(i) for i in instructions)


class EvoPrompt:
    """EvoPrompt GA ("evoprompt-ga") or DE ("evoprompt-de"); see the module docstring."""

    columns = ("operator", "parents")

    def __init__(self, problem: Problem, loop: LoopConfig, seed: int) -> None:
        variant = loop.method.removeprefix("evoprompt-")
        self.name = f"evoprompt-{variant}"
        self.problem, self.loop, self.seed, self.variant = prompt_task(problem, self.name), loop, seed, variant
        self.size = loop.population
        self.temperature = EVOPROMPT_TEMPERATURE if loop.method_temperature is None else loop.method_temperature
        self.template = template(f"evoprompt-{variant}")

    def initial_solutions(self, count: int) -> tuple[list[Any], list[dict[str, str]]]:
        """The task's initial instructions, then the manual ones, distinct, up to the population size (the
        paper starts from manual and generated prompts; here a fixed manual list, see docs/faithful.md)."""
        task = self.problem.initial_solutions(np.random.default_rng(self.seed), self.size)
        solutions = list(dict.fromkeys([*task, *manual_instructions()]))[:self.size]
        return solutions, [{"operator": "initial", "parents": ""} for _ in solutions]

    def parse(self, text: str) -> Any | Invalid:
        found = parse_prompt_tag(text)
        return found if isinstance(found, Invalid) else self.problem.check_instruction(found)

    def propose(self, step: int, history: History) -> list[Proposal]:
        rng = np.random.default_rng([self.seed, step, 2])
        if self.variant == "ga":
            return self._ga(ranked(history.pairs)[:self.size], rng)
        return self._de(de_population(history.read_rows(), self.size), rng)

    def _ga(self, population: list[tuple[str, float]], rng: np.random.Generator) -> list[Proposal]:
        scores = [score for _, score in population]
        proposals = []
        for _ in range(self.size):
            a, b = (population[i][0] for i in roulette(scores, rng))
            text = self.template.format(prompt1=a, prompt2=b)
            proposals.append(Proposal(({"role": "user", "content": text},), {"operator": "ga", "parents": ids(a, b)}))
        return proposals

    def _de(self, population: list[tuple[str, float]], rng: np.random.Generator) -> list[Proposal]:
        best = ranked(population)[0][0]
        proposals = []
        for i, (basic, _) in enumerate(population):
            others = [j for j in range(len(population)) if j != i] or [i]
            a, b = (population[j][0] for j in rng.choice(others, size=2, replace=len(others) < 2))
            text = self.template.format(prompt1=a, prompt2=b, prompt3=best, basic=basic)
            proposals.append(Proposal(({"role": "user", "content": text},),
                                      {"operator": "de", "parents": ids(a, b, best, basic)}))
        return proposals


def de_population(rows: list[dict[str, Any]], size: int) -> list[tuple[str, float]]:
    """The DE population after the recorded steps: step 0's distinct instructions (at most `size`), then,
    step by step, member i replaced by candidate i when that one is valid, scores strictly higher and is not
    already a member (of its attempts, the last valid one)."""
    population = [(r["solution"], float(r["score"])) for r in rows
                  if r["step"] == "0" and r["valid"] and not r["duplicate"]][:size]
    children: dict[tuple[int, int], tuple[str, float]] = {}
    for r in rows:
        if r["step"] != "0" and r["valid"]:
            children[(int(r["step"]), int(r["index"]))] = (r["solution"], float(r["score"]))
    for (_, index), (child, score) in sorted(children.items()):
        members = {solution for solution, _ in population}
        if index < len(population) and score > population[index][1] and child not in members:
            population[index] = (child, score)
    return population
