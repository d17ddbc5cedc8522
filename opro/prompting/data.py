"""Datasets for prompt optimization: GSM8K, the 27 BBH tasks, MMLU, MultiArith and AQuA.

Sources, in order: a local path (`data`: a file, or a folder in the layout of the reference code's data/),
else the Hugging Face hub through `datasets` (GSM8K `openai/gsm8k` `main`; BBH `lukaemon/bbh`; MultiArith
`ChilleD/MultiArith`; AQuA `deepmind/aqua_rat` `raw`; MMLU `cais/mmlu`, one config per subject). Local files
are read with pandas/json directly: .jsonl, .json, .parquet, the reference's headerless .tsv (question,
answer[, rationale]) and MMLU's headerless per-subject .csv (see `load_mmlu`).

Every example gets a stable `uid` (dataset/split/index/hash of the question), the key of the score cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opro.errors import OproError

#: Seconds to wait for the hub's host before a hub load is given up (the hub client would retry for 30 s).
HUB_PROBE_SECONDS = 3.0

DATASETS = ("gsm8k", "bbh", "mmlu", "multiarith", "aqua")

BBH_TASKS = (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
    "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
    "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
    "word_sorting",
)
# The answer kind of each BBH task, as the reference code's numerical_output_tasks / boolean_tasks /
# multiple_choice_tasks (optimize_instructions.py); the two others (dyck_languages, word_sorting) are text.
BBH_NUMBER = frozenset({"object_counting", "multistep_arithmetic_two"})
BBH_BOOL = frozenset({"boolean_expressions", "causal_judgement", "formal_fallacies", "navigate",
                      "sports_understanding", "web_of_lies"})
BBH_TEXT = frozenset({"dyck_languages", "word_sorting"})

HUB = {
    "gsm8k": ("openai/gsm8k", "main"),
    "bbh": ("lukaemon/bbh", None),  # the config is the task name
    "multiarith": ("ChilleD/MultiArith", None),
    "aqua": ("deepmind/aqua_rat", "raw"),
}
LOCAL_FILES = {  # names in the reference code's data/ folders (and in ../shared/data)
    "gsm8k": ("gsm_{split}.tsv", "{split}.jsonl", "{split}.parquet", "gsm8k_{split}.jsonl"),
    "bbh": ("{task}.json", "{task}.jsonl", "{task}.parquet"),
    "multiarith": ("MultiArith.json", "{split}.jsonl", "{split}.parquet"),
    "aqua": ("AQuA.json", "{split}.jsonl", "test.json", "{split}.parquet"),
}


@dataclass(frozen=True)
class Example:
    """One question with its gold answer. `kind` says how answers are compared (see opro.prompting.extract)."""

    uid: str
    """Stable id: dataset/split/index/first 8 hex digits of the question's sha256."""
    index: int
    """Position in the loaded split (the reference code's `index_in_raw_dataset`)."""
    question: str
    """The question as the scorer sees it (multiple-choice options included)."""
    answer: str
    """Gold answer: a number ("18"), "(B)", "True"/"No"/"valid", or text."""
    kind: str
    """"number", "bool", "choice" or "text"."""


def answer_kind(dataset: str, bbh_task: str | None = None) -> str:
    if dataset in ("gsm8k", "multiarith"):
        return "number"
    if dataset in ("aqua", "mmlu"):
        return "choice"
    if bbh_task in BBH_NUMBER:
        return "number"
    if bbh_task in BBH_BOOL:
        return "bool"
    return "text" if bbh_task in BBH_TEXT else "choice"


def load_examples(dataset: str, split: str = "train", data: str | None = None,
                  bbh_task: str | None = None) -> list[Example]:
    """All examples of one split. BBH has a single split per task (`split` only names it in the uids);
    MultiArith and AQuA are read whole (they are for transfer evaluation)."""
    if dataset not in DATASETS:
        raise OproError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if dataset == "mmlu":  # its own layout; the task (a category or a subject) comes as `bbh_task`
        return load_mmlu(bbh_task, data)
    if dataset == "bbh" and bbh_task not in BBH_TASKS:
        raise OproError(f"unknown BBH task {bbh_task!r} (problem.bbh_task); known: {', '.join(BBH_TASKS)}")
    if data:
        source = _local_file(dataset, split, Path(data).expanduser(), bbh_task)
        records = read_records(source)
    else:
        source, records = f"the hub's {HUB[dataset][0]}", _hub_records(dataset, split, bbh_task)
    kind = answer_kind(dataset, bbh_task)
    name = f"bbh-{bbh_task}" if dataset == "bbh" else dataset
    examples = []
    for index, record in enumerate(records):
        try:
            question, answer = _question_answer(dataset, record)
        except OproError as error:
            raise OproError(f"data {source}: record {index + 1}: {error}") from None
        digest = hashlib.sha256(question.encode()).hexdigest()[:8]
        examples.append(Example(f"{name}/{split}/{index}/{digest}", index, question, answer, kind))
    if not examples:
        raise OproError(f"no examples in the {dataset} data ({data or 'hub'})")
    return examples


def split_indices(n: int, train_ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random `train_ratio` of range(n) (at least one) and the rest, both sorted (paper §5.1)."""
    train, _, rest = split_with_validation(n, train_ratio, 0.0, seed)
    return train, rest


def check_hub_reachable(what: str, local_hint: str) -> None:
    """A one-line OproError at once when the hub's host cannot be reached (no network), instead of the hub
    client's retries. Skipped in offline mode (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE), which reads the hub's
    local cache only."""
    if any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
           for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
        socket.create_connection((host, port), timeout=HUB_PROBE_SECONDS).close()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise OproError(f"cannot reach the Hugging Face hub ({endpoint.netloc}: {reason}) to load {what}; point at "
                        f"local files with {local_hint}, or set HF_DATASETS_OFFLINE=1 to use a copy the hub client "
                        "cached before") from None


def _hub_records(dataset: str, split: str, bbh_task: str | None) -> list[dict[str, Any]]:
    name, config = HUB[dataset]
    hub_split = "test" if dataset in ("bbh", "multiarith") or split == "all" else split
    layout = {"gsm8k": "gsm_train.tsv/gsm_test.tsv", "bbh": "<task>.json", "multiarith": "MultiArith.json",
              "aqua": "AQuA.json"}[dataset]
    check_hub_reachable(f"{dataset} ({name})", f"--data PATH (a folder holding {layout}, or a .jsonl/.parquet file)")
    try:
        import datasets

        loaded = datasets.load_dataset(name, bbh_task if dataset == "bbh" else config, split=hub_split)
        return [dict(row) for row in loaded]
    except Exception as error:  # offline, unknown split, hub errors: all one message for the user
        raise OproError(
            f"cannot load {dataset} from the Hugging Face hub ({name}: {type(error).__name__}); point at local "
            f"files with --data PATH (a folder holding {layout}, or a .jsonl/.parquet file) "
            f"or --set problem.data=PATH") from error


def _local_file(dataset: str, split: str, path: Path, bbh_task: str | None) -> Path:
    """The file of a split: `path` itself, or the file of the reference layout in the folder `path`."""
    if path.is_dir():
        names = [n.format(split=split, task=bbh_task) for n in LOCAL_FILES[dataset]]
        nested = [f"{dataset}/{n}" for n in names]
        found = next((path / n for n in names + nested if (path / n).is_file()), None)
        if found is None:
            raise OproError(f"no {dataset} {split} data in {path} (looked for {', '.join(names)})")
        path = found
    elif not path.is_file():
        raise OproError(f"data file not found: {path}")
    return path


def read_records(path: Path) -> list[Any]:
    """Rows of a .jsonl, .json (a list, one object, or BBH's {"examples": [...]}), .parquet, .csv (with a header)
    or headerless .tsv file (question, answer[, rationale]). Each row is checked by `_question_answer`."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pandas as pd

            return pd.read_parquet(path).to_dict("records")
        if suffix == ".csv":  # a user's own data, with a header row (`prompt` problem)
            import pandas as pd

            return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
        if suffix == ".tsv":
            import pandas as pd

            frame = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)
            if frame.shape[1] < 2:
                raise OproError(f"data file {path}: line 1 has {frame.shape[1]} column; expected question<TAB>answer")
            return [{"question": row[0], "answer": row[1]} for row in frame.itertuples(index=False)]
        text = path.read_bytes().decode("utf-8")
        if suffix == ".jsonl":
            data = _json_lines(text, path)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:  # JSON lines (AQuA's .json)
                data = _json_lines(text, path)
    except (OSError, ValueError, ImportError) as error:
        reason = f"not UTF-8 text (byte {error.start})" if isinstance(error, UnicodeDecodeError) else str(error)
        raise OproError(f"unreadable data file {path}: {reason.splitlines()[0] if reason else type(error).__name__}") \
            from None
    if isinstance(data, dict):
        data = data["examples"] if "examples" in data else [data]  # BBH's layout, or a file of one record
    if not isinstance(data, list):
        raise OproError(f"data file {path}: expected a list of examples, got {type(data).__name__}")
    return data


def _json_lines(text: str, path: Path) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise OproError(f"data file {path}: line {number} is not JSON: {error}") from None
    return rows


def _question_answer(dataset: str, record: dict[str, Any]) -> tuple[str, str]:
    """(question, gold answer) of one record in any of the supported layouts; a one-line OproError for a record
    that is not an object, lacks the fields, or has an empty question or answer."""
    if not isinstance(record, dict):
        raise OproError(f"expected an object with a question and an answer, got {_short(record)}")

    def first(*keys: str) -> Any:
        for key in keys:
            if key in record and record[key] is not None:
                value = record[key]
                if isinstance(value, str | int | float) and not str(value).strip():
                    raise OproError(f"the field {key!r} is empty")
                return value
        raise OproError(f"a {dataset} example has none of the fields {', '.join(keys)}: {sorted(map(str, record))}")

    if dataset == "aqua":
        choices = first("options")
        if not isinstance(choices, list | tuple | np.ndarray) or len(choices) == 0 or not all(
                isinstance(o, str) for o in choices):
            raise OproError(f"'options' must be a non-empty list of strings like \"A)12\", got {_short(choices)}")
        options = "\n".join("(" + o.strip() for o in choices)
        question = f"{str(first('question')).strip()}\n{options}\nWhat's the answer in (A) (B) (C) (D) (E)?"
        return question, f"({str(first('correct', 'answer')).strip()})"
    question = str(first("question", "input", "sQuestion", "Question")).strip()
    answer = first("answer", "target", "lSolutions", "final_ans")
    if isinstance(answer, list | tuple | np.ndarray):
        if len(answer) == 0:
            raise OproError("the answer list is empty")
        answer = answer[0]
    if not isinstance(answer, str | int | float | np.integer | np.floating):  # a bool is an int: "True"
        raise OproError(f"the answer must be text or a number, got {_short(answer)}")
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    answer = str(answer).strip()
    if dataset == "gsm8k" and "####" in answer:  # the hub's rationale ends in "#### 18"
        answer = answer.split("####")[-1].strip()
    if dataset in ("gsm8k", "multiarith"):
        answer = answer.replace(",", "")
    if not answer or not question:
        raise OproError("empty " + ("answer" if not answer else "question"))
    return question, answer


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- MMLU ---------------------------------------------------------------------------------------------------

#: The 57 MMLU subjects by subcategory, and the subcategories of the four categories, as the reference code
#: groups them (optimize_instructions.py `subcategories` / `categories`, from hendrycks/test categories.py).
MMLU_SUBCATEGORIES = {
    "math": ("abstract_algebra", "college_mathematics", "elementary_mathematics", "high_school_mathematics",
             "high_school_statistics"),
    "health": ("anatomy", "clinical_knowledge", "college_medicine", "human_aging", "medical_genetics", "nutrition",
               "professional_medicine", "virology"),
    "physics": ("astronomy", "college_physics", "conceptual_physics", "high_school_physics"),
    "business": ("business_ethics", "management", "marketing"),
    "biology": ("college_biology", "high_school_biology"),
    "chemistry": ("college_chemistry", "high_school_chemistry"),
    "computer science": ("college_computer_science", "computer_security", "high_school_computer_science",
                         "machine_learning"),
    "economics": ("econometrics", "high_school_macroeconomics", "high_school_microeconomics"),
    "engineering": ("electrical_engineering",),
    "philosophy": ("formal_logic", "logical_fallacies", "moral_disputes", "moral_scenarios", "philosophy",
                   "world_religions"),
    "other": ("global_facts", "miscellaneous", "professional_accounting"),
    "history": ("high_school_european_history", "high_school_us_history", "high_school_world_history", "prehistory"),
    "geography": ("high_school_geography",),
    "politics": ("high_school_government_and_politics", "public_relations", "security_studies", "us_foreign_policy"),
    "psychology": ("high_school_psychology", "professional_psychology"),
    "culture": ("human_sexuality", "sociology"),
    "law": ("international_law", "jurisprudence", "professional_law"),
}
MMLU_CATEGORIES = {
    "STEM": ("physics", "chemistry", "biology", "computer science", "math", "engineering"),
    "humanities": ("history", "philosophy", "law"),
    "social sciences": ("politics", "culture", "economics", "geography", "psychology"),
    "other (business, health, misc.)": ("other", "business", "health"),
}
MMLU_SUBJECTS = tuple(sorted(s for subjects in MMLU_SUBCATEGORIES.values() for s in subjects))


def mmlu_subjects(task: str | None) -> list[str]:
    """The subjects of `task`: one of the four categories (the reference's `--task`), or one subject's name."""
    if task in MMLU_CATEGORIES:
        return sorted(s for sub in MMLU_CATEGORIES[task] for s in MMLU_SUBCATEGORIES[sub])
    if task in MMLU_SUBJECTS:
        return [task]
    raise OproError(f"unknown MMLU task {task!r} (problem.mmlu_task): one of the categories "
                    f"{', '.join(map(repr, MMLU_CATEGORIES))}, or one of the 57 subjects, e.g. abstract_algebra")


def load_mmlu(task: str | None, data: str | None = None) -> list[Example]:
    """Every question of `task`'s subjects (see `mmlu_subjects`), subject by subject in alphabetical order.

    Local data is the reference layout: one header-less CSV per subject, `<subject>_test.csv` (question, the
    four options, the answer letter), in `data`, `data/test` or `data/mmlu/test`; else the hub's `cais/mmlu`.
    A question reads as the reference's eval_utils._format_mmlu_example: the question, "(A) ..." to "(D) ...",
    then "What's the answer in (A) (B) (C) (D)?"; the gold answer is "(B)".
    """
    examples: list[Example] = []
    for subject in mmlu_subjects(task):
        rows = _mmlu_local(subject, Path(data).expanduser()) if data else _mmlu_hub(subject)
        for index, (question, options, letter) in enumerate(rows):
            text = question + "".join(f"\n({k}) {o}" for k, o in zip("ABCD", options, strict=True))
            text += "\nWhat's the answer in (A) (B) (C) (D)?"
            digest = hashlib.sha256(text.encode()).hexdigest()[:8]
            examples.append(Example(f"mmlu-{subject}/test/{index}/{digest}", len(examples), text, f"({letter})",
                                    "choice"))
    return examples


def _mmlu_local(subject: str, path: Path) -> list[tuple[str, list[str], str]]:
    name = f"{subject}_test.csv"
    found = next((f for f in (path / name, path / "test" / name, path / "mmlu" / "test" / name) if f.is_file()), None)
    if found is None:
        raise OproError(f"no MMLU data for {subject} in {path} (looked for {name}, test/{name}, mmlu/test/{name})")
    import pandas as pd

    try:
        frame = pd.read_csv(found, header=None, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise OproError(f"unreadable data file {found}: {str(error).splitlines()[0]}") from None
    if frame.shape[1] != 6:
        raise OproError(f"data file {found}: {frame.shape[1]} columns; expected question, A, B, C, D, answer")
    rows = []
    for number, row in enumerate(frame.itertuples(index=False), 1):
        letter = str(row[5]).strip().upper()
        if letter not in ("A", "B", "C", "D") or not str(row[0]).strip():
            raise OproError(f"data file {found}: row {number}: expected a question and an answer letter A-D")
        rows.append((str(row[0]), [str(o) for o in row[1:5]], letter))
    return rows


def _mmlu_hub(subject: str) -> list[tuple[str, list[str], str]]:
    check_hub_reachable(f"mmlu (cais/mmlu {subject})", "--data PATH (a folder holding test/<subject>_test.csv)")
    try:
        import datasets

        loaded = datasets.load_dataset("cais/mmlu", subject, split="test")
        return [(str(r["question"]), [str(c) for c in r["choices"]], "ABCD"[int(r["answer"])]) for r in loaded]
    except Exception as error:  # offline, hub errors: one message for the user
        raise OproError(
            f"cannot load mmlu from the Hugging Face hub (cais/mmlu {subject}: {type(error).__name__}); point at "
            "local files with --data PATH (a folder holding test/<subject>_test.csv, the reference layout) or "
            "--set problem.data=PATH") from error


# ---- a validation split (paper §5.4) ------------------------------------------------------------------------

def split_with_validation(n: int, train_ratio: float, validation_ratio: float,
                          seed: int) -> tuple[list[int], list[int], list[int]]:
    """(train, validation, rest) positions of range(n), each sorted: a seeded random `train_ratio` of them (at
    least one; paper §5.1), then the validation split, `int(validation_ratio * n)` positions, drawn next from
    the rest by the same generator (reference: optimize_instructions.py, train_index then eval_index, both
    from np.random.seed(0))."""
    if not 0.0 < train_ratio <= 1.0:
        raise OproError(f"train_ratio must be in (0, 1], got {train_ratio}")
    if not 0.0 <= validation_ratio < 1.0 or train_ratio + validation_ratio > 1.0:
        raise OproError(f"validation_ratio must be in [0, 1) with train_ratio + validation_ratio <= 1, got "
                        f"{validation_ratio} (train_ratio {train_ratio})")
    rng = np.random.default_rng(seed)
    train = sorted(int(i) for i in rng.choice(n, size=max(1, int(train_ratio * n)), replace=False))
    chosen = set(train)
    rest = [i for i in range(n) if i not in chosen]
    size = min(len(rest), int(validation_ratio * n))
    validation = sorted(int(rest[i]) for i in rng.choice(len(rest), size=size, replace=False)) if size else []
    taken = set(validation)
    return train, validation, [i for i in rest if i not in taken]
