"""LLM backends behind one small protocol, built from a spec string such as `llamacpp:smollm2`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.llm.base import LLM, Completion, Request
from opro.llm.pricing import Price

__all__ = ["LLM", "Completion", "Request", "build_llm", "price_of_llm"]

# The options each backend takes. An option of another backend is ignored (a llama.cpp thread count means
# nothing to a remote server); a name no backend knows is an error.
OPTIONS: dict[str, frozenset[str]] = {
    "llamacpp": frozenset({"threads", "n_ctx", "parallel", "cache_prompt", "poll", "sampling", "lora"}),
    "openai": frozenset({"base_url", "api_key", "concurrency", "timeout", "max_attempts", "use_n", "backoff_base",
                         "backoff_cap", "prices", "sampling"}),
    "hf": frozenset({"threads", "parallel", "sampling"}),
}
BACKENDS = tuple(OPTIONS)


def build_llm(spec: str, options: dict[str, Any] | None = None) -> LLM:
    """An LLM from `backend:model` and backend options; None values are ignored.

    llamacpp: threads, n_ctx, parallel, cache_prompt, poll, sampling, lora.
    openai: base_url, api_key, concurrency, timeout, max_attempts, use_n, backoff_base, backoff_cap, prices,
    sampling.
    hf: threads, parallel, sampling (a local transformers model directory; needs the `rl` extra).
    Any backend: cache (True for the default cache file, or a path) wraps it in a persistent CachedLLM.
    """
    backend, _, model = spec.partition(":")
    if backend not in OPTIONS:
        raise OproError(f"unknown LLM backend {backend!r} in {spec!r}; known: {', '.join(BACKENDS)}")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    cache = options.pop("cache", None)
    unknown = set(options) - set().union(*OPTIONS.values())
    if unknown:
        raise OproError(f"unknown option(s) for {spec}: {', '.join(sorted(unknown))}")
    kwargs = {k: v for k, v in options.items() if k in OPTIONS[backend]}
    llm = _build(backend, model, kwargs, spec)
    if cache:
        from opro.llm.cache import CachedLLM

        return CachedLLM(llm, None if cache is True else Path(cache))
    return llm


def _build(backend: str, model: str, kwargs: dict[str, Any], spec: str) -> LLM:
    try:
        if backend == "llamacpp":
            from opro.llm.llamacpp import LlamaCppLLM

            return LlamaCppLLM(model, **kwargs)
        if backend == "hf":
            from opro.llm.hf import HFLLM

            return HFLLM(model, **kwargs)
        from opro.llm.openai_backend import OpenAILLM

        return OpenAILLM(model, **kwargs)
    except TypeError as error:
        raise OproError(f"bad option for {spec}: {error}") from error


def price_of_llm(llm: LLM) -> Price | None:
    """USD per 1M tokens of `llm` (through a cache wrapper): the backend's own price when it has one
    (an OpenAI backend on loopback costs 0), else the price table's; None when unknown."""
    from opro.llm.pricing import price_of

    inner = getattr(llm, "inner", llm)
    if hasattr(inner, "price"):
        return inner.price
    return price_of(llm.spec)
