"""A scripted LLM for tests of the loop's own bookkeeping: it replays fixed texts, it does not generate.

Real generation is tested with the embedded llama.cpp model (tests/test_run_llamacpp.py).
"""

from __future__ import annotations

from opro.llm import Completion, Request


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
