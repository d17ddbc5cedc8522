"""APE (Zhou et al., 2022, "Large Language Models Are Human-Level Prompt Engineers"): instruction induction
from demonstrations, then iterative Monte Carlo search around the best instructions.

- Step 0: the task's initial instructions (loop.num_initial), as an OPRO run starts.
- Step 1, induction (APE §3.1, "forward generation"): N = loop.population proposals, each from the
  induction template (prompts/ape-induction.txt) filled with up to five (input, output) pairs of the training
  split, drawn at random per proposal (candidates.csv `demos`: their training positions).
- Steps 2 and later, resampling (APE §3.3, iterative Monte Carlo search): the best half of the run's
  instructions so far (at least one) are kept, and N variations of them asked for with the resampling
  template (prompts/ape-resample.txt), round robin from the best.

The instruction is the answer's first non-empty line, stripped of quotes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opro.config import LoopConfig
from opro.methods.base import History, Proposal, prompt_task, ranked
from opro.methods.evoprompt import ids, template
from opro.parsing import head, noted
from opro.problems import Invalid, Problem

#: APE's generation temperature (its default configuration, configs/default.yaml: 0.9).
APE_TEMPERATURE = 0.9
#: Demonstrations per induction prompt (APE §3.1: "five inputs").
APE_DEMOS = 5
_WORDS = ("zero", "one", "two", "three", "four", "five")


def parse_completion(text: str) -> str | Invalid:
    """The first non-empty line of the answer, without surrounding quotes or an "Output:" label."""
    text, dropped = head(text)  # opro.parsing: a parser reads a bounded part of the answer
    for line in text.splitlines():
        line = line.strip().removeprefix("Output:").strip().strip("\"'").strip()
        if line:
            return line
    return noted(Invalid("empty answer"), dropped)


class APE:
    """Instruction induction, then Monte Carlo resampling of the best (see the module docstring)."""

    name = "ape"
    columns = ("operator", "parents", "demos")

    def __init__(self, problem: Problem, loop: LoopConfig, seed: int) -> None:
        self.problem, self.loop, self.seed = prompt_task(problem, self.name), loop, seed
        self.temperature = APE_TEMPERATURE if loop.method_temperature is None else loop.method_temperature
        self.induction, self.resample = template("ape-induction"), template("ape-resample")

    def initial_solutions(self, count: int) -> tuple[list[Any], list[dict[str, str]]]:
        solutions = self.problem.initial_solutions(np.random.default_rng(self.seed), count)
        return solutions, [{"operator": "initial", "parents": "", "demos": ""} for _ in solutions]

    def parse(self, text: str) -> Any | Invalid:
        found = parse_completion(text)
        return found if isinstance(found, Invalid) else self.problem.check_instruction(found)

    def propose(self, step: int, history: History) -> list[Proposal]:
        rng = np.random.default_rng([self.seed, step, 2])
        if step == 1:
            return [self._induce(rng) for _ in range(self.loop.population)]
        best = [solution for solution, _ in ranked(history.pairs)[:max(1, len(history.pairs) // 2)]]
        proposals = []
        for i in range(self.loop.population):
            parent = best[i % len(best)]
            text = self.resample.format(instruction=parent)
            proposals.append(Proposal(({"role": "user", "content": text},),
                                      {"operator": "resample", "parents": ids(parent), "demos": ""}))
        return proposals

    def _induce(self, rng: np.random.Generator) -> Proposal:
        train = self.problem.train
        picks = [int(i) for i in rng.choice(len(train), size=min(APE_DEMOS, len(train)), replace=False)]
        demos = "\n\n".join(f"Input: {train[i].question}\nOutput: {train[i].answer}" for i in picks)
        text = self.induction.format(count=_WORDS[len(picks)], demos=demos)
        return Proposal(({"role": "user", "content": text},),
                        {"operator": "induction", "parents": "", "demos": ";".join(map(str, picks))})
