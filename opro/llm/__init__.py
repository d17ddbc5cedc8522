"""LLM backends behind one small protocol, built from a spec string such as `llamacpp:smollm2`."""

from __future__ import annotations

from typing import Any

from opro.errors import OproError
from opro.llm.base import LLM, Completion, Request

__all__ = ["LLM", "Completion", "Request", "build_llm"]

BACKENDS = ("llamacpp",)


def build_llm(spec: str, options: dict[str, Any] | None = None) -> LLM:
    """An LLM from `backend:model` and backend options (threads, n_ctx, parallel, ...)."""
    backend, _, model = spec.partition(":")
    options = dict(options or {})
    if backend == "llamacpp":
        from opro.llm.llamacpp import LlamaCppLLM

        try:
            return LlamaCppLLM(model, **options)
        except TypeError as error:
            raise OproError(f"bad option for {spec}: {error}") from error
    raise OproError(f"unknown LLM backend {backend!r} in {spec!r}; known: {', '.join(BACKENDS)}")
