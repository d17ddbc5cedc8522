"""A real OpenAI-compatible server for the `openai:` tests: xllamacpp's llama.cpp server on 127.0.0.1 with the
default model. One thread that sleeps rather than busy-waits keeps it fast when the test process (client,
proxy) shares the cores with it."""

from __future__ import annotations

from pathlib import Path


def start_server(model: Path, parallel: int):
    """A started server with `parallel` slots of 2048 tokens each; it stops when the object is collected."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.n_parallel = parallel
    params.n_ctx = 2048 * parallel
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 1
    params.cpuparams.poll = params.cpuparams_batch.poll = 0  # sleep, not busy-wait: robust on shared cores
    params.warmup = False
    params.verbosity = -1
    return xllamacpp.Server(params)
