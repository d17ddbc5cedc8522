"""Test doubles for the `LLM` protocol, in one place, each named for what it stands in for. They are for tests
of the framework's own bookkeeping (the loop, resume, scoring, methods); real generation is tested with the
embedded llama.cpp model, a real local server and real TRL on a tiny model.

- `ScriptedLLM`: an optimizer that replays fixed texts.
- `SeededLLM`: an optimizer whose answer depends only on the request's seed (a resumed run gets the same).
- `ReflectingLLM`: GEPA's reflection LM, seed-driven likewise.
- `LevelScorerLLM`: a multiple-choice scorer whose accuracy rises with the instruction's level ("!" count).
- `RuleScorerLLM`: a scorer that is right exactly when the instruction contains "GOOD".
- `EchoLLM`: answers at once with the seed and the prompt (cache tests that need no model).
- `CountingLLM`: a real backend behind a meter.
"""

from __future__ import annotations

import hashlib

from opro.llm import Completion, Request

#: A method run in seconds: MMLU's abstract_algebra, 6 training questions, 2 steps of a population of 4, an
#: optimizer and a scorer that tests replace with doubles (`scorer.spec` is a placeholder).
TINY_METHOD_RUN = {
    "problem.mmlu_task": "abstract_algebra", "problem.train_limit": 6, "problem.validation_ratio": 0.0,
    "problem.eval_interval": 0, "problem.score_cache": False, "loop.steps": 2, "loop.population": 4,
    "loop.resample_rounds": 0, "loop.stop_at_optimum": False, "optimizer.cache": False, "scorer.spec": "scorer",
    "scorer.cache": False, "problem.initial_instructions": ["Solve it!", "Answer."]}


class ScriptedLLM:
    """Answers request k (counted across calls) with `texts[k % len(texts)]`, and records the requests.
    With `cut`, a text longer than the request's max_tokens (one token a word) is cut there, with
    finish_reason "length", as a backend cuts an answer at its completion limit."""

    spec = "scripted"

    def __init__(self, texts: list[str], cut: bool = False) -> None:
        self.texts, self.cut = texts, cut
        self.requests: list[Request] = []

    def generate(self, requests: list[Request]) -> list[Completion]:
        out = []
        for request in requests:
            text = self.texts[len(self.requests) % len(self.texts)]
            self.requests.append(request)
            words, finish = text.split(" "), "stop"
            if self.cut and len(words) > request.max_tokens:
                text, finish = " ".join(words[:request.max_tokens]), "length"
            out.append(Completion(text=text, prompt_tokens=10, completion_tokens=len(text.split()),
                                  finish_reason=finish))
        return out

    def describe(self) -> dict[str, object]:
        return {"backend": "scripted"}

    def close(self) -> None:
        pass


class SeededLLM:
    """An optimizer whose answer depends only on the request's seed (so a resumed run gets the same ones):
    `<prompt>Think` + 0-4 "!" + ` v<seed>.</prompt>`, or, for seeds divisible by `invalid_every`, no tag."""

    spec = "scripted:seeded"

    def __init__(self, invalid_every: int = 0, tagged: bool = True) -> None:
        self.invalid_every, self.tagged, self.requests = invalid_every, tagged, []

    def generate(self, requests: list[Request]) -> list[Completion]:
        self.requests += requests
        out = []
        for r in requests:
            text = f"Think{'!' * (r.seed % 5)} v{r.seed}."
            if self.tagged:
                text = f"1. Crossover Prompt: x\n2. <prompt>{text}</prompt>"
            if self.invalid_every and r.seed % self.invalid_every == 0:
                text = "I cannot help with that."
            out.append(Completion(text, 10, 5))
        return out

    def describe(self) -> dict[str, object]:
        return {"backend": "scripted"}

    def close(self) -> None:
        pass


class ReflectingLLM:
    """A reflection LM whose answer depends only on the request's seed: a ``` block holding `Think` + 0-4 "!"
    + ` v<seed>.`, or, for seeds divisible by `empty_every`, an empty block."""

    spec = "scripted:reflect"

    def __init__(self, empty_every: int = 0) -> None:
        self.empty_every, self.requests = empty_every, []

    def generate(self, requests: list[Request]) -> list[Completion]:
        self.requests += requests
        out = []
        for r in requests:
            empty = self.empty_every and r.seed % self.empty_every == 0
            body = "" if empty else f"Think{'!' * (r.seed % 5)} v{r.seed}."
            out.append(Completion(f"A better one:\n```\n{body}\n```\nThat is all.", 10, 5))
        return out

    def describe(self) -> dict[str, object]:
        return {"backend": "scripted"}

    def close(self) -> None:
        pass


class LevelScorerLLM:
    """Deterministic scorer for multiple-choice questions: right ("(X)", the gold letter) exactly when the
    instruction's level, its count of "!", exceeds the question's difficulty (its sha256 mod 4), else a wrong
    letter. So accuracy rises with the level, and differs between splits."""

    spec = "scripted:level"

    def __init__(self, examples) -> None:
        self.examples, self.requests = list(examples), 0

    def generate(self, requests: list[Request]) -> list[Completion]:
        self.requests += len(requests)
        out = []
        for request in requests:
            prompt = request.messages[0]["content"]
            example = max((e for e in self.examples if e.question in prompt), key=lambda e: len(e.question))
            level = prompt.split(example.question)[0].count("!")
            difficulty = int(hashlib.sha256(example.question.encode()).hexdigest(), 16) % 4
            gold = example.answer.strip("()")
            letter = gold if level > difficulty else "ABCD"[("ABCD".index(gold) + 1) % 4]
            out.append(Completion(f"The answer is ({letter}).", 20, 5))
        return out

    def describe(self) -> dict[str, object]:
        return {"backend": "scripted"}

    def close(self) -> None:
        pass


class RuleScorerLLM:
    """Scripted scorer: the gold answer when the prompt's instruction contains "GOOD", else "0"."""

    spec = "scripted:rule"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.requests = answers, 0

    def generate(self, requests: list[Request]) -> list[Completion]:
        self.requests += len(requests)
        out = []
        for request in requests:
            prompt = request.messages[0]["content"]
            gold = next(a for q, a in self.answers.items() if q in prompt)
            out.append(Completion(f"The answer is {gold if 'GOOD' in prompt else 0}.", 20, 5))
        return out

    def describe(self) -> dict[str, object]:
        return {"backend": "scripted"}

    def close(self) -> None:
        pass


class EchoLLM:
    """Answers instantly with the seed and the prompt (for cache tests that need no model)."""

    spec = "echo"

    def generate(self, requests: list[Request]) -> list[Completion]:
        return [Completion(text=f"{r.seed}:{r.messages[-1]['content']}", completion_tokens=1) for r in requests]

    def describe(self) -> dict[str, object]:
        return {"backend": "echo"}

    def close(self) -> None:
        pass


class CountingLLM:
    """A real backend (`inner`) behind a meter: counts its generate calls and the requests that reach it."""

    def __init__(self, inner) -> None:
        self.inner, self.spec = inner, inner.spec
        self.calls = self.requests = 0

    def generate(self, requests: list[Request]) -> list[Completion]:
        self.calls += 1
        self.requests += len(requests)
        return self.inner.generate(requests)

    def describe(self) -> dict[str, object]:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()


def rule_scored_problem(data: str, cache, **settings):
    """A GSM8K prompt problem on 20 training questions of `data`, scored by a RuleScorerLLM: (problem, scorer)."""
    from opro.problems.prompt import PromptOptimization

    problem = PromptOptimization(data=str(data), train_limit=20, score_cache=str(cache), **settings)
    llm = RuleScorerLLM({e.question: e.answer for e in problem.train})
    problem.use_scorer(llm)
    return problem, llm
