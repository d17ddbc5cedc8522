"""Throughput of the `openai:` backend against its ceiling, on the local llama.cpp server.

xllamacpp serves the default model (SmolLM2-135M-Instruct, Q4_1) over its OpenAI-compatible API with 8
slots. At each concurrency the same requests (fixed prompts and seeds, `ignore_eos` so every answer is
exactly `max_tokens` long) go through three clients, and the table shows completion tokens per second:
  opro       OpenAILLM.generate (the backend the loop uses)
  ceiling    a bare AsyncOpenAI client, an asyncio.Semaphore at the same concurrency
  reference  the reference code's pattern: one blocking synchronous call at a time (same at every row)
and opro/ceiling. Each cell is the best of `--repeats` runs; the three clients take turns in each repeat.

Run from the repository root:  python -m benchmarks.llm_throughput [--requests 16] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable

from opro.llm import Request
from opro.llm.models import default_model_path
from opro.llm.openai_backend import OpenAILLM

SLOTS = 8
EXTRA = {"ignore_eos": True}  # llama.cpp: always generate max_tokens tokens


def start_server(threads: int):
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(default_model_path())
    params.n_parallel = SLOTS
    params.n_ctx = 512 * SLOTS
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.cpuparams.poll = params.cpuparams_batch.poll = 0  # sleep, not busy-wait: robust on shared cores
    params.warmup = False
    params.verbosity = -1
    return xllamacpp.Server(params)


def make_requests(count: int, max_tokens: int) -> list[Request]:
    topics = ["the sea", "a city", "mountains", "rain", "a cat", "autumn", "trains", "the moon"]
    return [Request(messages=({"role": "user", "content": f"Write a short poem about {topics[i % len(topics)]}."},),
                    max_tokens=max_tokens, seed=i) for i in range(count)]


def through_opro(base_url: str, requests: list[Request], concurrency: int) -> int:
    llm = OpenAILLM("smollm2", base_url=base_url, concurrency=concurrency, sampling=EXTRA)
    try:
        return sum(c.completion_tokens for c in llm.generate(requests))
    finally:
        llm.close()


def through_bare_async(base_url: str, requests: list[Request], concurrency: int) -> int:
    import openai

    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0)
        slots = asyncio.Semaphore(concurrency)

        async def one(r: Request) -> int:
            async with slots:
                response = await client.chat.completions.create(
                    model="smollm2", messages=list(r.messages), temperature=r.temperature,  # type: ignore[arg-type]
                    max_tokens=r.max_tokens, seed=r.seed, extra_body=EXTRA)
            return response.usage.completion_tokens

        try:
            return sum(await asyncio.gather(*(one(r) for r in requests)))
        finally:
            await client.close()

    return asyncio.run(main())


def through_reference(base_url: str, requests: list[Request], concurrency: int) -> int:
    """One blocking call after another, as the reference code does (`concurrency` is ignored)."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)
    total = 0
    for r in requests:
        response = client.chat.completions.create(
            model="smollm2", messages=list(r.messages), temperature=r.temperature,  # type: ignore[arg-type]
            max_tokens=r.max_tokens, seed=r.seed, extra_body=EXTRA)
        total += response.usage.completion_tokens
    client.close()
    return total


def tokens_per_second(runs: list[Callable[[str, list[Request], int], int]], base_url: str,
                      requests: list[Request], concurrency: int, repeats: int) -> list[float]:
    """Best completion tokens/s of each client. The clients take turns within every repeat, so a burst
    of load from elsewhere on the machine hits all of them alike rather than one."""
    best = [0.0] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            tokens = run(base_url, requests, concurrency)
            best[i] = max(best[i], tokens / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    server = start_server(args.threads)
    base_url = server.listening_address + "/v1"
    requests = make_requests(args.requests, args.max_tokens)
    through_bare_async(base_url, requests[:SLOTS], SLOTS)  # warm up
    print(f"SmolLM2-135M Q4_1 on xllamacpp, {SLOTS} slots, {args.threads} threads, {os.cpu_count()} cores; "
          f"{args.requests} requests x {args.max_tokens} tokens; completion tokens/s, best of {args.repeats}")
    print(f"{'concurrency':>11} {'opro':>8} {'ceiling':>8} {'reference':>10} {'opro/ceiling':>13}")
    for concurrency in args.concurrency:
        opro, ceiling, reference = tokens_per_second([through_opro, through_bare_async, through_reference],
                                                     base_url, requests, concurrency, args.repeats)
        print(f"{concurrency:>11} {opro:>8.1f} {ceiling:>8.1f} {reference:>10.1f} {opro / ceiling:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
