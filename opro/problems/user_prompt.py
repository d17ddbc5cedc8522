"""Problem kind "prompt": instructions for the user's own data and answer check, with everything GSM8K has
(the scorer, positions, meta-prompt families, screening, validation, the proposal methods).

Data (`problem.data`, or `--data`): a .jsonl, .json, .csv (with a header row) or .parquet file, one example
a row; `question_field` and `answer_field` name its columns (default "question" and "answer"). The examples
are split with `train_ratio` (seeded by `split_seed`); the rest is the test split of `opro eval`.

An answer is judged by `answer_check`: "number" (the last number, as GSM8K), "choice" (a letter "(B)", as
MMLU), "boolean" (true/false, yes/no), "exact" (the answer's first line equals the gold one, ignoring case,
spaces and punctuation) or "contains" (the scorer's answer contains the gold one, likewise normalized); or by
the user's `metric = "module:function"`, called as function(answer, gold) with the scorer's answer text and
the gold answer, returning a float in [0, 1] (the example's credit; the score is the mean credit in percent).
A metric that cannot be imported, raises on the gold answer or returns a value outside [0, 1] is refused
before a run starts; one that fails while scoring makes that instruction an invalid candidate.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from opro.errors import OproError
from opro.problems.prompt import PromptOptimization
from opro.prompting.data import Example, read_records, split_with_validation
from opro.prompting.extract import _plain
from opro.scores import Invalid

#: answer_check -> the Example kind whose answer extraction it uses.
ANSWER_CHECKS = {"number": "number", "choice": "choice", "boolean": "bool", "exact": "text", "contains": "text"}


class MetricError(Exception):
    """The user's metric failed on one answer (the instruction becomes an invalid candidate)."""


@dataclass
class UserPromptTask(PromptOptimization):
    """Problem kind "prompt": instructions for the user's own examples (see the module docstring)."""

    dataset: str = "prompt"
    task: str = "the task"
    """What the examples are about, for the meta-prompt's "{task_description}"."""
    question_field: str = "question"
    """The data's column (or JSON key) holding the question."""
    answer_field: str = "answer"
    """The data's column (or JSON key) holding the gold answer."""
    answer_check: str = "exact"
    """"number", "choice", "boolean", "exact" or "contains" (ignored with `metric`)."""
    metric: str | None = None
    """A user function "module:function", (answer, gold) -> float in [0, 1], importable from the working
    directory or an installed package."""
    train_ratio: float = 0.5

    DATASET_CHOICES: ClassVar[tuple[str, ...]] = ("prompt",)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        if not settings.get("data"):
            raise OproError("the prompt problem needs its data: --data FILE (problem.data; .jsonl, .json, .csv or "
                            ".parquet)")
        if settings["answer_check"] not in ANSWER_CHECKS:
            raise OproError(f"problem.answer_check must be one of {', '.join(ANSWER_CHECKS)}, got "
                            f"{settings['answer_check']!r}")
        metric = settings.get("metric")
        if metric is not None and (metric.count(":") != 1 or not all(metric.split(":"))):
            raise OproError(f"problem.metric must be module:function, got {metric!r}")
        super().check_settings(settings)

    def __post_init__(self) -> None:
        self._metric = None if self.metric is None else _load_metric(self.metric)
        super().__post_init__()
        if self._metric is not None:  # once on a gold answer, so that a broken metric stops before a run starts
            _credit(self._metric, str(self.metric), self.train[0].answer, self.train[0].answer, before_run=True)

    def _load_train(self) -> tuple[list[Example], list[Example] | None]:
        pool = load_user_examples(Path(str(self.data)), self.question_field, self.answer_field,
                                  ANSWER_CHECKS[self.answer_check])
        train_at, validation_at, test_at = split_with_validation(len(pool), self.train_ratio, self.validation_ratio,
                                                                 self.split_seed)
        self.validation = [pool[i] for i in validation_at][: self.validation_limit]
        return [pool[i] for i in train_at][: self.train_limit], [pool[i] for i in test_at]

    def prompt_fields(self) -> dict[str, str]:
        return {**super().prompt_fields(), "task_description": self.task}

    def use_scorer(self, llm: Any) -> None:
        super().use_scorer(llm)
        assert self.scorer is not None
        self.scorer.judge = self._judge

    def _judge(self, answer: str, parsed: str, example: Example) -> float | None:
        """The example's credit: the metric's, or 1.0/0.0 for "exact" and "contains"; None: the built-in
        checks of number, choice and boolean answers."""
        if self._metric is not None:
            return _credit(self._metric, str(self.metric), answer.strip(), example.answer)
        if self.answer_check == "exact":
            return float(bool(_plain(example.answer)) and _plain(parsed) == _plain(example.answer))
        if self.answer_check == "contains":
            return float(bool(_plain(example.answer)) and _plain(example.answer) in _plain(answer))
        return None

    def score(self, solutions: list[str]) -> list[float | Invalid]:  # type: ignore[override]
        out: list[float | Invalid] = []
        for instruction in solutions:
            try:
                out.append(self._score_one(instruction))
            except MetricError as error:
                out.append(Invalid(str(error)))
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "task": self.task, "question_field": self.question_field,
                "answer_field": self.answer_field, "answer_check": self.answer_check, "metric": self.metric}


def load_user_examples(path: Path, question_field: str, answer_field: str, kind: str) -> list[Example]:
    """The examples of a user's data file; a one-line OproError for a missing file, column or empty cell."""
    if not path.is_file():
        raise OproError(f"data file not found: {path}")
    records = read_records(path)
    examples = []
    name = hashlib.sha256(path.name.encode()).hexdigest()[:6]
    for index, record in enumerate(records):
        if not isinstance(record, dict) or question_field not in record or answer_field not in record:
            raise OproError(f"data {path}: record {index + 1} lacks the field {question_field!r} or {answer_field!r} "
                            f"(set problem.question_field / problem.answer_field)")
        question, answer = str(record[question_field]).strip(), str(record[answer_field]).strip()
        if not question or not answer:
            raise OproError(f"data {path}: record {index + 1} has an empty question or answer")
        digest = hashlib.sha256(question.encode()).hexdigest()[:8]
        examples.append(Example(f"prompt-{name}/all/{index}/{digest}", index, question, answer, kind))
    if not examples:
        raise OproError(f"no examples in {path}")
    return examples


def _load_metric(spec: str) -> Callable[[str, str], Any]:
    module_name, _, function_name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise OproError(f"problem.metric {spec}: cannot import module {module_name!r}: {type(error).__name__}: "
                        f"{error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise OproError(f"problem.metric {spec}: module {module_name!r} has no function {function_name!r}")
    return function


def _credit(metric: Callable[[str, str], Any], spec: str, answer: str, gold: str, before_run: bool = False) -> float:
    """metric(answer, gold), checked: a float in [0, 1]. Before a run a failure is an OproError (bad input),
    while scoring a MetricError (that instruction is invalid)."""
    failure = OproError if before_run else MetricError
    try:
        value = metric(answer, gold)
    except Exception as error:
        from opro.problems.check import debugging

        if debugging():
            raise
        raise failure(f"problem.metric {spec} raised {type(error).__name__}: {error}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= 1:
        raise failure(f"problem.metric {spec} returned {value!r}; expected a float in [0, 1]")
    return float(value)
