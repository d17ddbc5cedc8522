"""A cache whose pages are damaged (its header intact) is moved aside with a one-line warning naming it, and the
run goes on with an empty cache: the run folder, not the cache, is the record."""

from __future__ import annotations

from pathlib import Path

from opro.llm import Completion, Request
from opro.llm.cache import CachedLLM
from opro.prompting.scoring import ScoreCache


class EchoLLM:
    """Answers at once with the seed and 2 KB of the prompt (a cache test needs no model)."""

    spec = "echo"

    def generate(self, requests: list[Request]) -> list[Completion]:
        return [Completion(text=f"{r.seed}:" + r.messages[-1]["content"] * 200, completion_tokens=1)
                for r in requests]

    def describe(self) -> dict[str, object]:
        return {"backend": "echo"}

    def close(self) -> None:
        pass


REQUESTS = [Request(messages=({"role": "user", "content": f"question {i:03d}"},), seed=i) for i in range(300)]


def damage_pages(path: Path) -> None:
    """Overwrite every page after the first (the schema page, with the file header) with garbage."""
    data = bytearray(path.read_bytes())
    assert len(data) > 20 * 4096  # a tree with interior pages
    data[4096:] = bytes((i * 37) % 256 for i in range(len(data) - 4096))
    path.write_bytes(bytes(data))


def test_a_damaged_llm_cache_is_moved_aside_and_the_run_goes_on(tmp_path, capsys):
    path = tmp_path / "llm.sqlite"
    llm = CachedLLM(EchoLLM(), path)
    first = llm.generate(REQUESTS)
    llm.close()
    damage_pages(path)
    again = CachedLLM(EchoLLM(), path)
    assert [c.text for c in again.generate(REQUESTS)] == [c.text for c in first]  # generated anew
    assert (again.hits, again.misses) == (0, len(REQUESTS))
    aside = list(tmp_path.glob("llm.sqlite.corrupt-*"))
    assert len(aside) == 1
    warning = capsys.readouterr().err.splitlines()
    assert warning == [f"opro: warning: the LLM-call cache {path} is damaged (database disk image is malformed); "
                       f"moved it to {aside[0]} and went on with an empty cache"]
    assert again.generate(REQUESTS[:3]) and again.hits == 3  # the new file caches again
    again.close()


def test_a_damaged_score_cache_is_moved_aside(tmp_path, capsys):
    path = tmp_path / "scores.sqlite"
    cache = ScoreCache(path)
    cache.put_many({f"key{i}": {"text": "answer " * 300} for i in range(300)})
    cache.close()
    damage_pages(path)
    reopened = ScoreCache(path)
    assert reopened.get_many([f"key{i}" for i in range(300)]) == {}
    assert f"the score cache {path} is damaged" in capsys.readouterr().err
    reopened.put_many({"key0": {"text": "again"}})
    assert reopened.get_many(["key0"]) == {"key0": {"text": "again"}}
    reopened.close()
