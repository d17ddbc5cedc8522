"""The `openai:` backend against a real OpenAI-compatible server (xllamacpp's llama.cpp server with the
default model), the retry policy through a fault-injecting proxy, the completion cache, and pricing.

The server runs with one slot and one thread: one slot keeps samples bit-reproducible, and one thread (not
busy-waiting) keeps llama.cpp fast when the test process (client, proxy) shares the 2 cores with it.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from opro.errors import OproError
from opro.llm import Completion, Request, build_llm
from opro.llm.cache import CachedLLM
from opro.llm.openai_backend import OpenAILLM, backoff_seconds, retry_after_seconds
from opro.llm.pricing import cost, load_prices
from tests.doubles import CountingLLM, EchoLLM
from tests.fault_proxy import FaultProxy
from tests.llama_server import start_server

MAX_TOKENS = 24


@pytest.fixture(scope="module")
def server(default_model):
    return start_server(default_model, parallel=1)


@pytest.fixture(scope="module")
def base_url(server) -> str:
    return server.listening_address + "/v1"


def requests(count: int, prompts: int = 3, seed0: int = 0) -> list[Request]:
    """`count` requests over `prompts` distinct prompts, each with its own seed."""
    return [Request(messages=({"role": "user", "content": f"Name a colour. ({i % prompts})"},),
                    max_tokens=MAX_TOKENS, seed=seed0 + i) for i in range(count)]


def sample(c: Completion) -> tuple:
    return c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason


@pytest.fixture(scope="module")
def reference(base_url) -> list[tuple]:
    """12 requests answered one at a time, without faults."""
    llm = OpenAILLM("smollm2", base_url=base_url, concurrency=1)
    try:
        return [sample(llm.generate([r])[0]) for r in requests(12)]
    finally:
        llm.close()


# (a) completions in request order, with usage, several in flight


def test_generate_keeps_order_and_usage_with_concurrency(base_url, reference):
    with FaultProxy(base_url.removesuffix("/v1"), fault_rate=0.0) as proxy:
        llm = OpenAILLM("smollm2", base_url=proxy.url + "/v1", concurrency=3)
        out = llm.generate(requests(12))
        llm.close()
    assert [sample(c) for c in out] == reference
    assert proxy.max_in_flight == 3 and llm.calls == 12
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in out)
    assert {c.finish_reason for c in out} <= {"stop", "length"}
    assert llm.prompt_tokens == sum(c.prompt_tokens for c in out) and llm.cost_usd() == 0.0  # loopback is free


def test_generate_can_be_called_repeatedly(base_url, reference):
    llm = OpenAILLM("smollm2", base_url=base_url, concurrency=2)
    try:
        for _ in range(3):
            assert [sample(c) for c in llm.generate(requests(2))] == reference[:2]
    finally:
        llm.close()
    llm.close()  # idempotent
    with pytest.raises(OproError, match="closed"):
        llm.generate(requests(1))


# (b) the same seed gives the same text (default server settings: its prompt cache does not change samples)


def test_same_seed_same_text_and_seeds_matter(base_url):
    llm = OpenAILLM("smollm2", base_url=base_url, concurrency=2)
    try:
        same = [Request(messages=({"role": "user", "content": "Invent a word."},), max_tokens=MAX_TOKENS, seed=7)] * 2
        first = llm.generate(same)
        llm.generate(requests(2, seed0=100))  # something else in between
        again = llm.generate(same[:1])
        seeds = llm.generate([Request(messages=same[0].messages, max_tokens=MAX_TOKENS, seed=s) for s in range(4)])
    finally:
        llm.close()
    assert first[0].text == first[1].text == again[0].text
    assert len({c.text for c in seeds}) > 1


def test_use_n_auto_falls_back_where_the_server_refuses_n(base_url, reference):
    # llama.cpp accepts n up to its slot count; this server has one slot, so n=2 gets a 400.
    llm = OpenAILLM("smollm2", base_url=base_url, use_n="auto")
    try:
        same_prompt = [r for r in requests(12) if r.messages == requests(1)[0].messages]
        out = llm.generate(same_prompt)
    finally:
        llm.close()
    assert llm._n_honoured is False
    assert [sample(c) for c in out] == [reference[r.seed] for r in same_prompt]


def test_use_n_batches_one_prompt_into_one_request(default_model):
    server = start_server(default_model, parallel=2)
    llm = OpenAILLM("smollm2", base_url=server.listening_address + "/v1", use_n=True)
    try:
        out = llm.generate(requests(2, prompts=1))
    finally:
        llm.close()
    assert llm.calls == 1 and len(out) == 2 and all(c.meta["n"] == "2" for c in out)
    assert sum(c.prompt_tokens for c in out) == llm.prompt_tokens > 0


# (c) faults are retried and do not change results; (d) a dead server fails fast with a clear error


def test_faults_are_retried_and_results_unchanged(base_url, reference):
    with FaultProxy(base_url.removesuffix("/v1"), fault_rate=0.3, seed=2, retry_after="1", stall_seconds=5) as proxy:
        llm = OpenAILLM("smollm2", base_url=proxy.url + "/v1", concurrency=3, timeout=4, max_attempts=10,
                        backoff_base=0.05, backoff_cap=0.5)
        try:
            out = llm.generate(requests(12))
        finally:
            llm.close()
    assert len(proxy.injected) >= 3 and llm.retries >= sum(proxy.injected.values())  # seed 2: one of each kind
    assert [sample(c) for c in out] == reference
    assert any(c.meta.get("attempts") for c in out)


def test_garbled_answers_alone_are_retried(base_url, reference):
    with FaultProxy(base_url.removesuffix("/v1"), fault_rate=0.5, seed=1, faults=("garbled",)) as proxy:
        llm = OpenAILLM("smollm2", base_url=proxy.url + "/v1", max_attempts=10, backoff_base=0.01)
        try:
            out = llm.generate(requests(4))
        finally:
            llm.close()
    assert proxy.injected["garbled"] >= 1 and [sample(c) for c in out] == reference[:4]


def test_a_server_that_always_fails_raises_after_max_attempts(base_url):
    with FaultProxy(base_url.removesuffix("/v1"), fault_rate=1.0, faults=("500",)) as proxy:
        llm = OpenAILLM("smollm2", base_url=proxy.url + "/v1", api_key="sk-test-secret", max_attempts=3,
                        backoff_base=0.01, backoff_cap=0.05)
        with pytest.raises(OproError, match=r"openai:smollm2: failed after 3 attempts.*InternalServerError") as info:
            llm.generate(requests(2))
        llm.close()
    assert 3 <= proxy.injected["500"] <= 6  # the other request is cancelled once one has failed for good
    assert "\n" not in str(info.value) and "sk-test-secret" not in str(info.value)


def test_retry_after_is_honoured(base_url):
    with FaultProxy(base_url.removesuffix("/v1"), fault_rate=1.0, faults=("429",), retry_after="1") as proxy:
        llm = OpenAILLM("smollm2", base_url=proxy.url + "/v1", max_attempts=2, backoff_base=0.001)
        started = time.perf_counter()
        with pytest.raises(OproError, match="RateLimitError"):
            llm.generate(requests(1))
        llm.close()
    assert time.perf_counter() - started >= 1.0 and proxy.injected["429"] == 2


def test_a_refused_request_fails_at_once(base_url):
    llm = OpenAILLM("smollm2", base_url=base_url, use_n=True)  # n=2 on a one-slot llama.cpp: HTTP 400
    try:
        with pytest.raises(OproError, match="openai:smollm2: .*400"):
            llm.generate(requests(2, prompts=1))
    finally:
        llm.close()
    assert llm.calls == 1


def test_retry_after_and_backoff():
    import random
    from email.utils import formatdate

    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert 8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after_seconds({"retry-after": formatdate(time.time() - 10, usegmt=True)}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None and retry_after_seconds({}) is None
    rng = random.Random(0)
    waits = [(k, backoff_seconds(k, 1.0, 8.0, rng)) for k in range(1, 10) for _ in range(50)]
    assert all(0 <= wait <= min(8.0, 2 ** (k - 1)) for k, wait in waits)


# (e) the cache


def test_cache_answers_repeats_without_the_backend(base_url, tmp_path):
    inner = CountingLLM(OpenAILLM("smollm2", base_url=base_url))
    llm = CachedLLM(inner, tmp_path / "cache.sqlite")
    batch = requests(4) + requests(1)  # the last repeats the first
    first = llm.generate(batch)
    assert (inner.calls, inner.requests, llm.misses, llm.hits) == (1, 4, 4, 1)
    second = llm.generate(batch)
    assert (inner.calls, llm.hits) == (1, 6)
    assert [sample(c) for c in second] == [sample(c) for c in first]
    assert all(c.meta.get("cached") == "1" for c in second)
    unseeded = Request(messages=batch[0].messages, max_tokens=4)  # not reproducible: never cached
    llm.generate([unseeded])
    llm.generate([unseeded])
    assert inner.calls == 3
    llm.close()
    reopened = CachedLLM(CountingLLM(OpenAILLM("smollm2", base_url=base_url)), tmp_path / "cache.sqlite")
    assert [sample(c) for c in reopened.generate(batch)] == [sample(c) for c in first]
    assert reopened.inner.calls == 0
    reopened.close()


def test_cache_key_depends_on_the_model_identity(tmp_path):
    path = tmp_path / "cache.sqlite"
    a, b = CountingLLM(EchoLLM()), CountingLLM(EchoLLM())
    b.describe = lambda: {"backend": "echo", "sampling": {"top_k": 5}}  # type: ignore[method-assign]
    CachedLLM(a, path).generate(requests(2))
    CachedLLM(b, path).generate(requests(2))
    assert b.requests == 2


def write_entries(path: str, start: int) -> int:
    """A writer process: 300 entries, a third shared with the other writer, in batches of 10."""
    llm = CachedLLM(EchoLLM(), path)
    for batch in range(start, start + 300, 10):
        llm.generate(requests(10, prompts=10, seed0=batch))
    return llm.misses


def test_cache_survives_concurrent_writers(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        misses = list(pool.map(write_entries, [path, path], [0, 200]))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM completions").fetchone()[0] == 500
    assert sum(misses) >= 500
    llm = CachedLLM(CountingLLM(EchoLLM()), path)
    out = llm.generate(requests(10, prompts=10, seed0=250))
    assert llm.inner.calls == 0 and out[3].text == "253:Name a colour. (3)"


def test_cache_wraps_the_embedded_backend(default_model, tmp_path):
    inner = CountingLLM(build_llm("llamacpp:smollm2", {"threads": 1, "n_ctx": 1024}))
    llm = CachedLLM(inner, tmp_path / "cache.sqlite")
    first = llm.generate(requests(2))
    second = llm.generate(requests(2))
    llm.close()
    assert inner.calls == 1 and [sample(c) for c in second] == [sample(c) for c in first]
    assert llm.identity()["model_sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def test_build_llm_options(base_url, tmp_path):
    llm = build_llm("openai:smollm2", {"base_url": base_url, "concurrency": 2, "use_n": None,
                                      "n_ctx": 4096, "threads": None, "cache": tmp_path / "c.sqlite"})
    assert isinstance(llm, CachedLLM) and llm.inner.concurrency == 2 and llm.inner.use_n is False
    llm.close()
    with pytest.raises(OproError, match="unknown option"):
        build_llm("openai:smollm2", {"base_url": base_url, "concurency": 2})
    with pytest.raises(OproError, match="unknown LLM backend"):
        build_llm("anthropic:claude", {})


# (f) secrets


def test_api_keys_never_appear_in_describe(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    url = "http://alice:pa55word@127.0.0.1:9/v1?token=qs-secret"
    for llm in (OpenAILLM("gpt-4o", base_url=url, api_key="sk-option-secret"), OpenAILLM("gpt-4o", base_url=url)):
        text = json.dumps(CachedLLM(llm, tmp_path / "c.sqlite").describe())
        assert not any(s in text for s in ("secret", "pa55word", "alice")), text
        assert "127.0.0.1:9/v1" in text
        llm.close()
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(OproError, match="needs an API key"):
        OpenAILLM("gpt-4o")
    OpenAILLM("local", base_url="http://localhost:8000/v1").close()  # loopback: a dummy key is fine


# pricing


def test_pricing(monkeypatch, tmp_path):
    assert cost("openai:gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert cost("gpt-3.5-turbo-0125", 2_000_000, 0) == pytest.approx(1.0)
    assert cost("llamacpp:smollm2", 10**9, 10**9) == 0.0
    assert cost("openai:my-finetune", 1, 1) is None
    table = tmp_path / "prices.toml"
    table.write_text('["my-finetune"]\ninput = 1.0\noutput = 2.0\n["gpt-4o"]\ninput = 0\noutput = 0\n')
    assert cost("openai:my-finetune", 10**6, 10**6, load_prices(table)) == pytest.approx(3.0)
    monkeypatch.setenv("OPRO_PRICES", str(table))
    assert cost("openai:gpt-4o", 10**6, 10**6) == 0.0
    table.write_text('["bad"]\ninput = "x"\n')
    with pytest.raises(OproError, match="price table"):
        load_prices(table)
