"""OPRO (Yang et al., ICLR 2024, §2): one meta-prompt of the top-k solutions, worst first and best last,
sampled `candidates_per_step` times. The loop's behaviour before methods existed, byte for byte."""

from __future__ import annotations

from typing import Any

import numpy as np

from opro.config import LoopConfig
from opro.metaprompt import render_meta_prompt, shown_solutions
from opro.methods.base import History, Proposal
from opro.problems import Invalid, Problem, PromptTask


class OproMethod:
    name = "opro"
    columns: tuple[str, ...] = ()

    def __init__(self, problem: Problem, loop: LoopConfig, seed: int, templates: tuple[str, str]) -> None:
        self.problem, self.loop, self.seed, self.templates = problem, loop, seed, templates
        self.temperature = loop.temperature

    def initial_solutions(self, count: int) -> tuple[list[Any], list[dict[str, str]]]:
        solutions = self.problem.initial_solutions(np.random.default_rng(self.seed), count)
        return solutions, [{} for _ in solutions]

    def propose(self, step: int, history: History) -> list[Proposal]:
        shown = shown_solutions(self.problem, history.pairs, self.loop.top_k, self.loop.order,
                                np.random.default_rng([self.seed, step, 1]))  # "random" order: reshuffled per step
        fields = self.problem.step_fields(step, shown) if isinstance(self.problem, PromptTask) else None
        messages = ({"role": "user", "content": render_meta_prompt(self.problem, shown, *self.templates, fields)},)
        return [Proposal(messages) for _ in range(self.loop.candidates_per_step)]

    def parse(self, text: str) -> Any | Invalid:
        return self.problem.parse(text)
