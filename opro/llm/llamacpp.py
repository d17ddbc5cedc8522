"""The embedded backend: llama.cpp in-process through the prebuilt `xllamacpp` wheel.

`llamacpp:smollm2` (the default model) or `llamacpp:/any/path/model.gguf`. The chat template stored in
the GGUF is applied by llama.cpp's server code. xllamacpp also serves the same model over an
OpenAI-compatible HTTP API on loopback (`listening_address`), which the tests use.

Reproducibility: with one parallel slot and prompt caching off, a (request, seed) pair gives the same
text on every run. Parallel slots batch sequences together and prompt caching changes how the prompt
is evaluated, and both change float rounding enough to change samples; they are opt-in speedups.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opro.errors import OproError
from opro.llm.base import Completion, Request
from opro.llm.models import resolve_gguf, sha256_file


class LlamaCppLLM:
    """An embedded llama.cpp server. `threads` defaults to the machine's cores; `n_ctx` is the context
    shared by all slots; `parallel` is the number of slots decoding at once."""

    def __init__(
        self,
        model: str = "",
        threads: int | None = None,
        n_ctx: int = 4096,
        parallel: int = 1,
        cache_prompt: bool = False,
        sampling: dict[str, Any] | None = None,
        poll: int = 0,
    ) -> None:
        import xllamacpp

        self.path = resolve_gguf(model)
        self.spec = f"llamacpp:{model or 'smollm2'}"
        self.threads = threads or os.cpu_count() or 1
        self.n_ctx, self.parallel, self.cache_prompt = n_ctx, parallel, cache_prompt
        self.sampling = dict(sampling or {})
        self.poll = poll
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = n_ctx * parallel  # each slot gets n_ctx tokens
        params.n_parallel = parallel
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        # llama.cpp's worker threads busy-wait by default (poll 50). With any other process on the cores that
        # collapses throughput (2.7 vs 58 tokens/s measured on 2 cores); poll 0 sleeps instead.
        params.cpuparams.poll = params.cpuparams_batch.poll = poll
        params.warmup = False
        params.verbosity = -1  # llama.cpp's own logging would flood the terminal
        params.endpoint_metrics = True  # a metrics request is answered by the task loop: see _wait_for_loop
        try:
            self.server = xllamacpp.Server(params)
        except Exception as error:  # the binding raises plain exceptions for unloadable files
            raise OproError(f"llama.cpp could not load {self.path}: {error}") from error
        self._wait_for_loop()
        self._sha256: str | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible HTTP endpoint the embedded server listens on (loopback only)."""
        return self.server.listening_address + "/v1"

    def generate(self, requests: list[Request]) -> list[Completion]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(requests))) as pool:
            return list(pool.map(self._one, requests))

    def _one(self, request: Request) -> Completion:
        body: dict[str, Any] = {
            "messages": list(request.messages),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "cache_prompt": self.cache_prompt,
            **self.sampling,
        }
        if request.seed is not None:
            body["seed"] = request.seed % 2**32  # llama.cpp seeds are 32-bit
        started = time.perf_counter()
        result = self.server.handle_chat_completions(body)
        if "error" in result:
            message = result["error"].get("message", result["error"])
            raise OproError(f"{self.spec}: {message}")
        choice, usage = result["choices"][0], result.get("usage", {})
        return Completion(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason") or "stop",
            seconds=time.perf_counter() - started,
        )

    def describe(self) -> dict[str, object]:
        with self._lock:
            if self._sha256 is None:
                self._sha256 = sha256_file(self.path)
        return {
            "backend": "llamacpp",
            "model_path": str(self.path),
            "model_sha256": self._sha256,
            "threads": self.threads,
            "n_ctx": self.n_ctx,
            "parallel": self.parallel,
            "cache_prompt": self.cache_prompt,
            "poll": self.poll,
            "sampling": self.sampling,
        }

    def _wait_for_loop(self) -> None:
        """Return once the server's task loop runs. `Server()` returns when the model is loaded but before the
        loop starts, and destroying it in that window loses the stop signal: the destructor then waits for the
        loop forever (a run that fails right after loading the model would hang at exit). A metrics request
        goes through the task queue, so its answer means the loop is running."""
        self.server.handle_metrics()

    def close(self) -> None:
        self.server = None
