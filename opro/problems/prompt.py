"""Prompt optimization (paper §4-5): find an instruction that makes a scorer LLM answer more questions right.

A solution is an instruction (a string). Its score is the scorer's accuracy on the training split, in
percent (0-100, higher is better); the meta-prompt shows it in `num_score_buckets` buckets, by default 100:
the accuracy rounded to an integer (reference: opt_utils._bucketize_float, num_score_buckets = 100). The
problem calls its scorer LLM inside `score`, through the persistent score cache, and writes each
instruction's per-example results to the run directory (opro.prompting.records).

Datasets: GSM8K, BBH and MMLU (one category or subject) for optimization, MultiArith and AQuA for transfer. With
`validation_ratio` and `eval_interval`, the instructions of every N-th step are also scored on a validation
split (paper §5.4), recorded in instructions.csv and, through `step_values` (problems.StepValues), in
steps.csv.

Meta-prompt types (setting `meta_prompt_type`, reference: opt_utils.gen_meta_prompt):
- "both_instructions_and_exemplars" (instruction-tuned optimizers): the top instructions with scores, and
  `num_exemplars` questions with their answers, picked per step (`exemplar_selection`: random, constant, or
  from the ones instructions got wrong). Two wordings (setting `meta_prompt_family`; the reference picks it
  from the optimizer's name): "gpt" (templates `instructions-gpt`, answers in `<INS>...</INS>`, and
  `instructions-gpt-start` for A_begin, answers in `<Start>...</Start>`) and "bison" (`instructions-bison`,
  the paper's Figure 3, answers in `[...]`).
- "instructions_only" (pre-trained optimizers): only the instructions, as `Precision: 61 <TEXT>...</TEXT>`
  (template `instructions-only`).
A preset's `template = "instructions"` picks the template from these settings (`resolve_template`). The
optimizer's output is read by opro.prompting.instructions, the exemplars laid out by opro.prompting.exemplars.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from opro.errors import OproError
from opro.problems.base import Invalid, ProblemBase
from opro.prompting import instructions
from opro.prompting.data import DATASETS, MMLU_CATEGORIES, Example, load_examples, split_with_validation
from opro.prompting.exemplars import EXEMPLAR_HEADINGS, exemplar_text, most_frequent_picks
from opro.prompting.records import InstructionRecords
from opro.prompting.scoring import (
    POSITIONS,
    ExampleResult,
    InstructionScorer,
    ScoreCache,
    accuracy,
    instruction_id,
    scorer_identity,
)
from opro.prompting.screen import kth_best, passes_stage, stage_positions
from opro.results import read_rows
from opro.settings import MAX_SEED, Range

META_PROMPT_TYPES = ("both_instructions_and_exemplars", "instructions_only")
#: Optimizer families of the meta-prompt wording (reference: "gpt-3.5-turbo"/"gpt-4" and "text-bison").
META_PROMPT_FAMILIES = ("gpt", "bison")
#: The shipped instruction templates, one per (meta_prompt_type, family, A_begin or not); see resolve_template.
FAMILY_TEMPLATES = ("instructions-gpt", "instructions-gpt-start", "instructions-bison", "instructions-only")
#: "random", "constant", "current_most_frequent", "accumulative_most_frequent": the reference's
#: few_shot_selection_criteria (opt_utils.run_evolution); "wrong": this project's (see pick_exemplars).
EXEMPLAR_SELECTIONS = ("random", "wrong", "constant", "current_most_frequent", "accumulative_most_frequent")
#: The meta-prompt's {position_description}, per position (reference: opt_utils.gen_meta_prompt).
POSITION_WORDS = {"before_Q": "before the question", "Q_begin": "at the beginning of the question",
                  "Q_end": "at the end of the question", "A_begin": "at the beginning of the answer"}
#: steps.csv's first extra column: the step's scorer requests for the training score (the loop's
#: max_scorer_calls budget and `opro compare`'s x axis). Score-cache hits count as requests, so a budget is
#: the same however warm the cache; validation, test and few-shot scoring are not counted.
SCORER_CALLS_COLUMN = "scorer_calls"
#: steps.csv's extra columns when problem.eval_interval > 0 (test_of_best only with eval_test).
VALIDATION_STEP_COLUMNS = ("validation_mean", "validation_of_best", "test_of_best")


@dataclass
class PromptOptimization(ProblemBase):
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
    meta_prompt_family: str = "gpt"
    """The meta-prompt's wording: "gpt" (the reference's for gpt-3.5-turbo and gpt-4) or "bison" (its
    text-bison one, the paper's Figure 3). The reference picks it from the optimizer's name."""
    num_score_buckets: int | str = 100
    """Scores are shown as round(accuracy * buckets), accuracy in [0, 1] (reference num_score_buckets = 100,
    the paper's default; §5.3 also tries 20); "none": no scores shown, only the ascending order (§5.3);
    "raw": the accuracy as a fraction, 3 decimals (instructions_only: 2), the reference's np.inf."""
    instructions_before_exemplars: bool = True
    """The old instructions come before the exemplars (reference meta_prompt_instructions_before_exemplars)."""
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
    scorer_max_tokens: int = 1024
    """Completion limit of each scorer answer (decoding is greedy). Reference: optimize_instructions.py and
    evaluate_instructions.py give both their scorer families 1024 tokens (text-bison:
    scorer_finetuned_palm_max_decode_steps = 1024; gpt-3.5-turbo / gpt-4: scorer_gpt_max_decode_steps = 1024).
    Every scorer here is asked through a chat template (openai:, llamacpp:, hf:), as an instruction-tuned one,
    so every scorer gets 1024; a pre-trained model that rambles on past its answer may take less."""
    extract_final_answer_by_prompting_again: bool = False
    """Ask the scorer a second time, "<prompt> <its answer> So the final answer is" (50 tokens), and parse that
    answer (reference: eval_utils.evaluate_single_instruction; False for both its scorers,
    optimize_instructions.py). The extra calls count in the scorer's calls and tokens."""
    score_cache: bool | str = True
    """The persistent score cache: true (prompt_scores.sqlite beside the LLM-call cache), false, or a path."""
    screen: bool = False
    """Successive halving (`--screen`): score on a subset first, fully only if it could enter the top-k."""
    screen_fraction: float = 0.1
    """Share of the training split in the screening subset (at least one question)."""
    screen_top_k: int = 20
    """The k of "could still enter the top-k"; a run sets it to loop.top_k unless given."""
    screen_margin: int = 0
    """Subset answers a candidate may fall short of the k-th best and still go on (negative: it must beat the
    k-th best by that many, GEPA-style minibatch acceptance)."""
    screen_z: float = 0.0
    """Confidence bound: the candidate also goes on when short by less than z * sqrt(questions where it and the
    k-th best differ) (opro.prompting.screen.passes_stage); 0: the plain count comparison."""
    screen_stages: int = 3
    """Screening stages before the full split, each subset 3x the previous (successive halving: 10%, 30%, 90%
    of GSM8K's 261 questions); 1: one subset, the rule before these options (benchmarks/screen_at_scale.py,
    simulated scorer: 3 stages with screen_rotate lose far less best train accuracy than one fixed subset)."""
    screen_rotate: bool = True
    """A fresh seeded subset each step (GEPA's per-iteration minibatch); false: one subset for the whole run."""
    seed: int = 0
    """Run seed: the per-step exemplar picks."""

    minimize = False
    uses_scorer = True
    SCORE_LABEL: ClassVar[str] = "training accuracy (%)"
    DATASET_CHOICES: ClassVar[tuple[str, ...]] = DATASETS
    TEMPLATE_FIELDS: ClassVar[tuple[str, ...]] = ("task_description", "position_description", "exemplars",
                                                  "exemplars_before", "exemplars_after")

    def __post_init__(self) -> None:
        self.name = self.dataset
        self.min_shown_score = self.shown_threshold
        self.train, self._test = self._load_train()
        self.scorer: InstructionScorer | None = None
        self.correct: dict[str, tuple[bool, ...]] = {}  # fully scored instructions: per-train-example outcome
        self.full_scores: dict[str, float] = {}
        self._screen_subsets: tuple[int | None, list[list[int]]] | None = None  # (step or None, stage subsets)
        self.n_screened_out = 0
        self.step = 0
        self.records: InstructionRecords | None = None  # the run directory's files, once a run is attached
        self.picks: list[int] = []  # the current step's exemplars (training positions)
        self.validation_scores: dict[str, float] = {}
        self.test_scores: dict[str, float] = {}
        self.step_validation: list[float] = []  # this step's validation accuracies, for steps.csv
        self.step_scorer_calls = 0  # this step's training-score requests, for steps.csv scorer_calls
        self.step_columns: tuple[str, ...] = (SCORER_CALLS_COLUMN,) + ((
            VALIDATION_STEP_COLUMNS if self.eval_test else VALIDATION_STEP_COLUMNS[:2]) if self.eval_interval else ())

    LIMITS: ClassVar[dict[str, Range]] = {
        "train_ratio": Range(0, 1, above=True), "train_limit": Range(1, None), "num_exemplars": Range(0, 1000),
        "max_instruction_length": Range(1, None), "scorer_max_tokens": Range(1, 1_000_000),
        "screen_fraction": Range(0, 1, above=True), "screen_top_k": Range(1, None),
        "screen_margin": Range(-1_000_000, 1_000_000), "screen_z": Range(0, 100), "screen_stages": Range(1, 10),
        "split_seed": Range(0, MAX_SEED), "validation_ratio": Range(0, 1), "validation_limit": Range(1, None),
        "eval_interval": Range(0, 1_000_000),
    }

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        choices = {"dataset": cls.DATASET_CHOICES, "position": POSITIONS, "meta_prompt_type": META_PROMPT_TYPES,
                   "exemplar_selection": EXEMPLAR_SELECTIONS, "meta_prompt_family": META_PROMPT_FAMILIES}
        for name, known in choices.items():
            if settings[name] not in known:
                raise OproError(f"problem.{name} must be one of {', '.join(known)}, got {settings[name]!r}")
        buckets = settings["num_score_buckets"]
        if buckets not in ("none", "raw") and not (isinstance(buckets, int) and 1 <= buckets <= 1_000_000):
            raise OproError('problem.num_score_buckets must be an integer in [1, 1000000], "none" or "raw", '
                            f"got {buckets!r}")
        if settings["meta_prompt_type"] == "instructions_only" and settings["position"] == "before_Q":
            raise OproError("instructions_only meta-prompts describe Q_begin, Q_end or A_begin positions")
        if settings["eval_interval"] and not settings["validation_ratio"]:
            raise OproError("problem.eval_interval needs a validation split: set problem.validation_ratio (paper "
                            "§5.4: 1/3)")
        if settings["dataset"] == "mmlu" and settings["mmlu_task"] is None:
            raise OproError(f"dataset mmlu needs problem.mmlu_task: one of {', '.join(map(repr, MMLU_CATEGORIES))}, "
                            "or one subject")

    @classmethod
    def resolve_template(cls, template: str, settings: dict[str, Any]) -> str:
        """The template for `template` under `settings`: "instructions" picks `instructions-only`,
        `instructions-gpt` (`instructions-gpt-start` for A_begin) or `instructions-bison`; a named family
        template must agree with the settings; any other name or path is used as it is."""
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        merged = {**defaults, **settings}
        kind, family, position = merged["meta_prompt_type"], merged["meta_prompt_family"], merged["position"]
        fitting = f"instructions-{family}"
        if kind == "instructions_only":
            fitting = "instructions-only"
        elif family == "gpt" and position == "A_begin":
            fitting = "instructions-gpt-start"
        if template == "instructions":
            return fitting
        if template in FAMILY_TEMPLATES and template != fitting:
            raise OproError(f"template {template!r} does not fit meta_prompt_type {kind!r}, meta_prompt_family "
                            f"{family!r} and position {position!r}, which call for {fitting!r}; use "
                            'template = "instructions", which follows the settings')
        return template

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

    def test_size(self) -> int | None:
        return None if self._test is None else len(self._test)

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
        """Score with `llm` (built by opro.runner from the run's scorer config)."""
        cache = None
        if self.score_cache:
            cache = ScoreCache(None if self.score_cache is True else Path(str(self.score_cache)))
        self.scorer = InstructionScorer(llm, self.position, self.qa_format, self.scorer_max_tokens, cache,
                                        prompt_again=self.extract_final_answer_by_prompting_again)

    def attach_run(self, path: Path, last_step: int | None = None) -> None:
        """Write instructions.csv, instructions/<id>.csv (and few_shot.csv) into the run directory at `path`;
        a resumed run has its fully scored and validated instructions read back, after its rows of steps past
        `last_step`, its last completed step, are dropped (opro.prompting.records)."""
        self.records, resumed = InstructionRecords.attach(path, bool(self.eval_interval), self._few_shot_scored(),
                                                          last_step)
        self.validation_scores.update(resumed.validation_scores)
        self.correct.update(resumed.correct)
        self.full_scores.update(resumed.full_scores)

    def close(self) -> None:
        if self.scorer is not None:
            if self.scorer.cache:
                self.scorer.cache.close()
            self.scorer.llm.close()

    def example_results(self, instruction: str) -> list[dict[str, Any]] | None:
        """A fully scored instruction's per-training-example results as the run recorded them (PromptTask):
        the rows of instructions/<id>.csv (`correct` a bool, the other cells text); None when it was not fully
        scored or no run is attached."""
        if self.records is None or instruction not in self.full_scores:
            return None
        path = self.records.path / "instructions" / f"{instruction_id(instruction)}.csv"
        if not path.is_file():
            return None
        return read_rows(path)

    def evaluate(self, instruction: str, examples: list[Example]) -> list[ExampleResult]:
        if self.scorer is None:
            raise OproError("the prompt problem has no scorer LLM")
        return self.scorer.evaluate(instruction, examples)

    # ---- the Problem seam ------------------------------------------------------------------------------------

    def initial_solutions(self, rng: np.random.Generator, count: int) -> list[str]:
        return list(self.initial_instructions)[:count]

    def parse(self, text: str) -> str | Invalid:
        found = instructions.parse_instruction(text, self.meta_prompt_type)
        if isinstance(found, Invalid):
            return found
        return self.check_instruction(found)

    def check_instruction(self, found: str) -> str | Invalid:
        """The task's rules for an instruction (PromptTask): not empty, not too long, no digits for GSM8K,
        no INS tag."""
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

    def render_score(self, score: float) -> str | None:
        """round(accuracy * num_score_buckets), accuracy in [0, 1], with Python's round (half to even), as
        the reference's _bucketize_float; None (not shown) for "none"; for "raw" the fraction rounded to 3
        decimals (instructions_only: 2), as the reference shows it with num_score_buckets = np.inf."""
        if self.num_score_buckets == "none":
            return None
        if self.num_score_buckets == "raw":
            return str(round(score / 100, 2 if self.meta_prompt_type == "instructions_only" else 3))
        return str(round(score / 100 * self.num_score_buckets))

    def prompt_fields(self) -> dict[str, str]:
        named = self.bbh_task if self.dataset == "bbh" else self.mmlu_task if self.dataset == "mmlu" else None
        task = "grade school math" if self.dataset == "gsm8k" else (
            " ".join(named.split("_")) if named else self.dataset)  # MMLU: the category, as the reference
        return {"task_description": task, "position_description": POSITION_WORDS[self.position],
                **self._exemplar_fields("")}

    def begin_step(self, step: int) -> None:
        """The loop starts `step` (PromptTask): its instructions are recorded under it."""
        self.step = step
        self.picks = []

    def step_fields(self, step: int, shown: list[tuple[str, float]]) -> dict[str, str]:
        """The step's exemplars: `num_exemplars` training questions with their answers, as the reference's
        meta-prompt lays them out, with <INS> (GPT wording at A_begin: <Start>) where the instruction goes.
        No exemplars (none asked for, or no training data): no exemplar block at all, heading included."""
        self.step = step
        self.picks = []
        if self.meta_prompt_type == "instructions_only" or not self.num_exemplars or not self.train:
            return self._exemplar_fields("")
        picks = self.pick_exemplars(step, [instruction for instruction, _ in shown])
        self.picks = picks
        if self.evaluate_old_ins_on_few_shot:
            for instruction in list(self.full_scores):
                self._score_on_few_shot(instruction, "old")
        block = EXEMPLAR_HEADINGS[self.meta_prompt_family] + "".join(
            exemplar_text(self.train[i].question, self.train[i].answer, self.position, self.qa_format,
                          self.meta_prompt_family) for i in picks)
        return self._exemplar_fields(block)

    def _exemplar_fields(self, block: str) -> dict[str, str]:
        """`exemplars` (the block alone), and the block with the reference's blank line (two newlines) on the
        side facing the instructions: `exemplars_after` or `exemplars_before` (instructions_before_exemplars)."""
        after = self.instructions_before_exemplars
        return {"exemplars": block, "exemplars_after": "\n\n" + block if block and after else "",
                "exemplars_before": block + "\n\n" if block and not after else ""}

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
        elif self.exemplar_selection != "random":  # from wrong answers: shown instructions', or the run's
            counted = list(self.correct) if self.exemplar_selection == "accumulative_most_frequent" else shown
            outcomes = [self.correct[i] for i in counted if i in self.correct]
            wrong = self.exemplar_selection == "wrong"
            picks = most_frequent_picks("current_most_frequent" if wrong else self.exemplar_selection, outcomes, n,
                                        rng)
            if not wrong:
                return picks
            if picks:
                return sorted(picks)
        return sorted(int(i) for i in rng.choice(len(self.train), size=n, replace=False))

    def score(self, solutions: list[str]) -> list[float]:
        return [self._score_one(instruction) for instruction in solutions]

    def _score_one(self, instruction: str) -> float:
        if self.scorer is None:
            raise OproError("the prompt problem has no scorer LLM")
        if self.evaluate_generated_ins_on_few_shot and self.step > 0:
            self._score_on_few_shot(instruction, "generated")
        start = self._usage()
        bar = kth_best(self.full_scores, self.screen_top_k) if self.screen else None
        answered: dict[int, ExampleResult] = {}  # training position -> result, each asked once
        for positions in self.screen_subsets() if bar is not None else []:
            self._train_evaluate_at(instruction, positions, answered)
            if not passes_stage([answered[i].correct for i in positions], [self.correct[bar][i] for i in positions],
                                self.screen_margin, self.screen_z):
                first = [answered[i] for i in sorted(answered)]
                # recorded with its subset accuracy, capped just below the k-th best full score so that it
                # never displaces a fully scored instruction from the meta-prompt (there, at equal scores the
                # newer one stays in)
                score = min(accuracy(first), float(np.nextafter(self.full_scores[bar], -np.inf)))
                self.n_screened_out += 1
                self._record(instruction, score, first, False, start)
                return score
        self._train_evaluate_at(instruction, range(len(self.train)), answered)
        results = [answered[i] for i in range(len(self.train))]
        score = accuracy(results)
        self.correct[instruction] = tuple(r.correct for r in results)
        self.full_scores[instruction] = score
        validation = None
        if self.is_eval_step(self.step):  # its scorer usage is not the training score's: left out of the row
            before = self._usage()
            validation = self.validation_score(instruction)
            self.step_validation.append(validation)
            # start moved on by the validation's usage, so that the row counts the training score's alone
            start = tuple(s + now - b for s, now, b in zip(start, self._usage(), before, strict=True))
        self._record(instruction, score, results, True, start, validation)
        return score

    def screen_subsets(self) -> list[list[int]]:
        """The training positions of the screening stages at the current step (see `stage_positions`)."""
        step = self.step if self.screen_rotate else None
        if self._screen_subsets is None or self._screen_subsets[0] != step:
            self._screen_subsets = step, stage_positions(len(self.train), self.screen_fraction, self.split_seed,
                                                         self.screen_stages, step)
        return self._screen_subsets[1]

    def _train_evaluate_at(self, instruction: str, positions: Any, answered: dict[int, ExampleResult]) -> None:
        """Score at the training `positions` not yet in `answered`, adding their results there."""
        todo = [i for i in positions if i not in answered]
        if todo:
            answered.update(zip(todo, self._train_evaluate(instruction, [self.train[i] for i in todo]), strict=True))

    def _train_evaluate(self, instruction: str, examples: list[Example]) -> list[ExampleResult]:
        """Score on training examples, counting the requests (two per example with prompt_again)."""
        assert self.scorer is not None
        self.step_scorer_calls += len(examples) * (2 if self.extract_final_answer_by_prompting_again else 1)
        return self.scorer.evaluate(instruction, examples)

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
        """steps.csv's extra cells (`step_columns`) after `step` was scored: the step's scorer_calls and, at an
        evaluation step, the mean validation accuracy of the step's new instructions, the validation accuracy of
        the best instruction so far (training accuracy; the earliest on ties) and, with `eval_test`, its test
        accuracy; else empty."""
        values: dict[str, float | None] = dict.fromkeys(self.step_columns)
        values[SCORER_CALLS_COLUMN], self.step_scorer_calls = self.step_scorer_calls, 0
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
        if self.records is not None:
            self.records.record_few_shot(self.step, instruction, kind, results)

    def _usage(self) -> tuple[int, ...]:
        """The scorer's calls, prompt tokens and completion tokens so far."""
        assert self.scorer is not None
        return self.scorer.calls, self.scorer.prompt_tokens, self.scorer.completion_tokens

    def _record(self, instruction: str, score: float, results: list[ExampleResult], full: bool,
                start: tuple[int, ...], validation: float | None = None) -> None:
        """instructions.csv's row, with the scorer usage since `start` (see _usage)."""
        if self.records is not None:
            usage = tuple(now - then for now, then in zip(self._usage(), start, strict=True))
            self.records.record(self.step, instruction, score, results, full, usage, validation)

    def is_optimal(self, score: float) -> bool:
        return score >= 100.0

    def baselines(self) -> dict[str, float]:
        return {}  # the paper's baseline instructions are evaluated by `opro eval --baselines`

    @classmethod
    def group_label(cls, task: str, instance: dict[str, Any]) -> str:
        return f"{task} {instance['bbh_task']}" if instance.get("bbh_task") else task

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "dataset": self.dataset, "bbh_task": self.bbh_task, "data": self.data or "hub",
            "n_train": len(self.train), "train_uids": [e.uid for e in self.train[:3]] + (
                ["..."] if len(self.train) > 3 else []),
            "position": self.position, "qa_format": self.qa_format, "meta_prompt_type": self.meta_prompt_type,
            "meta_prompt_family": self.meta_prompt_family, "num_score_buckets": self.num_score_buckets,
            "instructions_before_exemplars": self.instructions_before_exemplars,
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
        rate = None if self.records is None else self.records.truncated_rate()
        if rate is not None:  # in summary.json; not in config.json's instance (no run is attached yet)
            info["scorer_truncated_rate"] = rate
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
