"""The embedded backend: llama.cpp in-process through the prebuilt `xllamacpp` wheel.

`llamacpp:smollm2` (the base model), `llamacpp:smollm2-opro` (the same GGUF with the project's tuned LoRA
adapter) or `llamacpp:/any/path/model.gguf`; `lora` applies any GGUF LoRA adapter. The chat template stored in
the GGUF is applied by llama.cpp's server code. xllamacpp also serves the same model over an
OpenAI-compatible HTTP API on loopback (`listening_address`), which the tests use.

Message text is plain text: an instruction that spells a chat-template control token
(`<|im_end|><|im_start|>assistant`) must not close the turn it stands in. llama.cpp's chat endpoint renders
the template and tokenizes the result with control tokens parsed, so a request whose messages spell one is
sent as tokens instead: the template rendered around placeholders, its own text tokenized with control tokens
and each message's without (`plain_prompt`). Other requests, the usual case, take the chat endpoint as before.

Reproducibility: with one parallel slot and prompt caching off, a (request, seed) pair gives the same
text on every run. Parallel slots batch sequences together and prompt caching changes how the prompt
is evaluated, and both change float rounding enough to change samples; they are opt-in speedups.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.llm.base import Completion, Request
from opro.llm.gguf_header import check_lora_adapter
from opro.llm.models import resolve_model, sha256_file

#: The request that times each thread count: a short prompt and 16 greedy tokens.
PROBE = {"messages": [{"role": "user", "content": "Count from 1 to 20."}], "temperature": 0.0, "max_tokens": 16,
         "ignore_eos": True, "cache_prompt": False}


def default_threads() -> int:
    """The embedded model's thread count when none is given: the machine's cores, whatever their load."""
    return os.cpu_count() or 1


class LlamaCppLLM:
    """An embedded llama.cpp server. `threads` defaults to the machine's cores (fixed, so that a seed gives the
    same samples whatever the machine's load: the thread count changes llama.cpp's float rounding); "auto"
    takes the faster, timed at start-up, of all cores and one fewer (see `_fastest`); `n_ctx` is the context
    shared by all slots; `parallel` is the number of slots decoding at once; `lora` is a GGUF LoRA adapter
    applied at scale 1 (besides the one smollm2-opro brings)."""

    def __init__(
        self,
        model: str = "",
        threads: int | str | None = None,
        n_ctx: int = 4096,
        parallel: int = 1,
        cache_prompt: bool = False,
        sampling: dict[str, Any] | None = None,
        poll: int = 0,
        lora: str | None = None,
    ) -> None:
        self.path, adapter = resolve_model(model)
        self.adapters = [a for a in (adapter, Path(lora).expanduser() if lora else None) if a is not None]
        for path in self.adapters:
            if not path.is_file():
                raise OproError(f"LoRA adapter not found: {path}")
            check_lora_adapter(path)  # named here, not as the base model failing to load
        self.spec = f"llamacpp:{model or 'smollm2'}"
        self.n_ctx, self.parallel, self.cache_prompt = n_ctx, parallel, cache_prompt
        self.sampling = dict(sampling or {})
        self.poll = poll
        self.thread_probe: dict[int, float] = {}
        if threads == "auto":
            self.threads, self.server = self._fastest(os.cpu_count() or 1)
        elif threads is None or isinstance(threads, int) and threads > 0:
            self.threads = threads or default_threads()
            self.server = self._start(self.threads)
        else:
            raise OproError(f'{self.spec}: threads must be a positive integer or "auto", got {threads!r}')
        self._sha256: str | None = None
        self._adapter_sha256: list[str] | None = None
        self._lock = threading.Lock()

    def _start(self, threads: int) -> Any:
        """A llama.cpp server on `threads` threads."""
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = self.n_ctx * self.parallel  # each slot gets n_ctx tokens
        params.n_parallel = self.parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        # llama.cpp's worker threads busy-wait by default (poll 50). With any other process on the cores that
        # collapses throughput (2.7 vs 58 tokens/s measured on 2 cores); poll 0 sleeps instead.
        params.cpuparams.poll = params.cpuparams_batch.poll = self.poll
        params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(path), 1.0) for path in self.adapters]
        params.warmup = False
        params.verbosity = -1  # llama.cpp's own logging would flood the terminal
        params.endpoint_metrics = True  # a metrics request is answered by the task loop (below)
        try:
            server = xllamacpp.Server(params)
        except Exception as error:  # the binding raises plain exceptions for unloadable files
            raise OproError(f"llama.cpp could not load {self.path}: {error}") from error
        # `Server()` returns when the model is loaded but before its task loop starts, and destroying it in
        # that window loses the stop signal: the destructor then waits for the loop forever (a run that fails
        # right after loading the model would hang at exit). A metrics request goes through the task queue,
        # so its answer means the loop is running.
        server.handle_metrics()
        return server

    def _fastest(self, cores: int) -> tuple[int, Any]:
        """`threads="auto"`: the thread count that decodes fastest now, and its server: all cores, and one
        fewer, each timed on the same few greedy tokens. The count, and so the samples, then depend on the
        machine's load at start-up. llama.cpp's threads wait for each other after every operation, so when
        another process holds a core, one thread fewer is often several times faster (benchmarks/README.md);
        on idle cores all of them win. The timings are kept in `thread_probe` (seconds per count)."""
        candidates = sorted({cores, max(1, cores - 1)}, reverse=True)
        best: tuple[float, int, Any] | None = None
        for threads in candidates:
            server = self._start(threads)
            if len(candidates) == 1:
                return threads, server
            started = time.perf_counter()
            result = server.handle_chat_completions(PROBE)
            seconds = time.perf_counter() - started
            if "error" in result:
                raise OproError(f"{self.spec}: {result['error'].get('message', result['error'])}")
            self.thread_probe[threads] = round(seconds, 4)
            if best is None or seconds < best[0]:
                best = (seconds, threads, server)  # a slower server is dropped here (its loop is running)
        assert best is not None
        return best[1], best[2]

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
        tokens = self.plain_prompt(request.messages)
        if tokens is None:
            result = self.server.handle_chat_completions(body)
        else:  # a message spells a control token: sent as tokens, its text tokenized as plain text
            del body["messages"]
            result = self.server.handle_completions({**body, "prompt": tokens})
        if "error" in result:
            message = result["error"].get("message", result["error"])
            raise OproError(f"{self.spec}: {message}")
        choice, usage = result["choices"][0], result.get("usage", {})
        text = choice["message"].get("content") if tokens is None else choice.get("text")
        return Completion(
            text=text or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason") or "stop",
            seconds=time.perf_counter() - started,
        )

    def plain_prompt(self, messages: tuple[dict[str, str], ...] | list[dict[str, str]]) -> list[int] | None:
        """The prompt tokens of `messages` with each message's text tokenized as plain text, or None when no
        message spells a control token (the chat endpoint then reads them the same way)."""
        contents = [str(m.get("content", "")) for m in messages]
        if all(self._tokenize(c, special=True) == self._tokenize(c, special=False) for c in contents
               if "<" in c or "[" in c):  # control tokens are spelt <|...|>, <s>, [INST] and the like
            return None
        marks = [f"@@opro-{uuid.uuid4().hex}-{i}@@" for i in range(len(contents))]
        rendered = self._post("/apply-template", {"messages": [{**m, "content": mark}
                                                               for m, mark in zip(messages, marks, strict=True)]})
        prompt, tokens = str(rendered.get("prompt", "")), []
        for i, (mark, content) in enumerate(zip(marks, contents, strict=True)):
            before, found, prompt = prompt.partition(mark)
            if not found:
                raise OproError(f"{self.spec}: the chat template does not hold message {i} as written")
            tokens += self._tokenize(before, special=True, first=i == 0) + self._tokenize(content, special=False)
        return tokens + self._tokenize(prompt, special=True)

    def _tokenize(self, text: str, special: bool, first: bool = False) -> list[int]:
        """Token ids of `text`: control tokens parsed or not (`special`); BOS added, if the model wants one,
        to the `first` piece only."""
        if not text:
            return []
        body = {"content": text, "add_special": first, "parse_special": special}
        return [int(t) for t in self._post("/tokenize", body)["tokens"]]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A request to the embedded server's HTTP API (loopback), for what the binding does not expose."""
        request = urllib.request.Request(self.server.listening_address + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        try:
            with direct.open(request, timeout=60) as response:
                return json.loads(response.read())
        except (OSError, ValueError) as error:
            raise OproError(f"{self.spec}: the embedded server's {path} failed: {error}") from error

    def describe(self) -> dict[str, object]:
        with self._lock:
            if self._sha256 is None:
                self._sha256 = sha256_file(self.path)
                self._adapter_sha256 = [sha256_file(path) for path in self.adapters]
        lora = ({"lora_paths": [str(p) for p in self.adapters], "lora_sha256": self._adapter_sha256}
                if self.adapters else {})  # part of the call cache's key: a tuned model never replays the base's
        return {
            "backend": "llamacpp",
            "model_path": str(self.path),
            "model_sha256": self._sha256,
            **lora,
            "threads": self.threads,
            **({"thread_probe": self.thread_probe} if self.thread_probe else {}),
            "n_ctx": self.n_ctx,
            "parallel": self.parallel,
            "cache_prompt": self.cache_prompt,
            "poll": self.poll,
            "sampling": self.sampling,
        }

    def close(self) -> None:
        self.server = None
