"""Prompt optimization (paper §4-5): find an instruction that makes a scorer LLM answer more questions right.

A solution is an instruction (a string). Its score is the scorer's accuracy on the training split, in
percent (0-100, higher is better); the meta-prompt shows it rounded to an integer, the paper's 100 score
buckets (reference: num_score_buckets = 100). The problem calls its scorer LLM inside `score`, through the
persistent score cache, and writes each instruction's per-example results to the run directory.

Datasets: GSM8K, BBH and MMLU (one category or subject) for optimization, MultiArith and AQuA for transfer. With
`validation_ratio` and `eval_interval`, the instructions of every N-th step are also scored on a validation
split (paper §5.4), recorded in instructions.csv and, through `step_values` (problems.StepValues), in
steps.csv.

Meta-prompt types (setting `meta_prompt_type`, reference: optimize_instructions.py):
- "both_instructions_and_exemplars" (instruction-tuned optimizers): the top instructions with scores, then
  `num_exemplars` questions with their answers, picked per step (`exemplar_selection`: random, constant, or
  from the ones instructions got wrong). The optimizer writes `<INS>...</INS>` (templates `instructions`) or `[...]`
  (`instructions-bison`, the paper's Figure 3 wording).
- "instructions_only" (pre-trained optimizers): only the instructions, as `Precision: 61 <TEXT>...</TEXT>`
  (template `instructions-only`).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from opro.config import MAX_SEED, Range
from opro.errors import OproError
from opro.problems.base import Invalid
from opro.prompting.data import DATASETS, MMLU_CATEGORIES, Example, load_examples, split_with_validation
from opro.prompting.exemplars import most_frequent_picks
from opro.prompting.scoring import (
    POSITIONS,
    ExampleResult,
    InstructionScorer,
    ScoreCache,
    accuracy,
    instruction_id,
    scorer_identity,
    scorer_prompt,
    write_results_csv,
)
from opro.prompting.screen import kth_best, passes_screen, screen_positions

META_PROMPT_TYPES = ("both_instructions_and_exemplars", "instructions_only")
#: "random", "constant", "current_most_frequent", "accumulative_most_frequent": the reference's
#: few_shot_selection_criteria (opt_utils.run_evolution); "wrong": this project's (see pick_exemplars).
EXEMPLAR_SELECTIONS = ("random", "wrong", "constant", "current_most_frequent", "accumulative_most_frequent")
POSITION_WORDS = {"before_Q": "before the question", "Q_begin": "at the beginning of the question",
                  "Q_end": "at the end of the question", "A_begin": "at the beginning of the answer"}
INSTRUCTION_COLUMNS = ["step", "instruction_id", "instruction", "score", "n_scored", "full", "screened_out",
                       "scorer_calls", "scorer_prompt_tokens", "scorer_completion_tokens"]
#: instructions.csv's last column when problem.eval_interval > 0 (older runs' files lack it).
VALIDATION_COLUMN = "validation_score"
#: few_shot.csv (evaluate_generated_ins_on_few_shot / evaluate_old_ins_on_few_shot): one row per instruction
#: scored on a step's meta-prompt exemplars; `kind` is "generated" or "old".
FEW_SHOT_COLUMNS = ["step", "instruction_id", "kind", "n", "correct", "score"]
#: steps.csv's extra columns when problem.eval_interval > 0 (test_of_best only with eval_test).
VALIDATION_STEP_COLUMNS = ("validation_mean", "validation_of_best", "test_of_best")

_BRACKETS = re.compile(r"\[(.*?)\]", re.DOTALL)
_TEXT_TAG = re.compile(r"<TEXT>(.*?)</TEXT>", re.DOTALL)


def parse_instruction(text: str, meta_prompt_type: str) -> str | Invalid:
    """The instruction in an optimizer output, before the filters. Never raises.

    both_instructions_and_exemplars: the text between <INS> and </INS> (either tag may be missing, as the
    reference code reads it; <Start>/</Start> for A_begin too), else the first [...] (the text-bison
    wording), else the whole output. instructions_only: the first <TEXT>...</TEXT>, or what follows a lone
    <TEXT> on its line.
    """
    if meta_prompt_type == "instructions_only":
        found = _TEXT_TAG.search(text)
        if found:
            return polish(found.group(1))
        if "<TEXT>" in text:
            return polish(text.split("<TEXT>", 1)[1].split("\n")[0])
        return Invalid("no <TEXT> tag")
    for opening, closing in (("<INS>", "</INS>"), ("<Start>", "</Start>")):
        if opening in text or closing in text:
            start = text.index(opening) + len(opening) if opening in text else 0
            end = text.index(closing, start) if closing in text[start:] else len(text)
            return polish(text[start:end])
    found = _BRACKETS.search(text)
    if found:
        return polish(found.group(1))
    return polish(text)  # no tag at all: the whole output, as the reference code reads GPT optimizers


def polish(sentence: str) -> str:
    """Stripped, without markdown bold, first letter capitalized (reference: eval_utils.polish_sentence)."""
    sentence = sentence.strip().replace("**", "")
    return sentence[0].upper() + sentence[1:] if len(sentence) > 1 else sentence


@dataclass
class PromptOptimization:
    """Instructions for one dataset, scored by a scorer LLM on a seeded training split."""

    dataset: str = "gsm8k"
    """"gsm8k", "bbh" or "mmlu" (also "multiarith" or "aqua": split like BBH)."""
    bbh_task: str | None = None
    """The BBH task (one of the 27), for dataset "bbh"."""
    mmlu_task: str | None = None
    """For dataset "mmlu": one of the four categories ("STEM", "humanities", "social sciences",
    "other (business, health, misc.)"; the reference's --task) or one subject (e.g. "abstract_algebra")."""
    data: str | None = None
    """Local data: a file, or a folder in the reference layout (gsm_train.tsv, <task>.json...); None: the hub."""
    train_ratio: float = 0.035
    """Share of the training pool used for scoring (paper §5.1: 3.5% of GSM8K train, 20% of a BBH task)."""
    train_limit: int | None = None
    """Keep at most this many training examples (the first of the seeded split), for quick runs."""
    validation_ratio: float = 0.0
    """Share of the pool drawn, after the training split, as the validation split (reference: eval_ratio, 0.2
    for MMLU, 0 otherwise; paper §5.4: 1/3). For GSM8K it is drawn from the train split's rest."""
    validation_limit: int | None = None
    """Keep at most this many validation examples (the first of the seeded split)."""
    eval_interval: int = 0
    """Score the instructions of step 0 and of steps 1, 1+N, 1+2N... on the validation split (reference:
    eval_interval = 3, on its 0-based steps 0, 3, 6...; paper §5.4); 0: off."""
    eval_test: bool = False
    """At those steps also score the best instruction so far on the test split (steps.csv test_of_best)."""
    evaluate_generated_ins_on_few_shot: bool = False
    """Also score each new instruction on its step's meta-prompt exemplars (few_shot.csv; reference switch)."""
    evaluate_old_ins_on_few_shot: bool = False
    """Each step, score every earlier fully scored instruction on the step's exemplars (few_shot.csv)."""
    split_seed: int = 0
    """Seeds the train/test split; fixed apart from the run seed so runs share a split (reference: seed 0)."""
    position: str = "Q_begin"
    """Where the instruction goes: before_Q, Q_begin, Q_end or A_begin (paper §5.1: Q_begin for
    instruction-tuned scorers, A_begin for pre-trained ones)."""
    qa_format: bool = True
    """Wrap the scorer prompt in "Q: ... A:"."""
    meta_prompt_type: str = "both_instructions_and_exemplars"
    """"both_instructions_and_exemplars" or "instructions_only" (must match the template)."""
    initial_instructions: list[str] = field(default_factory=lambda: ["Let's solve the problem."])
    """Step 0's instructions (reference: "Let's solve the problem.")."""
    num_exemplars: int = 3
    """Questions shown in the meta-prompt per step (paper §5.1: 3)."""
    exemplar_selection: str = "random"
    """"random" (reference default), "constant", "current_most_frequent", "accumulative_most_frequent" (the
    reference's criteria, see `pick_exemplars`) or "wrong": the questions the shown instructions got wrong most
    often."""
    shown_threshold: float = 0.0
    """Old instructions scoring below this (percent) are not shown (reference old_instruction_score_threshold,
    a fraction: 0.0 for text-bison, 0.3 for gpt-3.5-turbo/gpt-4, i.e. 0 or 30 here)."""
    max_instruction_length: int = 500
    """Longer instructions are invalid (reference: 500 characters)."""
    scorer_max_tokens: int = 256
    """Completion limit of each scorer answer (decoding is greedy)."""
    score_cache: bool | str = True
    """The persistent score cache: true (prompt_scores.sqlite beside the LLM-call cache), false, or a path."""
    screen: bool = False
    """Successive halving (`--screen`): score on a subset first, fully only if it could enter the top-k."""
    screen_fraction: float = 0.1
    """Share of the training split in the screening subset (at least one question)."""
    screen_top_k: int = 20
    """The k of "could still enter the top-k"; a run sets it to loop.top_k unless given."""
    screen_margin: int = 0
    """Subset answers a candidate may fall short of the k-th best and still go on."""
    seed: int = 0
    """Run seed: the per-step exemplar picks."""

    minimize = False
    uses_scorer = True
    TEMPLATE_FIELDS: ClassVar[tuple[str, ...]] = ("task_description", "position_description", "exemplars")

    def __post_init__(self) -> None:
        self.name = self.dataset
        self.min_shown_score = self.shown_threshold
        self.train, self._test = self._load_train()
        self.scorer: InstructionScorer | None = None
        self.correct: dict[str, tuple[bool, ...]] = {}  # fully scored instructions: per-train-example outcome
        self.full_scores: dict[str, float] = {}
        self.screen_at = screen_positions(len(self.train), self.screen_fraction, self.split_seed)
        self.n_screened_out = 0
        self.step = 0
        self.run_path: Path | None = None
        self.picks: list[int] = []  # the current step's exemplars (training positions)
        self.validation_scores: dict[str, float] = {}
        self.test_scores: dict[str, float] = {}
        self.step_validation: list[float] = []  # this step's validation accuracies, for steps.csv
        self.instruction_columns = INSTRUCTION_COLUMNS + ([VALIDATION_COLUMN] if self.eval_interval else [])
        self.step_columns: tuple[str, ...] = (
            VALIDATION_STEP_COLUMNS if self.eval_test else VALIDATION_STEP_COLUMNS[:2]) if self.eval_interval else ()

    LIMITS: ClassVar[dict[str, Range]] = {
        "train_ratio": Range(0, 1, above=True), "train_limit": Range(1, None), "num_exemplars": Range(0, 1000),
        "max_instruction_length": Range(1, None), "scorer_max_tokens": Range(1, 1_000_000),
        "screen_fraction": Range(0, 1, above=True), "screen_top_k": Range(1, None), "screen_margin": Range(0, None),
        "split_seed": Range(0, MAX_SEED), "validation_ratio": Range(0, 1), "validation_limit": Range(1, None),
        "eval_interval": Range(0, 1_000_000),
    }

    @staticmethod
    def check_settings(settings: dict[str, Any]) -> None:
        choices = {"dataset": DATASETS, "position": POSITIONS, "meta_prompt_type": META_PROMPT_TYPES,
                   "exemplar_selection": EXEMPLAR_SELECTIONS}
        for name, known in choices.items():
            if settings[name] not in known:
                raise OproError(f"problem.{name} must be one of {', '.join(known)}, got {settings[name]!r}")
        if settings["meta_prompt_type"] == "instructions_only" and settings["position"] == "before_Q":
            raise OproError("instructions_only meta-prompts describe Q_begin, Q_end or A_begin positions")
        if settings["eval_interval"] and not settings["validation_ratio"]:
            raise OproError("problem.eval_interval needs a validation split: set problem.validation_ratio (paper "
                            "§5.4: 1/3)")
        if settings["dataset"] == "mmlu" and settings["mmlu_task"] is None:
            raise OproError(f"dataset mmlu needs problem.mmlu_task: one of {', '.join(map(repr, MMLU_CATEGORIES))}, "
                            "or one subject")

    # ---- data ---------------------------------------------------------------------------------------------

    def _load_train(self) -> tuple[list[Example], list[Example] | None]:
        """The training examples, and the test examples when they come from the same pool (BBH, MMLU); the
        validation split (`validation_ratio`) goes to `self.validation`."""
        if self.dataset == "gsm8k":
            pool, test = load_examples("gsm8k", "train", self.data), None
        else:
            task = self.mmlu_task if self.dataset == "mmlu" else self.bbh_task
            pool = load_examples(self.dataset, "all", self.data, task)
        train_at, validation_at, test_at = split_with_validation(len(pool), self.train_ratio, self.validation_ratio,
                                                                 self.split_seed)
        self.validation = [pool[i] for i in validation_at][: self.validation_limit]
        if self.dataset == "bbh" or (self.dataset == "mmlu" and self.train_ratio + self.validation_ratio < 1):
            test = [pool[i] for i in test_at]
        elif self.dataset != "gsm8k":  # MultiArith, AQuA; MMLU split 80/20 as the reference: the whole dataset
            test = pool
        train = [pool[i] for i in train_at][: self.train_limit]
        return train, test

    def examples(self, split: str) -> list[Example]:
        """"train" (the scored subset), "validation" (`validation_ratio`) or "test" (GSM8K: the test split; BBH,
        MMLU: the rest of the pool; MultiArith, AQuA, and MMLU when the ratios add up to 1 as the reference's
        80/20 does: the whole dataset, as the reference's evaluate_instructions.py scores it)."""
        if split == "train":
            return self.train
        if split == "validation":
            if not self.validation:
                raise OproError("no validation split: set problem.validation_ratio")
            return self.validation
        if split != "test":
            raise OproError(f"unknown split {split!r}; use train, validation or test")
        if self._test is None:
            self._test = load_examples("gsm8k", "test", self.data)
        return self._test

    # ---- the scorer -----------------------------------------------------------------------------------------

    def use_scorer(self, llm: Any) -> None:
        """Score with `llm` (built by opro.run from the run's scorer config)."""
        cache = None
        if self.score_cache:
            cache = ScoreCache(None if self.score_cache is True else Path(str(self.score_cache)))
        self.scorer = InstructionScorer(llm, self.position, self.qa_format, self.scorer_max_tokens, cache)

    def attach_run(self, path: Path) -> None:
        """Write instructions.csv and instructions/<id>.csv into the run directory at `path`."""
        self.run_path = path
        index = path / "instructions.csv"
        if self._few_shot_scored() and not (path / "few_shot.csv").is_file():
            (path / "few_shot.csv").write_text(",".join(FEW_SHOT_COLUMNS) + "\n")
        if not index.is_file():
            index.write_text(",".join(self.instruction_columns) + "\n")
            return
        with open(index, newline="") as handle:  # a resumed run: what screening and exemplars need
            reader = csv.DictReader(handle)
            self.instruction_columns = list(reader.fieldnames or INSTRUCTION_COLUMNS)  # as the run wrote it
            for row in reader:
                if row.get(VALIDATION_COLUMN):
                    self.validation_scores[row["instruction"]] = float(row[VALIDATION_COLUMN])
                results = path / "instructions" / f"{row['instruction_id']}.csv"
                if row["full"] == "True" and results.is_file():
                    with open(results, newline="") as outcomes:
                        right = tuple(r["correct"] == "True" for r in csv.DictReader(outcomes))
                    self.correct[row["instruction"]] = right
                    self.full_scores[row["instruction"]] = float(row["score"])

    def close(self) -> None:
        if self.scorer is not None:
            if self.scorer.cache:
                self.scorer.cache.close()
            self.scorer.llm.close()

    def evaluate(self, instruction: str, examples: list[Example]) -> list[ExampleResult]:
        if self.scorer is None:
            raise OproError("the prompt problem has no scorer LLM")
        return self.scorer.evaluate(instruction, examples)

    # ---- the Problem seam ------------------------------------------------------------------------------------

    def initial_solutions(self, rng: np.random.Generator, count: int) -> list[str]:
        return list(self.initial_instructions)[:count]

    def parse(self, text: str) -> str | Invalid:
        found = parse_instruction(text, self.meta_prompt_type)
        if isinstance(found, Invalid):
            return found
        if not found:
            return Invalid("empty instruction")
        if len(found) > self.max_instruction_length:
            return Invalid(f"longer than {self.max_instruction_length} characters")
        if self.dataset == "gsm8k" and any(c.isdigit() for c in found):
            return Invalid("contains digits")  # paper: no numbers in GSM8K instructions
        if "INS" in found:
            return Invalid("contains INS")
        return found

    def decode(self, rendered: str) -> str:
        return rendered

    def render(self, solution: str) -> str:
        return solution

    def render_score(self, score: float) -> str:
        return str(round(score))  # 100 buckets: accuracy in percent, as an integer

    def prompt_fields(self) -> dict[str, str]:
        named = self.bbh_task if self.dataset == "bbh" else self.mmlu_task if self.dataset == "mmlu" else None
        task = "grade school math" if self.dataset == "gsm8k" else (
            " ".join(named.split("_")) if named else self.dataset)  # MMLU: the category, as the reference
        return {"task_description": task, "position_description": POSITION_WORDS[self.position], "exemplars": ""}

    def step_fields(self, step: int, shown: list[tuple[str, float]]) -> dict[str, str]:
        """The step's exemplars: `num_exemplars` training questions with their answers, in the scorer's layout
        with <INS> where the instruction goes."""
        self.step = step
        self.picks = []
        if self.meta_prompt_type == "instructions_only" or not self.num_exemplars:
            return {"exemplars": ""}
        picks = self.pick_exemplars(step, [instruction for instruction, _ in shown])
        self.picks = picks
        if self.evaluate_old_ins_on_few_shot:
            for instruction in list(self.full_scores):
                self._score_on_few_shot(instruction, "old")
        return {"exemplars": "".join(self._exemplar(self.train[i]) for i in picks)}

    def pick_exemplars(self, step: int, shown: list[str]) -> list[int]:
        """Training positions of the step's exemplars, seeded by (seed, step), by `exemplar_selection`
        (reference: opt_utils.run_evolution, few_shot_selection_criteria; its seeds are the step, or 0):
        - "random": `num_exemplars` distinct training questions, sorted.
        - "constant": the same questions every step (the random pick seeded by (seed, 0)).
        - "current_most_frequent" / "accumulative_most_frequent": from the questions the shown instructions,
          or every fully scored one of the run, got wrong (see opro.prompting.exemplars).
        - "wrong": as current_most_frequent, but picks are sorted and, with no missed question, random.
        """
        rng = np.random.default_rng([self.seed, step])
        n = min(self.num_exemplars, len(self.train))
        if self.exemplar_selection == "constant":
            rng = np.random.default_rng([self.seed, 0])
        elif self.exemplar_selection in ("current_most_frequent", "accumulative_most_frequent"):
            counted = shown if self.exemplar_selection == "current_most_frequent" else list(self.correct)
            outcomes = [self.correct[i] for i in counted if i in self.correct]
            return most_frequent_picks(self.exemplar_selection, outcomes, n, rng)
        if self.exemplar_selection == "wrong":
            wrong: Counter[int] = Counter()
            for instruction in shown:
                outcome = self.correct.get(instruction)
                if outcome:
                    wrong.update(i for i, right in enumerate(outcome) if not right)
            if wrong:  # reference: current_most_frequent
                top = max(wrong.values())
                most = sorted(i for i, c in wrong.items() if c == top)
                if len(most) < n:
                    return sorted(sorted(wrong, key=lambda i: (-wrong[i], i))[:n])
                return sorted(int(i) for i in rng.choice(most, size=n, replace=False))
        return sorted(int(i) for i in rng.choice(len(self.train), size=n, replace=False))

    def _exemplar(self, example: Example) -> str:
        prompt = scorer_prompt(example.question, "<INS>", self.position, self.qa_format)
        return f"\ninput:\n{prompt}\noutput:\n{example.answer}\n"

    def score(self, solutions: list[str]) -> list[float]:
        return [self._score_one(instruction) for instruction in solutions]

    def _score_one(self, instruction: str) -> float:
        if self.scorer is None:
            raise OproError("the prompt problem has no scorer LLM")
        if self.evaluate_generated_ins_on_few_shot and self.step > 0:
            self._score_on_few_shot(instruction, "generated")
        calls, prompt_tokens, completion_tokens = (self.scorer.calls, self.scorer.prompt_tokens,
                                                   self.scorer.completion_tokens)
        if self.screen:
            subset = [self.train[i] for i in self.screen_at]
            first = self.scorer.evaluate(instruction, subset)
            bar = kth_best(self.full_scores, self.screen_top_k)
            bar_correct = None if bar is None else sum(self.correct[bar][i] for i in self.screen_at)
            if not passes_screen(sum(r.correct for r in first), bar_correct, self.screen_margin):
                # recorded with its subset accuracy, capped at the k-th best full score so that it never
                # displaces a fully scored instruction from the meta-prompt (ties rank the earlier one higher)
                score = min(accuracy(first), self.full_scores[bar])
                self.n_screened_out += 1
                self._record(instruction, score, first, False, calls, prompt_tokens, completion_tokens)
                return score
        results = self.scorer.evaluate(instruction, self.train)
        score = accuracy(results)
        self.correct[instruction] = tuple(r.correct for r in results)
        self.full_scores[instruction] = score
        validation = None
        if self.is_eval_step(self.step):  # its scorer usage is not the training score's: left out of the row
            before = (self.scorer.calls, self.scorer.prompt_tokens, self.scorer.completion_tokens)
            validation = self.validation_score(instruction)
            self.step_validation.append(validation)
            calls, prompt_tokens, completion_tokens = (
                calls + self.scorer.calls - before[0], prompt_tokens + self.scorer.prompt_tokens - before[1],
                completion_tokens + self.scorer.completion_tokens - before[2])
        self._record(instruction, score, results, True, calls, prompt_tokens, completion_tokens, validation)
        return score

    # ---- validation during the run (paper §5.4) ------------------------------------------------------------

    def is_eval_step(self, step: int) -> bool:
        """Whether `step`'s instructions are scored on the validation split: step 0 (the starting instructions,
        beyond the reference) and steps 1, 1+N, ... (the reference's 0-based steps 0, N, ...)."""
        return bool(self.eval_interval) and (step == 0 or (step - 1) % self.eval_interval == 0)

    def validation_score(self, instruction: str) -> float:
        """Accuracy (percent) on the validation split, scored once per instruction."""
        if instruction not in self.validation_scores:
            self.validation_scores[instruction] = accuracy(self.evaluate(instruction, self.validation))
        return self.validation_scores[instruction]

    def step_values(self, step: int) -> dict[str, float | None]:
        """steps.csv's extra cells (`step_columns`) after `step` was scored: at an evaluation step the mean
        validation accuracy of the step's new instructions, the validation accuracy of the best instruction so
        far (training accuracy; the earliest on ties) and, with `eval_test`, its test accuracy; else empty."""
        values: dict[str, float | None] = dict.fromkeys(self.step_columns)
        if self.is_eval_step(step) and self.full_scores:
            best = max(self.full_scores, key=lambda k: self.full_scores[k])  # max keeps the first of ties
            values["validation_mean"] = float(np.mean(self.step_validation)) if self.step_validation else None
            values["validation_of_best"] = self.validation_score(best)
            if self.eval_test:
                if best not in self.test_scores:
                    self.test_scores[best] = accuracy(self.evaluate(best, self.examples("test")))
                values["test_of_best"] = self.test_scores[best]
        self.step_validation = []
        return values

    def _few_shot_scored(self) -> bool:
        return (self.evaluate_generated_ins_on_few_shot or self.evaluate_old_ins_on_few_shot) and bool(
            self.num_exemplars) and self.meta_prompt_type != "instructions_only"

    def _score_on_few_shot(self, instruction: str, kind: str) -> None:
        """Score `instruction` on the step's exemplars and append it to few_shot.csv (reference switches
        evaluate_generated_ins_on_few_shot / evaluate_old_ins_on_few_shot)."""
        if not self.picks:
            return
        results = self.evaluate(instruction, [self.train[i] for i in self.picks])
        if self.run_path is not None:
            with open(self.run_path / "few_shot.csv", "a", newline="") as handle:
                csv.writer(handle).writerow([self.step, instruction_id(instruction), kind, len(results),
                                             sum(r.correct for r in results), repr(accuracy(results))])

    def _record(self, instruction: str, score: float, results: list[ExampleResult], full: bool, calls: int,
                prompt_tokens: int, completion_tokens: int, validation: float | None = None) -> None:
        if self.run_path is None:
            return
        ident = instruction_id(instruction)
        write_results_csv(self.run_path / "instructions" / f"{ident}.csv", results)
        row = [self.step, ident, instruction, repr(score), len(results), full, not full,
               self.scorer.calls - calls, self.scorer.prompt_tokens - prompt_tokens,
               self.scorer.completion_tokens - completion_tokens]
        if VALIDATION_COLUMN in self.instruction_columns:
            row.append("" if validation is None else repr(validation))
        with open(self.run_path / "instructions.csv", "a", newline="") as handle:
            csv.writer(handle).writerow(row)

    def is_optimal(self, score: float) -> bool:
        return score >= 100.0

    def baselines(self) -> dict[str, float]:
        return {}  # the paper's baseline instructions are evaluated by `opro eval --baselines`

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "dataset": self.dataset, "bbh_task": self.bbh_task, "data": self.data or "hub",
            "n_train": len(self.train), "train_uids": [e.uid for e in self.train[:3]] + (
                ["..."] if len(self.train) > 3 else []),
            "position": self.position, "qa_format": self.qa_format, "meta_prompt_type": self.meta_prompt_type,
            "screen": self.screen, "n_screened_out": self.n_screened_out,
            "n_fully_scored": len(self.full_scores),
        }
        if self.dataset == "mmlu":  # new keys only where new settings are used: older runs' records still match
            info["mmlu_task"] = self.mmlu_task
        if self.validation_ratio:
            info["n_validation"] = len(self.validation)
        if self.scorer is not None:
            info["scorer"] = scorer_identity(self.scorer.llm)
            info.update(self.scorer.usage())
        return info


@dataclass
class GSM8KInstructions(PromptOptimization):
    """Problem kind "gsm8k": instructions for grade-school math (train: 3.5% of the train split, seeded)."""

    dataset: str = "gsm8k"


@dataclass
class BBHInstructions(PromptOptimization):
    """Problem kind "bbh": instructions for one BIG-Bench Hard task (`bbh_task`; train: 20%, test: the rest)."""

    dataset: str = "bbh"
    train_ratio: float = 0.2


@dataclass
class MMLUInstructions(PromptOptimization):
    """Problem kind "mmlu": instructions for one MMLU category or subject (`mmlu_task`; reference split: 80%
    train, 20% validation, seeded; test: the rest, or the whole dataset when nothing is left)."""

    dataset: str = "mmlu"
    mmlu_task: str | None = "STEM"
    train_ratio: float = 0.8
    validation_ratio: float = 0.2
