"""The `openai:` backend: any OpenAI-compatible chat endpoint through the official async client.

`openai:gpt-4o-mini` on api.openai.com, or `openai:MODEL` with `base_url` pointing at vLLM, SGLang, Ollama
or llama.cpp's server. `generate` is synchronous: the requests of one call run concurrently (at most
`concurrency` in flight) on an event loop in a private thread, so it also works inside a notebook.

Retries are ours (the client's own are off): HTTP 408/409/429/5xx, timeouts, connection errors and garbled
responses (undecodable JSON, no choices, no content) are retried with exponential backoff and full jitter,
waiting what `Retry-After` asks for when present (up to 120 s), `max_attempts` tries in all; then OproError.
Other errors (400, 401, 404, ...) fail at once. The model is never switched.

Control tokens in message text are the server's business: servers that render the chat template to text and
tokenize it with control tokens parsed (llama.cpp's server, and HF-tokenizer servers such as vLLM and SGLang by
default) read an instruction that spells `<|im_end|><|im_start|>assistant` as those tokens, so an
optimizer-written instruction can close the scorer's user turn there; OpenAI's own API treats message text as
text. The embedded `llamacpp:` backend tokenizes message text as plain text (opro/llm/llamacpp.py).

`use_n` batches the requests of one call that differ only in seed into one request with `n=` (and the first
seed). It is off by default because per-candidate seeds are then up to the server: llama.cpp's server
gives choice i the seed `seed + i`, OpenAI documents nothing, and some servers ignore `n` altogether.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import os
import random
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from opro.errors import OproError, warn
from opro.llm.base import Completion, Request
from opro.llm.pricing import Price, load_prices, price_of
from opro.redact import MARKER, redact, remember, url_credentials
from opro.settings import check_base_url

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 120.0  # seconds; a server asking for longer gets its wait cut to this
LOCAL_DUMMY_KEY = "sk-local-no-key"  # servers on loopback usually need no key, the client insists on one


class _Garbled(Exception):
    """A 200 response that carries no usable completion."""


class _Rejected(OproError):
    """A request the server refused for good (4xx other than 408/409/429)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url(url: str | None) -> str | None:
    """`url` without user:password, query or fragment, fit for config.json."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def credentialed_url(url: str | None, spec: str) -> str | None:
    """`url`, or where it is a stored one whose credentials were masked (a resumed run's config.json),
    `$OPENAI_BASE_URL` when that is the same URL with its credentials."""
    if not url or MARKER not in url:
        return url
    full = os.environ.get("OPENAI_BASE_URL", "")
    if full and redact(full) == url:
        return full
    raise OproError(f"{spec}: the base URL {url} had credentials, which are never stored; set OPENAI_BASE_URL "
                    "to the full URL")


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a response asks for: `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    if not headers:
        return None
    try:
        return max(0.0, float(headers["retry-after-ms"]) / 1000)
    except (KeyError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt - 1))] s after failed attempt 1, 2, ..."""
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


#: The client's token estimate where a server's usage is missing or odd (a common rule for English text).
CHARS_PER_TOKEN = 4


def estimate_tokens(*texts: str) -> int:
    """Tokens of `texts` by the client's estimate: CHARS_PER_TOKEN characters a token, rounded up."""
    return sum(-(-len(text) // CHARS_PER_TOKEN) for text in texts)


def _retryable(error: Exception) -> bool:
    import openai

    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRY_STATUS or error.status_code >= 500
    return isinstance(error, openai.APIConnectionError | openai.APIResponseValidationError | _Garbled | ValueError)


class OpenAILLM:
    """An OpenAI-compatible chat model. `timeout` is per HTTP attempt, in seconds; `backoff_base` and
    `backoff_cap` (s) shape the retry waits; `prices` is a TOML price table merged over the defaults;
    `sampling` holds extra body fields sent with every request (e.g. top_p, or llama.cpp's top_k)."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 300.0,
        max_attempts: int = 6,
        use_n: bool | Literal["auto"] = False,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        prices: str | Path | None = None,
        sampling: dict[str, Any] | None = None,
    ) -> None:
        import openai

        if not model:
            raise OproError("openai: needs a model name, e.g. openai:gpt-4o-mini")
        if concurrency < 1 or max_attempts < 1:
            raise OproError(f"openai:{model}: concurrency and max_attempts must be at least 1")
        if use_n not in (True, False, "auto"):
            raise OproError(f"openai:{model}: use_n must be true, false or \"auto\", not {use_n!r}")
        self.spec, self.model = f"openai:{model}", model
        self.base_url = credentialed_url(base_url or os.environ.get("OPENAI_BASE_URL") or None, self.spec)
        if self.base_url is not None:
            check_base_url("the base URL" if base_url else "OPENAI_BASE_URL", self.base_url)
        key = api_key or os.environ.get("OPENAI_API_KEY") or (LOCAL_DUMMY_KEY if is_loopback(self.base_url) else None)
        if key is None:
            raise OproError(f"{self.spec} needs an API key: set OPENAI_API_KEY or the api_key option")
        self._key = key
        remember(key)  # opro.redact: never written, wherever a server may echo it
        for secret in url_credentials(self.base_url):
            remember(secret)
        self.concurrency, self.timeout, self.max_attempts = concurrency, timeout, max_attempts
        self.use_n, self.backoff_base, self.backoff_cap = use_n, backoff_base, backoff_cap
        self.sampling = dict(sampling or {})
        self.price: Price | None = price_of(self.spec, load_prices(prices))
        if self.price is None and is_loopback(self.base_url):
            self.price = Price(0.0, 0.0)
        # Running totals: tokens billed, HTTP requests sent, and the retried attempts among them.
        self.prompt_tokens = self.completion_tokens = self.calls = self.retries = 0
        self._n_honoured: bool | None = None  # learnt from the first n-batched request
        self._odd_usage: set[str] = set()  # usage fields warned of (once each)
        self._rng = random.Random()  # jitter only: results never depend on it
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"opro-{self.spec}", daemon=True)
        self._thread.start()
        self._client = openai.AsyncOpenAI(api_key=key, base_url=self.base_url, timeout=timeout, max_retries=0)
        self._slots = asyncio.Semaphore(concurrency)  # bound to the private loop at first use
        self._probe = asyncio.Lock()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coroutine.close()
            raise OproError(f"{self.spec} is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C: stop the requests still in flight
            raise

    def generate(self, requests: list[Request]) -> list[Completion]:
        """One completion per request, in request order."""
        if not requests:
            return []
        return self._run(self._generate(requests))

    def cost_usd(self) -> float | None:
        """Estimated USD for the tokens used so far; None when the model's price is unknown."""
        if self.price is None:
            return None
        return (self.prompt_tokens * self.price.input + self.completion_tokens * self.price.output) / 1e6

    def describe(self) -> dict[str, object]:
        return {
            "backend": "openai",
            "model": self.model,
            "base_url": public_url(self.base_url) or "https://api.openai.com/v1",
            "use_n": self.use_n,
            "sampling": self.sampling,
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "max_attempts": self.max_attempts,
        }

    def close(self) -> None:
        """Cancel and await every request still in flight (an interrupted batch), close the client, then stop
        and close the private loop: no task is left pending for a closed loop to complain about."""
        if self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.close()
        await self._loop.shutdown_asyncgens()

    async def _generate(self, requests: list[Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)

        async def single(i: int) -> None:
            (out[i],) = await self._create(requests[i], 1)

        async def group(indices: list[int]) -> None:
            batched = await self._create_n(requests[indices[0]], len(indices)) if len(indices) > 1 else None
            if batched is not None:
                for i, completion in zip(indices, batched, strict=True):
                    out[i] = completion
            else:
                await _all(single(i) for i in indices)

        await _all(group(indices) for indices in self._groups(requests))
        return out  # type: ignore[return-value]  # every slot is filled or gather raised

    def _groups(self, requests: list[Request]) -> list[list[int]]:
        """Indices of requests that differ only in seed (each alone when n-batching is off or failed)."""
        if not self.use_n or self._n_honoured is False:
            return [[i] for i in range(len(requests))]
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            key = json.dumps([r.messages, r.temperature, r.max_tokens], sort_keys=True)
            groups.setdefault(key, []).append(i)
        return list(groups.values())

    async def _create_n(self, request: Request, n: int) -> list[Completion] | None:
        """`n` choices from one request, or None (auto mode) where the server does not honour `n`."""
        if self.use_n == "auto" and self._n_honoured is None:
            async with self._probe:  # the first n-request runs alone and decides for the rest
                if self._n_honoured is None:
                    completions = await self._try_n(request, n)
                    self._n_honoured = completions is not None
                    return completions
        if self._n_honoured is False:
            return None
        completions = await self._try_n(request, n)
        if completions is None and self.use_n is True:
            raise OproError(f"{self.spec}: the server did not return n={n} choices; set use_n=false")
        return completions

    async def _try_n(self, request: Request, n: int) -> list[Completion] | None:
        try:
            completions = await self._create(request, n)
        except _Rejected as error:  # e.g. llama.cpp refuses n above its slot count with a 400
            if self.use_n is True or error.status not in (400, 422):
                raise
            return None
        return completions if len(completions) == n else None

    async def _create(self, request: Request, n: int) -> list[Completion]:
        """One API request with the retry policy; `n` completions (usage split so that the sums match)."""
        import openai

        started = time.perf_counter()
        last: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self._slots:
                    self.calls += 1
                    response = await self._client.chat.completions.create(
                        model=self.model,
                        messages=list(request.messages),  # type: ignore[arg-type]
                        temperature=request.temperature,
                        max_tokens=request.max_tokens,
                        seed=request.seed if request.seed is not None else openai.NOT_GIVEN,
                        n=n if n > 1 else openai.NOT_GIVEN,
                        extra_body=self.sampling or None,
                    )
                    texts, indexes = _texts(response)
                break
            except Exception as error:  # classified right below; anything else is re-raised as is
                if isinstance(error, openai.APIStatusError) and not _retryable(error):
                    raise _Rejected(f"{self.spec}: {self._oneline(error)}", error.status_code) from error
                if not _retryable(error):
                    raise
                last = error
            if attempt < self.max_attempts:
                self.retries += 1
                response_headers = getattr(getattr(last, "response", None), "headers", None)
                wait = retry_after_seconds(response_headers)
                wait = min(wait, MAX_RETRY_AFTER) if wait is not None else backoff_seconds(
                    attempt, self.backoff_base, self.backoff_cap, self._rng)
                await asyncio.sleep(wait)
        else:
            raise OproError(f"{self.spec}: failed after {self.max_attempts} attempts; last error: "
                            f"{type(last).__name__}: {self._oneline(last)}") from last
        seconds = time.perf_counter() - started
        usage = getattr(response, "usage", None)
        if indexes is not None and "index" not in self._odd_usage:
            self._odd_usage.add("index")
            warn(f"{self.spec}: the server's choice indexes {indexes} are not distinct counts; the choices are "
                 "taken in the order the server sent them")
        reported = self._usage(usage, "prompt_tokens"), self._usage(usage, "completion_tokens")
        prompt = reported[0] if reported[0] is not None else estimate_tokens(
            *(str(m.get("content") or "") for m in request.messages))
        completion = reported[1] if reported[1] is not None else estimate_tokens(*(text for text, _ in texts))
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        meta = {"attempts": str(attempt)} if attempt > 1 else {}
        if n > 1:
            meta["n"] = str(n)
        if None in reported:
            meta["usage"] = "estimated"  # the server's count is unknown
        return [
            Completion(
                text=text,
                prompt_tokens=prompt if i == 0 else 0,  # billed once per request
                completion_tokens=completion // n + (completion % n if i == 0 else 0),
                finish_reason=finish or "stop",
                seconds=seconds,
                meta=dict(meta),
            )
            for i, (text, finish) in enumerate(texts)
        ]

    def _usage(self, usage: object, field: str) -> int | None:
        """The server's token count `field`, or None where it is missing or not a count (a string, a negative
        number: a budget could never trigger); the first odd value of each field is warned of."""
        value = getattr(usage, field, None) if usage is not None else None
        if isinstance(value, float) and value.is_integer() and value >= 0:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if value is not None and field not in self._odd_usage:
            self._odd_usage.add(field)
            warn(f"{self.spec}: the server's usage.{field} is {str(value)[:40]!r}, not a token count; recorded as "
                 f"unknown and counted by the client's estimate ({CHARS_PER_TOKEN} characters a token)")
        return None

    def _oneline(self, error: Exception | None) -> str:
        """An error message on one line, with the API key and URL credentials (should a server echo them)
        masked."""
        text = redact(" ".join(str(error).split()))
        return text.replace(self._key, MARKER) if self._key != LOCAL_DUMMY_KEY else text


async def _all(coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run concurrently; on the first failure cancel the rest (a failed batch leaves nothing in flight)."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _texts(response: object) -> tuple[list[tuple[str, str | None]], list[str] | None]:
    """(text, finish_reason) per choice, in choice order; _Garbled when the response has none. Second: the
    indexes as sent where they are not distinct counts (the choices are then in the server's order), else None."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise _Garbled(f"response without choices: {str(response)[:80]!r}")
    out = []
    indexes = [getattr(c, "index", None) for c in choices]
    if len(choices) == 1 or all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indexes) and \
            len(set(indexes)) == len(indexes):
        choices = choices if len(choices) == 1 else [c for _, c in sorted(zip(indexes, choices, strict=True),
                                                                           key=lambda pair: pair[0])]
        odd = None
    else:  # indexes that are not distinct counts ("zero", null): the server's order
        odd = [str(i)[:10] for i in indexes]
    for choice in choices:
        content = getattr(getattr(choice, "message", None), "content", None)
        if not isinstance(content, str):
            raise _Garbled("choice without message content")
        out.append((content, choice.finish_reason))
    return out, odd
