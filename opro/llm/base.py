"""The `LLM` seam: a batch of chat requests in, one completion per request out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from opro.text import valid_text


@dataclass(frozen=True)
class Request:
    """One sampling request. `seed` makes the sample reproducible on backends that honour it."""

    messages: tuple[dict[str, str], ...]
    temperature: float = 1.0
    max_tokens: int = 256
    seed: int | None = None


@dataclass(frozen=True)
class Completion:
    """One sampled answer with its token usage. `finish_reason` is "stop", "length" or "error". `text` is valid
    Unicode: a lone surrogate in a reply (or in a cached one) becomes U+FFFD here, where every reply enters."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    seconds: float = 0.0
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", valid_text(self.text))


class LLM(Protocol):
    """A text generator. `spec` names it (e.g. "llamacpp:smollm2"); `generate` keeps request order."""

    spec: str

    def generate(self, requests: list[Request]) -> list[Completion]: ...

    def describe(self) -> dict[str, object]:
        """What identifies the model (path, hash, server), for config.json. Never a secret."""
        ...

    def close(self) -> None: ...
