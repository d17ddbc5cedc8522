"""Scoring instructions: the scorer prompt, the persistent score cache, and per-example results.

An instruction's score is its accuracy on a set of examples, each answered once by the scorer LLM with
greedy decoding (temperature 0, paper §5.1). Per-example outcomes are cached in SQLite under (scorer model
identity, max_tokens, instruction, position, QA format, example uid, and whether the scorer is prompted
again for the final answer), so an identical instruction is never scored twice, across steps, runs and
processes. The cache stores the raw answer and its finish reason ("length": cut at max_tokens); parsing and
correctness are recomputed on read, so a better answer extractor applies to cached answers too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from opro.cache_file import CacheFile
from opro.errors import OproError
from opro.llm import LLM, Completion, Request
from opro.llm.cache import OPERATIONAL_KEYS, default_cache_path
from opro.prompting.data import Example
from opro.prompting.extract import extract_answer, is_correct
from opro.redact import redact_data
from opro.results import prepare_output

POSITIONS = ("before_Q", "Q_begin", "Q_end", "A_begin")
#: Prompting again (reference: eval_utils.evaluate_single_instruction with
#: extract_final_answer_by_prompting_again): the first prompt, the answer up to a "Q:" it started, then this,
#: decoded for at most SECOND_ROUND_TOKENS (reference: max_decode_steps=50).
FINAL_ANSWER_PROMPT = "So the final answer is"
SECOND_ROUND_TOKENS = 50
#: `truncation_warning` speaks up when more than this share of the answers was cut at max_tokens.
TRUNCATION_WARN_AT = 0.05


def scorer_prompt(question: str, instruction: str, position: str, qa_format: bool = True) -> str:
    """The text the scorer answers (reference: eval_utils.gen_prompt), for each instruction position:

    with QA format            without it
    before_Q: "{ins}\\nQ: {q}\\n\\nA:"        "{ins}\\n\\n{q}"
    Q_begin:  "Q: {ins}\\n{q}\\n\\nA:"        "{ins}\\n{q}"
    Q_end:    "Q: {q}\\n{ins}\\n\\nA:"        "{q}\\n{ins}"
    A_begin:  "Q: {q}\\n\\nA: {ins}"          "{q}\\n\\n{ins}"

    An empty instruction leaves no blank line behind. Without QA format the reference code supports only
    Q_begin and Q_end (its A_begin default fails an assertion there); before_Q and A_begin are defined here
    as above, the instruction then standing on its own before the question or after it.
    """
    if position not in POSITIONS:
        raise OproError(f"unknown instruction position {position!r}; known: {', '.join(POSITIONS)}")
    ins = instruction
    if qa_format:
        if position == "before_Q":
            return (f"{ins}\n" if ins else "") + f"Q: {question}\n\nA:"
        if position == "Q_begin":
            return f"Q: {ins}\n{question}\n\nA:" if ins else f"Q: {question}\n\nA:"
        if position == "Q_end":
            return f"Q: {question}\n{ins}\n\nA:" if ins else f"Q: {question}\n\nA:"
        return f"Q: {question}\n\nA: {ins}" if ins else f"Q: {question}\n\nA:"
    if position == "before_Q":
        return f"{ins}\n\n{question}" if ins else question
    if position == "Q_begin":
        return f"{ins}\n{question}" if ins else question
    if position == "Q_end":
        return f"{question}\n{ins}" if ins else question
    return f"{question}\n\n{ins}" if ins else question


@dataclass(frozen=True)
class ExampleResult:
    """How the scorer did on one example under one instruction (one row of an instruction's CSV)."""

    index: int
    """The example's position in its split."""
    uid: str
    """The example's stable id (the cache key part)."""
    prompt: str
    """The scorer prompt."""
    raw_answer: str
    """The scorer's raw output."""
    parsed: str
    """The extracted final answer."""
    gold: str
    correct: bool
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    """Read from the score cache instead of asking the scorer."""
    finish_reason: str = "stop"
    """Why the scorer's answer ended: "stop", or "length" when it was cut at max_tokens (an answer cut
    mid-derivation usually parses as a wrong number)."""
    second_answer: str = ""
    """With prompting again: the scorer's answer to "<prompt> <answer> So the final answer is" (parsed in
    place of the first answer); else empty. Tokens count both rounds."""
    credit: float | None = None
    """A user metric's value in [0, 1] (the `prompt` problem's `metric`), which `accuracy` counts in place of
    `correct` (then: credit >= 0.5); None: `correct` counts. Not written to the instruction's CSV."""


RESULT_COLUMNS = [f.name for f in fields(ExampleResult)]


def truncated_rate(results: list[ExampleResult]) -> float:
    """Share (0-1) of the answers cut at max_tokens; 0 for no results."""
    return sum(r.finish_reason == "length" for r in results) / len(results) if results else 0.0


def truncation_warning(rate: float | None, max_tokens: int | None = None) -> str | None:
    """One line for stderr when more than TRUNCATION_WARN_AT of the scorer's answers were cut, else None."""
    if rate is None or rate <= TRUNCATION_WARN_AT:
        return None
    limit = "problem.scorer_max_tokens" + ("" if max_tokens is None else f"={max_tokens}")
    return (f"{rate:.0%} of the scorer's answers stopped at {limit} (finish_reason \"length\"), so most of them "
            "read as wrong; raise it with --set problem.scorer_max_tokens=N")


def default_score_cache_path() -> Path:
    """`$OPRO_SCORE_CACHE`, else `prompt_scores.sqlite` beside the LLM-call cache (`$OPRO_LLM_CACHE`'s folder,
    else the user cache directory)."""
    if os.environ.get("OPRO_SCORE_CACHE"):
        return Path(os.environ["OPRO_SCORE_CACHE"]).expanduser()
    return default_cache_path().with_name("prompt_scores.sqlite")


SCHEMA = "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class ScoreCache:
    """Raw scorer answers in one SQLite file, shared by threads and processes (WAL, busy timeout,
    INSERT OR IGNORE: concurrent writers of the same key agree, since decoding is greedy)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = prepare_output(Path(path) if path else default_score_cache_path(), "score cache", folder=False)
        self._file = CacheFile(self.path, "score cache", SCHEMA, " (free space, or --set problem.score_cache=false)")

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        def lookup(db: sqlite3.Connection) -> dict[str, dict]:
            found = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in db.execute(f"SELECT key, value FROM answers WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
            return found

        return self._file.run(lookup)

    def put_many(self, items: dict[str, dict]) -> None:
        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.executemany("INSERT OR IGNORE INTO answers (key, value) VALUES (?, ?)",
                               [(k, json.dumps(redact_data(v))) for k, v in items.items()])

        self._file.run(insert)

    def close(self) -> None:
        self._file.close()


def scorer_identity(llm: LLM) -> dict[str, object]:
    """What identifies a scorer's answers: its spec and describe() without operational settings and cache
    paths (a different GGUF hash, server URL or sampling setting is a different scorer)."""
    described = {k: v for k, v in llm.describe().items() if k not in OPERATIONAL_KEYS and k != "cache"}
    return {"spec": llm.spec, **described}


class InstructionScorer:
    """Scores instructions with a scorer LLM, through the score cache.

    `calls` counts the requests sent to the scorer LLM (cache misses; with `prompt_again`, two per
    example); `lookups` every (instruction, example) pair asked for. Token counts cover the generated answers
    only. `prompt_again` is the reference's extract_final_answer_by_prompting_again: a second request per
    example asks for the final answer (FINAL_ANSWER_PROMPT), and that answer is parsed.
    """

    def __init__(self, llm: LLM, position: str = "Q_begin", qa_format: bool = True, max_tokens: int = 1024,
                 cache: ScoreCache | None = None, batch_size: int = 8, prompt_again: bool = False) -> None:
        scorer_prompt("", "", position, qa_format)  # validates the position
        self.llm, self.position, self.qa_format, self.max_tokens = llm, position, qa_format, max_tokens
        self.cache, self.batch_size, self.prompt_again = cache, batch_size, prompt_again
        self.calls = self.lookups = self.prompt_tokens = self.completion_tokens = 0
        self.seconds = 0.0
        self._identity: str | None = None
        self.judge: Callable[[str, str, Example], float] | None = None
        """(raw answer, parsed answer, example) -> credit in [0, 1], in place of `is_correct` (a `prompt`
        problem's answer check or metric); it may raise for an answer it cannot judge."""

    def key(self, instruction: str, example: Example) -> str:
        if self._identity is None:
            self._identity = json.dumps(scorer_identity(self.llm), sort_keys=True, default=str)
        payload = [self._identity, self.max_tokens, instruction, self.position, self.qa_format, example.uid]
        if self.prompt_again:  # appended only when on, so the keys of earlier entries stay as they were
            payload.append("prompt_again")
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def evaluate(self, instruction: str, examples: list[Example], cached_only: bool = False) -> list[ExampleResult]:
        """One result per example, in order; with `cached_only`, only the examples already in the cache."""
        self.lookups += len(examples)
        keys = [self.key(instruction, e) for e in examples]
        stored = self.cache.get_many(keys) if self.cache else {}
        todo = [i for i, k in enumerate(keys) if k not in stored]
        for start in range(0, 0 if cached_only else len(todo), self.batch_size):
            stored.update(self._generate(instruction, examples, keys, todo[start:start + self.batch_size]))
        results = []
        for example, key in zip(examples, keys, strict=True):
            if key not in stored:
                continue
            answer = stored[key]
            second = answer.get("second_text", "")
            # reference (_extract_second_round_answer_for_parsing): the second answer's first line, before "Q:"
            to_parse = second.strip(":").strip().split("\n")[0].split("Q:")[0] if self.prompt_again else answer["text"]
            parsed = extract_answer(to_parse, example.kind)
            credit = None if self.judge is None else self.judge(to_parse, parsed, example)
            right = is_correct(parsed, example.answer, example.kind, example.question) if credit is None \
                else credit >= 0.5
            results.append(ExampleResult(
                example.index, example.uid,
                scorer_prompt(example.question, instruction, self.position, self.qa_format), answer["text"], parsed,
                example.answer, right, answer["prompt_tokens"], answer["completion_tokens"],
                not answer.get("new", False), self._finish_reason(answer), second, credit))
        return results

    def _finish_reason(self, answer: dict) -> str:
        """The stored finish reason; an entry cached before finish reasons were stored counts as cut when it
        used every one of max_tokens (part of its key)."""
        if "finish_reason" in answer:
            return answer["finish_reason"]
        return "length" if answer["completion_tokens"] >= self.max_tokens else "stop"

    def _ask(self, prompts: list[str], max_tokens: int) -> list[Completion]:
        requests = [Request(({"role": "user", "content": p},), 0.0, max_tokens, 0) for p in prompts]
        started = time.perf_counter()
        completions = self.llm.generate(requests)
        self.seconds += time.perf_counter() - started
        self.calls += len(requests)
        for completion in completions:
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens
        return completions

    def _generate(self, instruction: str, examples: list[Example], keys: list[str], todo: list[int]) -> dict:
        """Ask the scorer for the examples at `todo` (and again for the final answers, with `prompt_again`);
        store the answers in the cache at once (a long evaluation that is stopped keeps what it had)."""
        prompts = [scorer_prompt(examples[i].question, instruction, self.position, self.qa_format) for i in todo]
        completions = self._ask(prompts, self.max_tokens)
        fresh = {}
        for i, completion in zip(todo, completions, strict=True):
            fresh[keys[i]] = {"text": completion.text, "prompt_tokens": completion.prompt_tokens,
                              "completion_tokens": completion.completion_tokens,
                              "finish_reason": completion.finish_reason, "new": True}
            if completion.finish_reason == "error":
                fresh[keys[i]]["error"] = True
        if self.prompt_again:  # reference: eval_utils.evaluate_single_instruction, second round
            again = [f"{prompt} {first.text.split('Q:')[0].strip()} {FINAL_ANSWER_PROMPT}"
                     for prompt, first in zip(prompts, completions, strict=True)]
            for i, completion in zip(todo, self._ask(again, SECOND_ROUND_TOKENS), strict=True):
                entry = fresh[keys[i]]
                entry["second_text"] = completion.text
                entry["prompt_tokens"] += completion.prompt_tokens
                entry["completion_tokens"] += completion.completion_tokens
                if completion.finish_reason == "error":
                    entry["error"] = True
        if self.cache:
            self.cache.put_many({k: {**v, "new": False} for k, v in fresh.items() if not v.get("error")})
        return fresh

    def usage(self) -> dict[str, float]:
        """Scorer accounting: requests sent, pairs looked up, tokens, seconds spent generating."""
        return {"scorer_calls": self.calls, "scorer_lookups": self.lookups, "scorer_prompt_tokens": self.prompt_tokens,
                "scorer_completion_tokens": self.completion_tokens, "scorer_seconds": round(self.seconds, 3)}


def accuracy(results: list[ExampleResult]) -> float:
    """Percent correct (0-100); 0 for no results."""
    return 100.0 * sum(r.correct if r.credit is None else r.credit for r in results) / len(results) if results \
        else 0.0


def instruction_id(instruction: str) -> str:
    """First 16 hex digits of the instruction's sha256: its file name in `instructions/`."""
    return hashlib.sha256(instruction.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def write_results_csv(path: Path, results: list[ExampleResult]) -> None:
    """An instruction's per-example results (columns: RESULT_COLUMNS), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        for r in results:
            writer.writerow(redact_data([getattr(r, c) for c in RESULT_COLUMNS]))
    os.replace(tmp, path)
