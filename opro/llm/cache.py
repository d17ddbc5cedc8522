"""A persistent completion cache that wraps any LLM backend (one SQLite file, shared by processes).

The key is the sha256 of canonical JSON of (spec, model identity, messages, temperature, max_tokens, seed).
The model identity is the backend's `describe()` without the settings that cannot change a sample
(concurrency, timeout, retry policy, llama.cpp's poll): a different GGUF hash, server URL or sampling
setting misses.
Only reproducible requests are cached: those with a seed, or at temperature 0. Others pass through.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import asdict, replace
from pathlib import Path

from opro.cache_file import CacheFile
from opro.llm.base import LLM, Completion, Request
from opro.llm.models import cache_dir
from opro.redact import redact_data
from opro.results import prepare_output

# describe() keys that do not change what a backend samples, so they stay out of the key.
# llama.cpp's thread count stays in: it changes float rounding, and so samples (tested).
OPERATIONAL_KEYS = frozenset({"concurrency", "timeout", "max_attempts", "backoff_base", "backoff_cap", "poll",
                              "thread_probe"})
SCHEMA = "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, spec TEXT NOT NULL, value TEXT NOT NULL)"


def default_cache_path() -> Path:
    """`$OPRO_LLM_CACHE`, else `llm_cache.sqlite` in the user cache directory (`$OPRO_CACHE_DIR`, else
    `~/.cache/opro`)."""
    if os.environ.get("OPRO_LLM_CACHE"):
        return Path(os.environ["OPRO_LLM_CACHE"]).expanduser()
    return cache_dir() / "llm_cache.sqlite"


def request_key(spec: str, identity: dict[str, object], request: Request) -> str:
    payload = [spec, identity, list(request.messages), request.temperature, request.max_tokens, request.seed]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CachedLLM:
    """`inner` behind the cache at `path` (default: `default_cache_path()`). `misses` counts the requests
    `inner` generated (uncacheable ones included), `hits` the others: found in the cache, or a repeat of an
    earlier request in the same batch. Completions read from the cache carry `meta["cached"] == "1"`."""

    def __init__(self, inner: LLM, path: Path | str | None = None) -> None:
        self.inner, self.spec = inner, inner.spec
        self.path = prepare_output(Path(path) if path else default_cache_path(), "LLM-call cache", folder=False)
        self.hits = self.misses = 0
        self._identity: dict[str, object] | None = None
        self._file = CacheFile(self.path, "LLM-call cache", SCHEMA, " (free space, or run with --no-cache)")

    def identity(self) -> dict[str, object]:
        """The inner backend's describe() without operational settings (computed once)."""
        if self._identity is None:
            self._identity = {k: v for k, v in self.inner.describe().items() if k not in OPERATIONAL_KEYS}
        return self._identity

    def generate(self, requests: list[Request]) -> list[Completion]:
        keys = [request_key(self.spec, self.identity(), r) if _cacheable(r) else None for r in requests]
        out: list[Completion | None] = [None] * len(requests)

        def lookup(db: sqlite3.Connection) -> None:
            for i, key in enumerate(keys):
                if key is not None:
                    row = db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
                    if row is not None:
                        out[i] = _decode(row[0])

        self._file.run(lookup)
        todo: dict[str | int, list[int]] = {}  # one generation per distinct key; uncached ones by index
        for i, (key, done) in enumerate(zip(keys, out, strict=True)):
            if done is None:
                todo.setdefault(key if key is not None else i, []).append(i)
        self.hits += len(requests) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = self.inner.generate([requests[indices[0]] for indices in todo.values()])
            rows = []
            for (key, indices), completion in zip(todo.items(), fresh, strict=True):
                for i in indices:
                    out[i] = completion
                if isinstance(key, str) and completion.finish_reason != "error":
                    rows.append((key, self.spec, json.dumps(redact_data(asdict(completion)))))

            def insert(db: sqlite3.Connection) -> None:
                with db:
                    db.executemany("INSERT OR IGNORE INTO completions (key, spec, value) VALUES (?, ?, ?)", rows)

            self._file.run(insert)
        return out  # type: ignore[return-value]  # every slot is filled

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "cache": str(self.path)}

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self.inner.close()  # the model is shut down even when the cache file fails


def _cacheable(request: Request) -> bool:
    return request.seed is not None or request.temperature == 0


def _decode(value: str) -> Completion:
    completion = Completion(**json.loads(value))
    return replace(completion, meta={**completion.meta, "cached": "1"})
