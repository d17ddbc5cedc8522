"""GEPA (Agrawal et al., 2025, "GEPA: Reflective Prompt Evolution Can Outperform Reinforcement Learning"):
reflective prompt evolution with a Pareto front over the training examples, built inside this loop from the
`gepa` package's own parts (the `gepa` extra; see notes/gepa-README.md for why not `gepa.optimize`):

- The candidate pool is every fully scored instruction of the run with its per-example outcomes on the
  training split (the run's instructions/<id>.csv), rebuilt as a gepa `GEPAState` at each step: a resumed
  run continues the same pool. The Pareto front is over the training examples (gepa's "instance" frontier;
  `gepa.optimize` without a valset uses the trainset the same way).
- Each proposal is one GEPA iteration (Algorithm 1): a parent drawn by gepa's `ParetoCandidateSelector`
  (Algorithm 2: the instructions best on at least one example, dominated ones removed, drawn in proportion
  to the examples they lead on), and a minibatch of `GEPA_MINIBATCH` training examples from gepa's
  `EpochShuffledBatchSampler` (replayed from the run seed, one iteration per proposal).
- Reflection: gepa's `InstructionProposalSignature` renders its default prompt (prompts/gepa-reflection.txt)
  with the parent and, per minibatch example, the question, the scorer's recorded answer and feedback from
  this project's metric (gepa's DefaultAdapter record layout); the optimizer LLM is the reflection LM; the
  new instruction is read by the signature's own extractor (the ``` block) and checked by the task's rules.
- A parent that answers its whole minibatch right is not reflected on (gepa's skip_perfect_score): the
  step then has fewer proposals.

One step is `loop.population` such iterations, drawn from the pool as it stood at the step's start (gepa's
IndependentSampling). Every new valid child is scored on the whole training split by the loop, as for every
method, and joins the pool (no minibatch acceptance gate: the scores are paid for already).
"""

from __future__ import annotations

import hashlib
import random
from types import SimpleNamespace
from typing import Any

import numpy as np

from opro.config import LoopConfig
from opro.extras import require
from opro.methods.base import History, Proposal, prompt_task
from opro.methods.evoprompt import ids, template
from opro.parsing import head, noted
from opro.problems import Invalid, Problem
from opro.prompting.scoring import instruction_id

#: gepa.optimize's reflection_minibatch_size default (3), the paper's minibatch size b.
GEPA_MINIBATCH = 3
#: The reflection LM's temperature: gepa.lm.LM sets none, so the provider's default (OpenAI's API: 1.0).
GEPA_TEMPERATURE = 1.0
#: The one component of a candidate (gepa candidates are dicts of named texts).
COMPONENT = "instruction"


def feedback(gold: str, parsed: str, correct: bool) -> str:
    """Feedback on one scorer answer, in the words of gepa's ContainsAnswerEvaluator, with the answer this
    project's metric read from the response."""
    if correct:
        return f"The generated response is correct. The correct answer is '{gold}'."
    read = f"the answer read from the response is '{parsed}'" if parsed else "no answer could be read from the response"
    return f"The generated response is incorrect. The correct answer is '{gold}', but {read}."


def reflective_records(questions: list[str], results: list[dict[str, str]]) -> list[dict[str, str]]:
    """gepa's reflective dataset for one minibatch (DefaultAdapter.make_reflective_dataset's keys), from the
    instruction's recorded per-example results (instructions/<id>.csv rows)."""
    return [{"Inputs": question, "Generated Outputs": r["raw_answer"],
             "Feedback": feedback(r["gold"], r["parsed"], r["correct"] == "True")}
            for question, r in zip(questions, results, strict=True)]


def candidate_pool(rows: list[dict[str, str]], results_of: Any,
                   n_train: int) -> list[tuple[str, str, list[dict[str, str]]]]:
    """The run's fully scored instructions in the order found: (instruction, its parents cell, its results in
    training order); `results_of(instruction)` gives the recorded rows, None when not fully scored (an
    instruction screened out on a subset, or results of another length, stay out)."""
    pool = []
    for row in rows:
        if row["valid"] != "True" or row["duplicate"] != "False":
            continue
        results = results_of(row["solution"])
        if results and len(results) == n_train:
            pool.append((row["solution"], row.get("parents", ""), results))
    return pool


def gepa_state(pool: list[tuple[str, str, list[dict[str, str]]]]) -> Any:
    """A gepa `GEPAState` holding `pool`, its per-example scores 1.0 (right) or 0.0, lineage from `parents`."""
    from gepa.core.state import GEPAState, ValsetEvaluation

    def scores(results: list[dict[str, str]]) -> ValsetEvaluation:  # keyed by training position
        return ValsetEvaluation({}, {i: float(r["correct"] == "True") for i, r in enumerate(results)})

    first, _, results = pool[0]
    state = GEPAState({COMPONENT: first}, scores(results))
    position = {instruction_id(first): 0}
    for instruction, parents, results in pool[1:]:
        lineage = [position[p] for p in parents.split(";") if p in position]
        position[instruction_id(instruction)] = state.update_state_with_new_program(
            lineage, {COMPONENT: instruction}, scores(results), None, 0)
    return state


def minibatches(n_train: int, seed: int, first: int, count: int) -> list[list[int]]:
    """The minibatches (training positions) of gepa iterations first..first+count-1: gepa's
    EpochShuffledBatchSampler seeded with `seed`, replayed from iteration 0 (its shuffles depend on the
    iterations before)."""
    from gepa.core.data_loader import ensure_loader
    from gepa.strategies.batch_sampler import EpochShuffledBatchSampler

    loader = ensure_loader(list(range(n_train)))
    sampler = EpochShuffledBatchSampler(GEPA_MINIBATCH, random.Random(seed))
    drawn = [sampler.next_minibatch_ids(loader, SimpleNamespace(i=i)) for i in range(first + count)]
    return [[int(i) for i in batch] for batch in drawn[first:]]


class GEPA:
    """Reflective mutation of Pareto-front parents on feedback minibatches (see the module docstring)."""

    name = "gepa"
    columns = ("operator", "parents", "minibatch", "prompt_sha")

    def __init__(self, problem: Problem, loop: LoopConfig, seed: int) -> None:
        require("gepa", extra="gepa", feature='loop.method "gepa"')
        self.problem, self.loop, self.seed = prompt_task(problem, self.name), loop, seed
        self.temperature = GEPA_TEMPERATURE if loop.method_temperature is None else loop.method_temperature
        self.template = template("gepa-reflection")

    def initial_solutions(self, count: int) -> tuple[list[Any], list[dict[str, str]]]:
        """The task's initial instructions (gepa's seed candidate; more than one: all seeds of the pool)."""
        solutions = self.problem.initial_solutions(np.random.default_rng(self.seed), count)
        return solutions, [{**dict.fromkeys(self.columns, ""), "operator": "initial"} for _ in solutions]

    def parse(self, text: str) -> Any | Invalid:
        """The new instruction, read by gepa's InstructionProposalSignature.output_extractor (the text
        between the first and the last ```, or the whole answer), checked by the task's rules."""
        from gepa.strategies.instruction_proposal import InstructionProposalSignature

        text, dropped = head(text)  # opro.parsing: a parser reads a bounded part of the answer
        try:
            found = InstructionProposalSignature.output_extractor(text)["new_instruction"]
        except Exception as error:  # a third-party parser: any failure is an invalid answer, never an error
            return noted(Invalid(f"unreadable answer ({type(error).__name__})"), dropped)
        return noted(self.problem.check_instruction(found.strip()), dropped)

    def propose(self, step: int, history: History) -> list[Proposal]:
        from gepa.strategies.candidate_selector import ParetoCandidateSelector
        from gepa.strategies.instruction_proposal import InstructionProposalSignature

        train = self.problem.train
        pool = candidate_pool(history.read_rows(), self.problem.example_results, len(train))
        if not pool:
            return []
        state = gepa_state(pool)
        selector = ParetoCandidateSelector(random.Random(int(np.random.SeedSequence([self.seed, step, 3])
                                                             .generate_state(1)[0])))
        size = self.loop.population
        first = (step - 1) * size  # gepa iteration of the step's first proposal
        proposals = []
        for k, batch in enumerate(minibatches(len(train), self.seed, first, size)):
            state.i = first + k
            parent, _, results = pool[selector.select_candidate_idx(state)]
            shown = [results[i] for i in batch]
            if all(r["correct"] == "True" for r in shown):
                continue  # gepa's skip_perfect_score: nothing to learn from
            records = reflective_records([train[i].question for i in batch], shown)
            text = InstructionProposalSignature.prompt_renderer(
                {"current_instruction_doc": parent, "dataset_with_feedback": records, "prompt_template": self.template})
            sha = hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:16]
            proposals.append(Proposal(({"role": "user", "content": str(text)},),
                                      {"operator": "reflect", "parents": ids(parent),
                                       "minibatch": ";".join(map(str, batch)), "prompt_sha": sha}))
        return proposals
